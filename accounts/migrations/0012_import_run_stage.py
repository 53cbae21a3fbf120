from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0011_post_text_key")]

    operations = [
        migrations.AddField(
            model_name="importrun",
            name="stage",
            field=models.CharField(blank=True, help_text="What the worker is doing before the rows, for the progress bar",
                                   max_length=200),
        ),
    ]
