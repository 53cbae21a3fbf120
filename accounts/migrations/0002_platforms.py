from django.db import migrations

PLATFORMS = (("instagram", "Instagram"), ("twitter", "Twitter/X"), ("facebook", "Facebook"))


def create_platforms(apps, schema_editor):
    platform_model = apps.get_model("accounts", "Platform")
    for slug, name in PLATFORMS:
        platform_model.objects.get_or_create(slug=slug, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_platforms, migrations.RunPython.noop)]
