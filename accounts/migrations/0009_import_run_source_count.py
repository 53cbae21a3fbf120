from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("accounts", "0008_post_text_search")]

    operations = [
        migrations.AddField(
            model_name="importrun",
            name="source_count",
            field=models.PositiveIntegerField(default=0, help_text="len(sources), kept so lists need not read them"),
        ),
        migrations.RunSQL(
            "UPDATE accounts_importrun SET source_count = jsonb_array_length(sources) WHERE jsonb_typeof(sources) = 'array'",
            migrations.RunSQL.noop,
        ),
    ]
