from django.db import migrations


def rehash(apps, schema_editor):
    """Pictures hashed before robust signatures existed are hashed again by the workers."""
    MediaAsset = apps.get_model("media_analysis", "MediaAsset")
    MediaAsset.objects.filter(hash_state="done", signature__isnull=True).update(hash_state="pending", claimed_at=None)


class Migration(migrations.Migration):
    dependencies = [("media_analysis", "0004_robust_signatures")]
    operations = [migrations.RunPython(rehash, migrations.RunPython.noop)]
