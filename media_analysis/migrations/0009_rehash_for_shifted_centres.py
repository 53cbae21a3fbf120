from django.db import migrations


def rehash(apps, schema_editor):
    """Pictures hashed before their signature had `shifted` and `shifted_flip` (and before thinner banners were cut off)
    are hashed again by the workers; until then they match with the signature they have."""
    MediaAsset = apps.get_model("media_analysis", "MediaAsset")
    MediaAsset.objects.filter(hash_state="done", signature__isnull=False).exclude(
        signature__has_key="shifted_flip").update(hash_state="pending", claimed_at=None)


class Migration(migrations.Migration):
    dependencies = [("media_analysis", "0008_cluster_member_keypoints")]
    operations = [migrations.RunPython(rehash, migrations.RunPython.noop)]
