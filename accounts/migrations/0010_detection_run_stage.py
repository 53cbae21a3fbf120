from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0009_import_run_source_count")]

    operations = [
        migrations.AddField(
            model_name="detectionrun",
            name="stage",
            field=models.CharField(blank=True, help_text="What the worker is doing now, for the progress bar", max_length=200),
        ),
    ]
