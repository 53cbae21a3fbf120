"""Each post's normalised text, as a 64-bit key and a length, computed by PostgreSQL when the post is stored
(stored generated columns), so co_text reads keys instead of normalising every caption on every detection.

The expression is accounts.coordination.signals' normalisation (case, whitespace, @mentions and URLs
removed), written out here so this migration keeps its meaning if that code changes. The columns are not
model fields: nothing but the database writes them.
"""

from django.db import migrations

NORMALISED = r"""(CASE WHEN strpos(text, '@') > 0 OR strpos(text, 'http') > 0 OR text ~ '[^\S ]|  |^ | $'
    THEN btrim(regexp_replace(regexp_replace(regexp_replace(lower(text),
         'https?://\S+', ' ', 'g'), '@\w+', ' ', 'g'), '\s+', ' ', 'g'))
    ELSE lower(text) END)"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0010_detection_run_stage")]

    operations = [
        migrations.RunSQL(
            f"""ALTER TABLE accounts_post
                ADD COLUMN text_chars integer GENERATED ALWAYS AS (length({NORMALISED})) STORED,
                ADD COLUMN text_key bigint GENERATED ALWAYS AS (hashtextextended({NORMALISED}, 0)) STORED""",
            "ALTER TABLE accounts_post DROP COLUMN text_key, DROP COLUMN text_chars",
        ),
    ]
