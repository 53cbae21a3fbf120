from django.db import migrations

ROLES = ("investigator", "lead", "reviewer", "admin")


def create_role_groups(apps, schema_editor):
    group_model = apps.get_model("auth", "Group")
    for name in ROLES:
        group_model.objects.get_or_create(name=name)


def remove_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


# Row-level UPDATE/DELETE are refused. TRUNCATE is left to the table owner (test
# flushes use it); whoever can truncate can also drop triggers, and the hash chain
# is what proves integrity to someone outside the database.
APPEND_ONLY = """
CREATE FUNCTION investigator_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER investigator_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON investigator_auditevent
    FOR EACH ROW EXECUTE FUNCTION investigator_audit_append_only();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS investigator_audit_no_update_delete ON investigator_auditevent;
DROP FUNCTION IF EXISTS investigator_audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("investigator", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(create_role_groups, remove_role_groups),
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
    ]
