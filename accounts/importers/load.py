# ruff: noqa: S608 - the SQL is assembled from this module's own column names; values always go as parameters or COPY
"""Bulk loading of imported records: PostgreSQL COPY into per-connection staging tables,
then set-based upserts. No row-by-row ORM saves: a batch of ten thousand posts is a
handful of statements whatever the format it came from.

Merge rule (the same for accounts and posts): a newer export's value replaces what we
hold, except that a value it leaves empty (NULL or "") keeps what we already know.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import orjson
from django.db import connection

ACCOUNT_TEXT = ("handle", "display_name", "bio", "external_url", "location", "language")
ACCOUNT_NULLABLE = ("created_at", "follower_count", "following_count", "post_count", "is_private", "is_verified")
POST_TEXT = ("text", "post_type", "language", "url", "repost_of_external_id", "reply_to_external_id")
POST_ARRAYS = ("hashtags", "mentions", "links")
POST_NULLABLE = ("like_count", "comment_count", "share_count", "view_count")

STAGING = {
    "import_stage_account": """
        seq integer, platform_id integer, external_id text, handle text, display_name text, bio text,
        external_url text, location text, language text, created_at timestamptz, follower_count bigint,
        following_count bigint, post_count bigint, is_private boolean, is_verified boolean, avatar_id bigint,
        extra jsonb""",
    "import_stage_post": """
        seq integer, platform_id integer, external_id text, account_external_id text, posted_at timestamptz,
        text text, hashtags text, mentions text, links text, post_type text, language text,
        url text, repost_of_external_id text, reply_to_external_id text, like_count bigint, comment_count bigint,
        share_count bigint, view_count bigint, extra jsonb, file text, line integer""",
}
ACCOUNT_STAGE_COLUMNS = ("seq", "platform_id", "external_id", *ACCOUNT_TEXT, *ACCOUNT_NULLABLE, "avatar_id", "extra")
POST_STAGE_COLUMNS = ("seq", "platform_id", "external_id", "account_external_id", "posted_at", *POST_TEXT[:1],
                      *POST_ARRAYS, *POST_TEXT[1:], *POST_NULLABLE, "extra", "file", "line")


def _staging_ready(cursor, table: str) -> None:
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({STAGING[table]})")
    cursor.execute(f"TRUNCATE {table}")


def _copy(cursor, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    # Temporary tables have no statistics until asked, and the join plans need them (the keys only: cheap).
    cursor.execute(f"ANALYZE {table} (platform_id, external_id)")


def _merged(columns: Iterable[str], text_columns: Iterable[str], old: str = "t", new: str = "s") -> list[str]:
    text = set(text_columns)
    return [
        f"COALESCE(NULLIF({new}.{c}, ''), {old}.{c})" if c in text else f"COALESCE({new}.{c}, {old}.{c})"
        for c in columns
    ]


def accounts_load(*, rows: list[tuple], dataset_id: int, import_run_id: int) -> tuple[int, int]:
    """Upsert staged accounts (rows in ACCOUNT_STAGE_COLUMNS order, one per key); returns (created, updated).
    A changed handle or display name is recorded as a HandleChange."""
    if not rows:
        return 0, 0
    columns = (*ACCOUNT_TEXT, *ACCOUNT_NULLABLE)
    merged = _merged(columns, ACCOUNT_TEXT)
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        _staging_ready(cursor, "import_stage_account")
        _copy(cursor, "import_stage_account", ACCOUNT_STAGE_COLUMNS, rows)
        match = "FROM import_stage_account s WHERE t.platform_id = s.platform_id AND t.external_id = s.external_id"
        cursor.execute("""
            INSERT INTO accounts_handlechange (account_id, field, old_value, new_value, observed_at, import_run_id)
            SELECT t.id, change.field, left(change.old, 500), left(change.new, 500), now(), %s
            FROM accounts_account t JOIN import_stage_account s
              ON t.platform_id = s.platform_id AND t.external_id = s.external_id
            CROSS JOIN LATERAL (VALUES ('handle', t.handle, s.handle),
                                       ('display_name', t.display_name, s.display_name)) AS change(field, old, new)
            WHERE change.old <> '' AND change.new <> '' AND change.old <> change.new""", [import_run_id])
        assignments = ", ".join(f"{c} = {m}" for c, m in zip(columns, merged, strict=True))
        cursor.execute(f"""
            UPDATE accounts_account t SET {assignments},
                   profile_image_id = COALESCE(s.avatar_id, t.profile_image_id), extra = t.extra || s.extra,
                   last_seen = now()
            {match} AND (ROW({', '.join(f"t.{c}" for c in columns)}, t.profile_image_id, t.extra)
                         IS DISTINCT FROM ROW({', '.join(merged)}, COALESCE(s.avatar_id, t.profile_image_id),
                                              t.extra || s.extra))""")
        updated = cursor.rowcount
        cursor.execute(f"UPDATE accounts_account t SET last_seen = now() {match}")
        cursor.execute(f"""
            INSERT INTO accounts_account (platform_id, external_id, {', '.join(columns)}, profile_image_id,
                                          first_seen, last_seen, review_status, extra)
            SELECT platform_id, external_id, {', '.join(columns)}, avatar_id, now(), now(), 'unreviewed', extra
            FROM import_stage_account
            ON CONFLICT (platform_id, external_id) DO NOTHING""")
        created = cursor.rowcount
        cursor.execute("""
            INSERT INTO accounts_account_datasets (account_id, dataset_id)
            SELECT t.id, %s FROM accounts_account t JOIN import_stage_account s
              ON t.platform_id = s.platform_id AND t.external_id = s.external_id
            ON CONFLICT DO NOTHING""", [dataset_id])
    return created, updated


def posts_load(*, rows: list[tuple], dataset_id: int) -> tuple[int, int, list[tuple[str, int | None, str, str]]]:
    """Upsert staged posts (rows in POST_STAGE_COLUMNS order, one per key). Returns (created, updated, orphans): orphans are
    (file, line, post id, account id) of posts whose account is unknown, which are not stored."""
    if not rows:
        return 0, 0, []
    columns = ("posted_at", *POST_TEXT, *POST_ARRAYS, *POST_NULLABLE)
    merged = _merged(columns, POST_TEXT)
    # Arrays are taken as given: a newer export that lists no hashtags means there are none.
    merged = [_array(c) if c in POST_ARRAYS else m for c, m in zip(columns, merged, strict=True)]
    values = [_array(c) if c in POST_ARRAYS else f"s.{c}" for c in columns]
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        _staging_ready(cursor, "import_stage_post")
        cursor.execute("SET LOCAL synchronous_commit = off")  # a crash loses at most the last batch, never consistency
        _copy(cursor, "import_stage_post", POST_STAGE_COLUMNS, rows)
        checked_per_row = not _references_locked(cursor, dataset_id)
        cursor.execute("""
            SELECT s.file, s.line, s.external_id, s.account_external_id FROM import_stage_post s
            WHERE NOT EXISTS (SELECT 1 FROM accounts_account a
                              WHERE a.platform_id = s.platform_id AND a.external_id = s.account_external_id)
            ORDER BY s.seq""")
        orphans = cursor.fetchall()
        latest = """(SELECT s.*, a.id AS account_id FROM import_stage_post s JOIN accounts_account a
                       ON a.platform_id = s.platform_id AND a.external_id = s.account_external_id) s"""
        assignments = ", ".join(f"{c} = {m}" for c, m in zip(columns, merged, strict=True))
        cursor.execute("""
            SELECT EXISTS (SELECT 1 FROM import_stage_post s JOIN accounts_post t
                           ON t.platform_id = s.platform_id AND t.external_id = s.external_id)""")
        updated = 0
        if cursor.fetchone()[0]:  # a re-import or a newer export: merge into the posts we hold
            cursor.execute(f"""
                UPDATE accounts_post t SET {assignments}
                FROM {latest}
                WHERE t.platform_id = s.platform_id AND t.external_id = s.external_id
                  AND ROW({', '.join(f"t.{c}" for c in columns)}) IS DISTINCT FROM ROW({', '.join(merged)})""")
            updated = cursor.rowcount
            # The posts the dataset links point at are locked by the statement that links them (see below).
            cursor.execute("""
                WITH held AS MATERIALIZED (
                    SELECT t.id FROM accounts_post t WHERE EXISTS (
                        SELECT 1 FROM import_stage_post s WHERE t.platform_id = s.platform_id
                                                             AND t.external_id = s.external_id)
                    FOR KEY SHARE)
                INSERT INTO accounts_post_datasets (post_id, dataset_id) SELECT id, %s FROM held
                ON CONFLICT DO NOTHING""", [dataset_id])
        # A repost whose original is stored already points at it from the start: setting it later (reposts_link)
        # writes every such row twice, with all its index entries. The accounts and originals the new posts point
        # at are locked FOR KEY SHARE by this same statement, so the rows it joins to are the rows it locks, even
        # while other connections commit theirs (see _references_locked).
        cursor.execute(f"""
            WITH accounts AS MATERIALIZED (
                SELECT a.id, a.platform_id, a.external_id FROM accounts_account a WHERE EXISTS (
                    SELECT 1 FROM import_stage_post s WHERE a.platform_id = s.platform_id
                                                         AND a.external_id = s.account_external_id)
                FOR KEY SHARE),
            originals AS MATERIALIZED (
                SELECT o.id, o.platform_id, o.external_id FROM accounts_post o WHERE EXISTS (
                    SELECT 1 FROM import_stage_post s WHERE s.repost_of_external_id <> '' AND o.platform_id = s.platform_id
                                                         AND o.external_id = s.repost_of_external_id)
                FOR KEY SHARE),
            created AS (
                INSERT INTO accounts_post (platform_id, external_id, account_id, {', '.join(columns)}, imported_at, extra,
                                           repost_of_id)
                SELECT s.platform_id, s.external_id, a.id, {', '.join(values)}, now(), s.extra, o.id
                FROM import_stage_post s
                JOIN accounts a ON a.platform_id = s.platform_id AND a.external_id = s.account_external_id
                LEFT JOIN originals o ON s.repost_of_external_id <> '' AND o.platform_id = s.platform_id
                                     AND o.external_id = s.repost_of_external_id
                -- In key order: batches stored side by side that share posts then wait on each other in
                -- one order only, never in a circle (a deadlock).
                ORDER BY s.platform_id, s.external_id
                ON CONFLICT (platform_id, external_id) DO NOTHING
                RETURNING id)
            INSERT INTO accounts_post_datasets (post_id, dataset_id) SELECT id, %s FROM created""", [dataset_id])
        created = cursor.rowcount
        if not checked_per_row:
            cursor.execute("SET LOCAL session_replication_role = origin")
    return created, updated, orphans


def _references_locked(cursor, dataset_id: int) -> bool:
    """Referential integrity for one batch of posts, checked set-based instead of row by row, where the
    database role allows it.

    Every post row PostgreSQL inserts queues four or five foreign-key checks (platform, account, original,
    and both sides of its dataset link), each a query of its own at commit: a quarter of a batch's time.
    The batch's statements only ever point at rows they join to, so the checks can only fail if a
    referenced row is deleted before the batch commits. Every referenced row is locked FOR KEY SHARE
    instead, set-based: the platforms and the dataset here, the accounts, originals and linked posts by
    the very statements that join to them (posts_load). That is the guarantee the per-row checks give
    (they take the same locks): a concurrent delete waits for the batch to commit. The per-row checks are
    then switched off for this batch's post statements only (session_replication_role, as pg_restore
    does); the caller's later statements in the transaction run with every trigger again. That switches
    off every trigger on the tables those statements write (accounts_post, accounts_post_datasets), not
    only the foreign-key ones: these tables have no other, and a test says so, so that a trigger added to
    them later is mirrored here instead of silently skipped by imports.

    Returns False, changing nothing, when the role may not set session_replication_role (not a superuser,
    e.g. a managed database): the per-row checks then run as usual."""
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = cursor.fetchone()
    if not (row and row[0]) or connection.get_autocommit():
        return False
    cursor.execute("SET LOCAL session_replication_role = replica")
    cursor.execute("""SELECT count(*) FROM (SELECT 1 FROM accounts_platform p
                                            WHERE p.id IN (SELECT platform_id FROM import_stage_post) FOR KEY SHARE) l""")
    cursor.execute("SELECT count(*) FROM (SELECT 1 FROM accounts_dataset WHERE id = %s FOR KEY SHARE) l", [dataset_id])
    return True


def _array(column: str) -> str:
    element = "text" if column == "links" else "varchar(300)"
    return f"string_to_array(s.{column}, E'\\x1f')::{element}[]"


def array_field(items: list[str]) -> str:
    """Array values go through COPY as one text field, items separated by U+001F (never part of an item)."""
    return "\x1f".join(item.replace("\x1f", "") for item in items)


def reposts_link(*, dataset_id: int) -> int:
    """Point reposts at their originals once both are stored: those whose original came later in the files
    (posts_load links the others as it stores them)."""
    with connection.cursor() as cursor:
        cursor.execute("""
            UPDATE accounts_post r SET repost_of_id = o.id
            FROM accounts_post_datasets d, accounts_post o
            WHERE d.dataset_id = %s AND r.id = d.post_id AND r.repost_of_id IS NULL AND r.repost_of_external_id <> ''
              AND o.platform_id = r.platform_id AND o.external_id = r.repost_of_external_id""", [dataset_id])
        return cursor.rowcount


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # json.dumps would build one per call


def jsonb(value: dict) -> str:
    """A JSON object as COPY text for a jsonb column (encoded directly: the adapter adds nothing here). orjson
    takes a tenth of the standard encoder's time, which a million posts notice; what it refuses (keys that are not
    strings, integers beyond 64 bits, lone surrogates) goes to the standard encoder, which says what it says."""
    if not value:
        return "{}"
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return _JSON.encode(value)
