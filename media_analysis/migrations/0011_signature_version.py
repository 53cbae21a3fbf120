from django.db import migrations, models


def versions(apps, schema_editor):
    """Each stored signature's version, read from the fields it has (matching.SIGNATURE_VERSION). Pictures that
    migrations 0009 and 0010 queued for hashing again, and so hid from lookups and clusters until a worker got to
    them, are hashed ones again: they keep matching with the signature they have while they wait."""
    MediaAsset = apps.get_model("media_analysis", "MediaAsset")
    hashed = MediaAsset.objects.filter(signature__isnull=False)
    hashed.filter(hash_state="pending").update(hash_state="done", claimed_at=None)
    hashed.update(signature_version=1)
    hashed.filter(signature__has_key="shifted_flip").update(signature_version=2)
    hashed.filter(signature__has_key="outer_flip").update(signature_version=3)


class Migration(migrations.Migration):
    dependencies = [("media_analysis", "0010_rehash_for_outer_windows")]
    operations = [
        migrations.AddField(
            model_name="mediaasset",
            name="signature_version",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddIndex(
            model_name="mediaasset",
            index=models.Index(condition=models.Q(("hash_state", "done")), fields=["signature_version", "id"],
                               name="media_signature_version_idx"),
        ),
        migrations.RunPython(versions, migrations.RunPython.noop),
    ]
