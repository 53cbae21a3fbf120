"""Each picture's hash_xid: the id of the transaction that last wrote its hashes or its state, stamped by a
trigger whatever code path writes them. The in-memory lookup copy (media_analysis.hash_scan) reads the rows
written since it was loaded by this column: every row its snapshot could not see has a transaction id at or
above that snapshot's xmin. The column is not a model field: nothing but the trigger writes it.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("media_analysis", "0005_rehash_for_signatures")]

    operations = [
        migrations.RunSQL(
            """
            ALTER TABLE media_analysis_mediaasset ADD COLUMN hash_xid bigint NOT NULL DEFAULT 0;
            CREATE INDEX media_hash_xid_idx ON media_analysis_mediaasset (hash_xid);
            CREATE FUNCTION media_analysis_stamp_hash_xid() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                NEW.hash_xid := pg_current_xact_id()::text::bigint;
                RETURN NEW;
            END $$;
            CREATE TRIGGER media_analysis_stamp_hash_xid
                BEFORE INSERT OR UPDATE OF hash_state, phash, centre, pdq ON media_analysis_mediaasset
                FOR EACH ROW EXECUTE FUNCTION media_analysis_stamp_hash_xid();
            """,
            """
            DROP TRIGGER media_analysis_stamp_hash_xid ON media_analysis_mediaasset;
            DROP FUNCTION media_analysis_stamp_hash_xid();
            ALTER TABLE media_analysis_mediaasset DROP COLUMN hash_xid;
            """,
        ),
    ]
