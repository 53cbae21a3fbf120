"""Hostile exports, generated: whatever bytes a file of any format holds (encodings, BOMs, NUL bytes, stray quotes, cut lines,
duplicated rows, broken list literals), an import reports what it cannot read instead of crashing, leaves what
was stored before it exactly as it was, and a second import of the same bytes creates and changes nothing."""

from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Account, Post
from accounts.services import import_paths
from tests.fuzzing import edited

pytestmark = pytest.mark.django_db

TWEETS_HEADER = ("tweetid,userid,user_display_name,user_screen_name,user_reported_location,user_profile_description,"
                 "user_profile_url,follower_count,following_count,account_creation_date,account_language,tweet_language,"
                 "tweet_text,tweet_time,tweet_client_name,in_reply_to_userid,in_reply_to_tweetid,quoted_tweet_tweetid,"
                 "is_retweet,retweet_userid,retweet_tweetid,latitude,longitude,quote_count,reply_count,like_count,"
                 "retweet_count,hashtags,urls,user_mentions,poll_choices\n")
USERS_HEADER = ("userid,user_display_name,user_screen_name,user_reported_location,user_profile_description,"
                "user_profile_url,follower_count,following_count,account_creation_date,account_language\n")
IRA_HEADER = ("external_author_id,author,content,region,language,publish_date,harvested_date,following,followers,"
              "updates,post_type,account_type,retweet,account_category,new_june_2018,alt_external_id,tweet_id,"
              "article_url,tco1_step1,tco2_step1,tco3_step1\n")


def _tweet(tweet_id: str, userid: str, text: str, when: str, tags: str = "[]", urls: str = "[]", retweet: str = "") -> str:
    return (f'{tweet_id},{userid},"Ana ""A""",ana_{userid},Texas,"bio\nline",https://a.example/?utm_source=x,10,20,'
            f'2016-05-01,en,en,"{text}",{when},Web,,,,{"True" if retweet else "False"},,{retweet},,,0,1,2,3,'
            f'"{tags}","{urls}","[bob]",\n')


def _samples(prefix: str) -> dict[str, dict[str, bytes]]:
    """A small clean export per format; `prefix` keeps the ids of one set apart from another's."""
    tweets = TWEETS_HEADER + "".join([
        _tweet(f"{prefix}1", f"{prefix}u1", "Vote! #MAGA @bob https://t.co/x", "2018-10-01 12:00", "[MAGA, Trump]",
               "['https://www.Example.com/s?utm_campaign=io&id=5']"),
        _tweet(f"{prefix}2", f"{prefix}u2", "read this", "2018-10-01T12:03:00+02:00"),
        _tweet(f"{prefix}3", f"{prefix}u2", "RT", "10/1/2018 12:04", retweet=f"{prefix}1"),
        _tweet(f"{prefix}4", f"{prefix}u1", "Caf\u00e9 \u2013 na\u00efve", "2018-10-02 01:00:00 UTC", "['caf\u00e9']"),
    ])
    snowflake = "914580356430536707" if prefix == "stored" else "914580356430536708"
    users = USERS_HEADER + f'{prefix}u1,"Ana, ""the"" one",ana,TX,"a\nbio",,1200,300,2016-05-01,en\n'
    ira = IRA_HEADER + (
        f'{prefix}9,10_GOP,"Hello #Trump https://t.co/abc",Unknown,English,10/1/2017 19:58,10/1/2017 20:00,1052,9636,'
        f'253,RETWEET,Right,1,RightTroll,0,,{snowflake},http://twitter.com/x,https://t.co/abc,,\n'
        f"{prefix}9,10_GOP,No id here,Unknown,English,1/5/2017 8:00,1/5/2017 8:10,1052,9700,260,,Right,0,"
        "RightTroll,0,,,,,,\n")
    shortcode = "BuhZ3KnhgWc" if prefix == "stored" else "BuhZ3KnhgWe"
    crowdtangle = (
        "Extra Column,User Name,Account,Followers at Posting,Post Created,Type,Likes,Comments,Views,URL,Link,"
        "Description,Image Text\n"
        f'x,{prefix}chump,Dump Chump,1200,2019-03-01 12:34:56 EST,Photo,55,4,,https://www.instagram.com/p/{shortcode}/,,'
        '"Not my president #ImpeachTrump https://bit.ly/abc?utm_source=ig",NOT MY PRESIDENT\n')
    lines = [
        {"type": "account", "platform": "instagram", "id": f"{prefix}a", "handle": "ana", "followers": 10},
        {"type": "post", "platform": "instagram", "id": f"{prefix}p1", "account_id": f"{prefix}a",
         "posted_at": "2018-08-04T10:00:00+02:00", "text": "hi #Resist @bob"},
        {"type": "post", "platform": "instagram", "id": f"{prefix}p2", "account_id": f"{prefix}a",
         "posted_at": "2018-08-05T10:00:00Z", "text": "again", "hashtags": ["x"]},
    ]
    return {
        "twitter-io": {"op_tweets_csv_hashed.csv": tweets.encode(), "op_users_csv_hashed.csv": users.encode()},
        "ira-csv": {"IRAhandle_tweets_1.csv": ira.encode()},
        "crowdtangle": {"ct_instagram.csv": crowdtangle.encode()},
        "jsonl": {"export.jsonl": "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()},
    }


HOSTILE = [b"\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"\xff", b"\xe9", b'"', b'""', b",", b"\n", b"\r", b"\r\n",
           b"[", b"]", b"'", b"\\", b"{", b"}", b"#", b"@", b"http://", b"\xe2\x80\xa8", b"9" * 40, b"-1", b"1e999",
           b"NaN", b"\t", b"\x1f", b"True", b"2018-13-45 25:61", "\U0001f600".encode(),
           b"\\ud800", b"\\udfff"]  # lone surrogates, as JSON escapes
NUMBERS = [b"1" + b"0" * 40, b"-" + b"9" * 30, b"9223372036854775808", b"1e999", b"-1", b"NaN", b"0x1F", b"1_000"]
LONG = [b"x" * 400, "\u00e9".encode() * 300, b"#" + b"a" * 400, b"@" + b"b" * 400, b"https://" + b"c" * 3000]
EDITS = st.lists(st.one_of(
    st.tuples(st.sampled_from(["insert", "delete", "cut", "repeat-line", "utf-16", "cp1252"]),
              st.floats(min_value=0, max_value=1),
              st.one_of(st.sampled_from(HOSTILE + LONG), st.binary(min_size=1, max_size=6))),
    # A well-formed file with an absurd value where a number or a word stood: a count past any column's range,
    # a field longer than its column.
    st.tuples(st.just("number"), st.floats(min_value=0, max_value=1), st.sampled_from(NUMBERS)),
    st.tuples(st.just("word"), st.floats(min_value=0, max_value=1), st.sampled_from(LONG)),
), min_size=1, max_size=5)


def _stored() -> dict[str, object]:
    """Everything an import may write, as plain values."""
    return {
        "posts": {p.external_id: (p.account.external_id, p.posted_at, p.text, p.hashtags, p.mentions, p.links,
                                  p.post_type, p.repost_of_id, p.like_count, p.extra)
                  for p in Post.objects.select_related("account")},
        "accounts": {a.external_id: (a.handle, a.display_name, a.bio, a.created_at, a.follower_count, a.extra)
                     for a in Account.objects.all()},
        "post_datasets": sorted(Post.datasets.through.objects.values_list("post__external_id", "dataset__name")),
    }


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


@pytest.fixture
def stored(tmp_path_factory) -> dict[str, object]:
    """A clean export of every format, imported before the hostile ones; what was stored, as plain values."""
    for name, files in _samples("stored").items():
        run = import_paths(dataset_name=f"stored-{name}", format=name, user=None,
                           paths=[_write(tmp_path_factory.mktemp("stored"), files)])
        assert run.status == "succeeded" and run.rejected_count == 0
    return _stored()


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data_format=st.sampled_from(["twitter-io", "ira-csv", "crowdtangle", "jsonl"]), which=st.integers(0, 1), edits=EDITS,
       auto=st.booleans())
def test_any_bytes_are_reported_never_crash_and_never_touch_what_was_stored(stored, tmp_path_factory, data_format,
                                                                            which, edits, auto):
    with transaction.atomic():  # each example starts from the stored exports alone
        files = dict(_samples("new")[data_format])
        name = sorted(files)[which % len(files)]
        files[name] = edited(files[name], edits)
        folder = _write(tmp_path_factory.mktemp("hostile"), files)
        run = import_paths(dataset_name="hostile", format="auto" if auto else data_format, paths=[folder], user=None)

        # A clear outcome: the run finished, or failed with a reason (a file no format can be told from).
        assert run.status == "succeeded" or (run.status == "failed" and run.error and auto), (run.status, run.error)
        after = _stored()
        for key in ("posts", "accounts"):
            assert {k: after[key].get(k) for k in stored[key]} == stored[key]
        assert [row for row in after["post_datasets"] if row[1].startswith("stored")] == stored["post_datasets"]
        assert all("\x00" not in (text or "") for _, _, text, *_ in after["posts"].values())
        assert run.rejected_count == run.rejections.filter(kept=False).count()
        assert all(reason for reason in run.rejections.values_list("reason", flat=True))

        if run.status == "succeeded":
            again = import_paths(dataset_name="hostile", format=run.format, paths=[folder], user=None)
            assert (again.status, again.created_count, again.updated_count) == ("succeeded", 0, 0)
            assert _stored() == after
        transaction.set_rollback(True)


@pytest.fixture
def stored_instaloader(small_demo, tmp_path_factory) -> tuple[dict[str, object], list[Path]]:
    """One demo account's Instaloader folder imported; the JSON files of another, to be made hostile."""
    outdir, _ = small_demo
    export = tmp_path_factory.mktemp("stored") / "export"
    shutil.copytree(outdir / "bluewave.now", export / "bluewave.now")
    run = import_paths(dataset_name="stored-instaloader", format="instaloader", paths=[export], user=None)
    assert run.status == "succeeded" and run.rejected_count == 0
    return _stored(), sorted((outdir / "dumpchump").glob("*.json.xz"))


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(which=st.integers(0, 10_000), edits=EDITS, compressed=st.booleans())
def test_any_instaloader_json_is_reported_never_crashes_and_never_touches_what_was_stored(
        stored_instaloader, small_demo, tmp_path_factory, which, edits, compressed):
    stored, candidates = stored_instaloader
    with transaction.atomic():
        export = tmp_path_factory.mktemp("hostile") / "export"
        shutil.copytree(small_demo[0] / "dumpchump", export / "dumpchump")
        target = export / "dumpchump" / candidates[which % len(candidates)].name  # the profile or one post
        content = edited(lzma.decompress(target.read_bytes()), edits)
        if compressed:
            target.write_bytes(lzma.compress(content))
        else:  # Instaloader writes plain .json too
            target.unlink()
            target.with_suffix("").write_bytes(content)
        run = import_paths(dataset_name="hostile", format="instaloader", paths=[export], user=None)

        assert run.status == "succeeded", run.error
        after = _stored()
        for key in ("posts", "accounts"):
            assert {k: after[key].get(k) for k in stored[key]} == stored[key]
        assert run.rejected_count == run.rejections.filter(kept=False).count()
        again = import_paths(dataset_name="hostile", format="instaloader", paths=[export], user=None)
        assert (again.status, again.created_count, again.updated_count) == ("succeeded", 0, 0)
        assert _stored() == after
        transaction.set_rollback(True)


def test_values_no_column_holds_are_reported_and_the_rest_of_the_file_is_imported(tmp_path):
    """What the generator above found: each of these failed the whole import."""
    long_id = "1" * 200
    tweets = TWEETS_HEADER + "".join([
        _tweet("11", "u1", "counts past any column", "2018-10-01 12:00").replace(",0,1,2,3,", f",0,1,{10**40},3,"),
        _tweet(long_id, "u1", "an id no platform has", "2018-10-01 12:01"),
        _tweet("12", "u1", "a retweet of an impossible id", "2018-10-01 12:02", retweet="9" * 300),
        _tweet("13", "u1", "fine", "2018-10-01 12:03"),
    ])
    users = USERS_HEADER + f"u1,Ana,{'a' * 300},TX,bio,,{2**63},300,2016-05-01,en\n"  # a handle past its column
    folder = _write(tmp_path / "io", {"op_tweets_csv_hashed.csv": tweets.encode(), "op_users_csv_hashed.csv": users.encode()})
    crowdtangle = _samples("new")["crowdtangle"]["ct_instagram.csv"].replace(b"BuhZ3KnhgWe", b"BuhZ3KnhgWeLongerThanAnyMediaId")

    run = import_paths(dataset_name="io", format="twitter-io", paths=[folder], user=None)
    ct_run = import_paths(dataset_name="ct", format="crowdtangle", paths=[_write(tmp_path / "ct", {"ct.csv": crowdtangle})],
                          user=None)

    assert run.status == "succeeded" and set(Post.objects.filter(platform__slug="twitter").values_list(
        "external_id", flat=True)) == {"11", "12", "13"}
    problems = {(r.column, r.kept): (r.file, r.line, r.reason) for r in run.rejections.all()}
    tweets, users = "op_tweets_csv_hashed.csv", "op_users_csv_hashed.csv"
    # Where each was read: every tweet row here spans two lines (its bio holds a newline).
    assert problems[("external_id", False)][:2] == (tweets, 4)
    assert "longer than 128 characters" in problems[("external_id", False)][2]
    assert problems[("like_count", True)][:2] == (tweets, 2) and "out of range" in problems[("like_count", True)][2]
    assert problems[("follower_count", True)][:2] == (users, 2)
    assert "out of range; stored empty" in problems[("follower_count", True)][2]
    assert problems[("repost_of_external_id", True)][:2] == (tweets, 6)
    assert "stored empty" in problems[("repost_of_external_id", True)][2]
    assert not any(key.startswith("_") for key in Account.objects.get(external_id="u1").extra)
    assert not any(key.startswith("_") for key in Post.objects.get(external_id="11").extra)
    assert Post.objects.get(external_id="11").like_count is None
    assert Post.objects.get(external_id="12").repost_of_external_id == ""
    assert Account.objects.get(external_id="u1").follower_count is None
    assert Account.objects.get(external_id="u1").handle == "a" * 255  # cut to its column, as names are
    assert ct_run.status == "succeeded"
    assert Post.objects.get(platform__slug="instagram").external_id.endswith("/p/BuhZ3KnhgWeLongerThanAnyMediaId/")


MEMBER_NAMES = ["op_tweets_csv_hashed.csv", "op_users_csv_hashed.csv", "a", "a/b.csv", "a/b.csv/c.csv", "x" * 300 + ".csv",
                "d/" + "y" * 250 + "/z.csv", "../up.csv", "/abs.csv", "C:/win.csv", "dir/", "\u00e9t\u00e9.csv",
                "sp ace/./t.csv", "back\\slash.csv", "con", ".hidden.csv"]


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")  # the archives written here repeat names on purpose
@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(members=st.lists(st.tuples(st.sampled_from(MEMBER_NAMES), st.sampled_from(["tweets", "users", "junk", "empty"])),
                        min_size=1, max_size=6),
       edits=st.one_of(st.just([]), EDITS), encrypted=st.booleans())
def test_any_zip_archive_is_reported_never_crashes_and_never_touches_what_was_stored(stored, tmp_path_factory, members,
                                                                                     edits, encrypted):
    import zipfile

    sample = _samples("new")["twitter-io"]
    contents = {"tweets": sample["op_tweets_csv_hashed.csv"], "users": sample["op_users_csv_hashed.csv"],
                "junk": bytes(range(256)) * 4, "empty": b""}
    folder = tmp_path_factory.mktemp("zip")
    archive = folder / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, content in members:
            bundle.writestr(zipfile.ZipInfo(name), contents[content], compress_type=zipfile.ZIP_DEFLATED)
    data = bytearray(archive.read_bytes())
    if encrypted:  # the first member marked encrypted, in its local and central headers: no password opens it
        data[6] |= 0x1
        data[data.index(b"PK\x01\x02") + 8] |= 0x1
    archive.write_bytes(edited(bytes(data), edits))
    with transaction.atomic():
        run = import_paths(dataset_name="hostile", format="auto", paths=[archive], user=None)

        assert run.status in {"succeeded", "failed"} and (run.status == "succeeded" or run.error), run.error
        after = _stored()
        for key in ("posts", "accounts"):
            assert {k: after[key].get(k) for k in stored[key]} == stored[key]
        transaction.set_rollback(True)


def test_lone_surrogates_in_json_are_replaced_not_a_crash(tmp_path):
    """Valid JSON, but no UTF-8 text (so no database) can hold a lone surrogate: each one becomes U+FFFD."""
    lines = ['{"type": "account", "platform": "instagram", "id": "a", "handle": "ana", "display_name": "x\\ud800y"}',
             '{"type": "post", "platform": "instagram", "id": "p1", "account_id": "a", "posted_at": "2018-08-04T10:00:00Z", '
             '"text": "hi \\ud83d\\ude00 and \\udc00 #tag", "hashtags": ["\\ud800x"]}']
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines))
    run = import_paths(dataset_name="d", format="jsonl", paths=[path], user=None)
    assert run.status == "succeeded" and run.rejected_count == 0
    post = Post.objects.get(external_id="p1")
    assert post.text == "hi \U0001f600 and \ufffd #tag"  # a pair is one character, kept
    assert post.hashtags == ["\ufffdx"] and Account.objects.get(external_id="a").display_name == "x\ufffdy"
