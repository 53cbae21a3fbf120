from django.db import migrations


def rehash(apps, schema_editor):
    """Pictures hashed before their signature had `outer` and `outer_flip` are hashed again by the workers."""
    MediaAsset = apps.get_model("media_analysis", "MediaAsset")
    MediaAsset.objects.filter(hash_state="done", signature__isnull=False).exclude(
        signature__has_key="outer_flip").update(hash_state="pending", claimed_at=None)


class Migration(migrations.Migration):
    dependencies = [("media_analysis", "0009_rehash_for_shifted_centres")]
    operations = [migrations.RunPython(rehash, migrations.RunPython.noop)]
