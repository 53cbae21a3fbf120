"""Twitter/X information-operations archives and the IRA tweet CSVs, messy as they come."""

import json
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from accounts.importers import guess_format
from accounts.importers.csvfiles import parse_datetime, parse_list, snowflake_time
from accounts.models import Account, Post

USERS_HEADER = ("userid,user_display_name,user_screen_name,user_reported_location,user_profile_description,"
                "user_profile_url,follower_count,following_count,account_creation_date,account_language\n")
TWEETS_HEADER = ("tweetid,userid,user_display_name,user_screen_name,user_reported_location,user_profile_description,"
                 "user_profile_url,follower_count,following_count,account_creation_date,account_language,tweet_language,"
                 "tweet_text,tweet_time,tweet_client_name,in_reply_to_userid,in_reply_to_tweetid,quoted_tweet_tweetid,"
                 "is_retweet,retweet_userid,retweet_tweetid,latitude,longitude,quote_count,reply_count,like_count,"
                 "retweet_count,hashtags,urls,user_mentions,poll_choices\n")
IRA_HEADER = ("external_author_id,author,content,region,language,publish_date,harvested_date,following,followers,"
              "updates,post_type,account_type,retweet,account_category,new_june_2018,alt_external_id,tweet_id,"
              "article_url,tco1_step1,tco2_step1,tco3_step1\n")


def _tweet(tweet_id, userid, text, when, hashtags="", urls="", mentions="", retweet="False", retweet_id=""):
    return (f'{tweet_id},{userid},Name,handle_{userid},,,,10,20,2016-05-01,en,en,"{text}",{when},Web,,,,{retweet},,'
            f'{retweet_id},,,0,1,2,3,"{hashtags}","{urls}","{mentions}",\n')


@pytest.fixture
def twitter_archive(tmp_path):
    folder = tmp_path / "io"
    folder.mkdir()
    users = USERS_HEADER + (
        "a1f3,\"Ana, \"\"the\"\" patriot\",ana_patriot,Texas,\"bio with\nnewline\",https://ana.example/?utm_source=x,"
        "1200,300,2016-05-01,en\n"
        "9876543210,Bob,bob_news,,,,7000,10,2017-01-15,es\n"
    )
    (folder / "op_users_csv_hashed.csv").write_bytes(b"\xef\xbb\xbf" + users.encode())
    tweets = TWEETS_HEADER + "".join([
        _tweet("1000000000000000001", "a1f3", "Vote! #MAGA", "2018-10-01 12:00", "[MAGA, Trump]", "[]", "[bob_news]"),
        _tweet("1000000000000000002", "9876543210", "read this", "2018-10-01 12:03", "[]",
               "['https://www.Example.com/story?utm_campaign=io&id=5']", ""),
        _tweet("1000000000000000003", "9876543210", "RT", "2018-10-01 12:04", "", "", "", "True", "1000000000000000001"),
        _tweet("1000000000000000004", "a1f3", "bad date", "yesterday-ish", "", "", ""),
        _tweet("1000000000000000001", "a1f3", "Vote! #MAGA", "2018-10-01 12:00", "[MAGA, Trump]", "[]", "[bob_news]"),
    ]) + "1000000000000000005,a1f3,Name\n"  # truncated last line
    (folder / "op_tweets_csv_hashed.csv").write_text(tweets, encoding="utf-8")
    return folder


@pytest.mark.django_db
def test_twitter_io_archive_import(twitter_archive, capsys):
    assert guess_format([twitter_archive]) == "twitter-io"
    call_command("import_data", str(twitter_archive), dataset="io", json=True)
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "twitter-io"
    ana = Account.objects.get(external_id="a1f3")
    assert ana.display_name == 'Ana, "the" patriot' and ana.bio == "bio with\nnewline"
    assert ana.external_url == "https://ana.example/"
    assert ana.created_at == datetime(2016, 5, 1, tzinfo=UTC) and ana.follower_count == 1200
    first = Post.objects.get(external_id="1000000000000000001")
    assert first.hashtags == ["maga", "trump"] and first.mentions == ["bob_news"]
    assert first.links == []  # "[]" stays empty
    retweet = Post.objects.get(external_id="1000000000000000003")
    assert retweet.links == [] and retweet.hashtags == []  # an empty field is no link and no hashtag
    assert retweet.repost_of_external_id == "1000000000000000001" and retweet.post_type == "retweet"
    link = Post.objects.get(external_id="1000000000000000002").links
    assert link == ["https://example.com/story?id=5"]
    assert not Post.objects.filter(links__contains=[""]).exists()
    assert Post.objects.count() == 3
    # Where each row was read goes to the report, never into what is stored.
    assert not [key for post in Post.objects.all() for key in post.extra if key.startswith("_") or key in ("file", "line")]
    reasons = {(p["line"], p["reason"].split(" ")[0]) for p in summary["problems"] if not p["kept"]}
    assert (5, "unreadable") in reasons  # the bad date, on its line
    assert (7, "truncated") in reasons
    call_command("import_data", str(twitter_archive), dataset="io", json=True)
    again = json.loads(capsys.readouterr().out)
    assert (again["created"], again["updated"]) == (0, 0)


@pytest.mark.django_db
def test_ira_full_layout_recovers_exact_time_and_handles_windows_encoding(tmp_path, capsys):
    tweet_id = "914580356430536707"
    exact = snowflake_time(tweet_id)
    minute = exact.strftime("%-m/%-d/%Y %H:%M")
    rows = IRA_HEADER + (
        f'2572896396,10_GOP,"Caf\xe9 na\xefve \u2013 #Trump",Unknown,English,{minute},10/1/2017 20:00,1052,9636,253,'
        f'RETWEET,Right,1,RightTroll,0,905874659358453760,{tweet_id},http://twitter.com/x,https://t.co/abc,,\n'
        "2572896396,10_GOP,No id here,Unknown,English,1/5/2017 8:00,1/5/2017 8:10,1052,9700,260,,Right,0,"
        "RightTroll,0,,,,,,\n"
    )
    path = tmp_path / "IRAhandle_tweets_1.csv"
    path.write_bytes(rows.replace("\u2013", "-").encode("cp1252"))
    assert guess_format([path]) == "ira-csv"
    call_command("import_data", str(path), dataset="ira", format="ira-csv", json=True)
    summary = json.loads(capsys.readouterr().out)
    assert summary["rejected"] == 0
    post = Post.objects.get(external_id=tweet_id)
    assert post.posted_at == exact and post.posted_at.microsecond % 1000 == 0
    assert post.text.startswith("Café naïve") and post.hashtags == ["trump"]
    assert post.links == ["https://twitter.com/x", "https://t.co/abc"]  # t.co kept as given
    account = Account.objects.get(external_id="2572896396")
    assert account.handle == "10_GOP" and account.follower_count == 9700
    no_id = Post.objects.exclude(external_id=tweet_id).get()
    assert no_id.posted_at == datetime(2017, 1, 5, 8, 0, tzinfo=UTC)


@pytest.mark.django_db
def test_ira_per_author_copy_is_detected_by_header(tmp_path):
    path = tmp_path / "Jenn_Abrams.csv"
    path.write_text("author_id,content,region,language,publish_date,harvested_date,following,followers,updates,"
                    "post_type,retweet\n"
                    "123,Hello world,United States,English,2017-02-16 08:10:00,2017-02-16 08:20:00,10,99,5,,0\n"
                    "123,Hello world,United States,English,2017-02-16 08:10:00,2017-02-16 08:20:00,10,99,5,,0\n",
                    encoding="utf-8")
    call_command("import_data", str(path), dataset="ira2")
    call_command("import_data", str(path), dataset="ira2")
    assert Account.objects.get(external_id="123").handle == "Jenn_Abrams"
    assert Post.objects.count() == 1  # duplicate rows and re-imports create nothing new


def test_list_literals_and_dates():
    assert parse_list("") == [] and parse_list("[]") == [] and parse_list("['']") == []
    assert parse_list("[maga, trump]") == ["maga", "trump"]
    assert parse_list("['https://a.example/x', 'https://b.example']") == ["https://a.example/x", "https://b.example"]
    assert parse_list("['unterminated") == ["unterminated"]
    assert parse_datetime("2018-01-02T03:04:05Z") == datetime(2018, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_datetime("2018-01-02 05:04:05+02:00") == datetime(2018, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_datetime("10/1/2017 19:58") == datetime(2017, 10, 1, 19, 58, tzinfo=UTC)
    assert parse_datetime("not a date") is None
    assert snowflake_time("12345") is None


@pytest.mark.django_db
def test_crowdtangle_instagram_maps_by_header_and_joins_instaloader_posts(tmp_path, capsys):
    from instaloader import Post as InstaPost

    path = tmp_path / "ct_instagram.csv"
    # Columns in an unusual order, one unknown column, one row with an unreadable date.
    path.write_text(
        "Extra Column,User Name,Account,Followers at Posting,Post Created,Type,Likes,Comments,Views,URL,Link,"
        "Description,Image Text\n"
        'x,dumpchump,Dump Chump,1200,2019-03-01 12:34:56 EST,Photo,55,4,,https://www.instagram.com/p/BuhZ3KnhgWc/,,'
        '"Not my president #ImpeachTrump https://bit.ly/abc?utm_source=ig",NOT MY PRESIDENT\n'
        "x,dumpchump,Dump Chump,1200,someday,Photo,1,1,,https://www.instagram.com/p/BuhZ3KnhgWd/,,text,\n",
        encoding="utf-8",
    )
    assert guess_format([path]) == "crowdtangle"
    call_command("import_data", str(path), dataset="ct", json=True)
    summary = json.loads(capsys.readouterr().out)
    post = Post.objects.get()
    assert post.external_id == str(InstaPost.shortcode_to_mediaid("BuhZ3KnhgWc"))
    assert post.posted_at == datetime(2019, 3, 1, 17, 34, 56, tzinfo=UTC)
    assert post.hashtags == ["impeachtrump"] and post.links == ["https://bit.ly/abc"]
    assert post.extra["image text"] == "NOT MY PRESIDENT" and post.like_count == 55
    assert Account.objects.get().display_name == "Dump Chump"
    assert [p["line"] for p in summary["problems"]] == [3]


@pytest.mark.django_db
def test_crowdtangle_missing_required_columns_are_reported(tmp_path, capsys):
    path = tmp_path / "ct_broken.csv"
    path.write_text("Page Name,Message,URL\nSome page,hello,https://facebook.com/1\n", encoding="utf-8")
    call_command("import_data", str(path), format="crowdtangle", dataset="ct2", json=True)
    summary = json.loads(capsys.readouterr().out)
    assert summary["rejected"] == 1
    assert "missing required columns: facebook id or user name, post created" in summary["problems"][0]["reason"]
    assert Post.objects.count() == 0


@pytest.mark.django_db
def test_reposts_point_at_their_originals(twitter_archive):
    call_command("import_data", str(twitter_archive), dataset="io", json=True)
    retweet = Post.objects.get(external_id="1000000000000000003")
    assert retweet.repost_of == Post.objects.get(external_id="1000000000000000001")


@pytest.mark.django_db
def test_a_reader_that_breaks_keeps_committed_batches_and_fails_the_run(monkeypatch):
    """Batches commit one by one: a file that breaks the reader half-way keeps the batches before it,
    the run is marked failed with the reason, and importing again finishes without duplicates."""
    from datetime import timedelta

    from accounts import services
    from accounts.importers.records import AccountRecord, PostRecord
    from accounts.models import ImportRun

    monkeypatch.setattr(services, "BATCH_SIZE", 10)
    when = datetime(2020, 1, 1, tzinfo=UTC)

    def records(fail: bool):
        yield AccountRecord(platform="twitter", external_id="acc", handle="acc")
        for n in range(25):
            if fail and n == 22:
                raise OSError("disk read error")
            yield PostRecord(platform="twitter", external_id=f"p{n}", account_external_id="acc", posted_at=when)

    run = services.import_run_queue(dataset_name="broken", format="jsonl", paths=[], user=None, enqueue=False)
    with pytest.raises(OSError):
        services.import_run_execute(run=run, records=records(fail=True))
    run.refresh_from_db()
    assert run.status == "failed" and "disk read error" in run.error
    assert Post.objects.count() == 19  # two full batches (1 account + 9 posts, then 10 posts) committed
    again = services.import_run_queue(dataset_name="broken", format="jsonl", paths=[], user=None, enqueue=False)
    again = services.import_run_execute(run=again, records=records(fail=False))
    assert again.status == "succeeded" and Post.objects.count() == 25 and again.created_count == 6

    # A run whose worker died stays "running" until the watchdog marks it failed.
    stuck = services.import_run_queue(dataset_name="broken", format="jsonl", paths=[], user=None, enqueue=False)
    assert services.import_run_claim(run_id=stuck.pk)
    assert services.import_runs_fail_stale() == 0
    ImportRun.objects.filter(pk=stuck.pk).update(heartbeat_at=when)
    assert services.import_runs_fail_stale(older_than=timedelta(minutes=15)) == 1
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "import the same files again" in stuck.error


@pytest.mark.parametrize(("content", "expected"), [
    ("Алёна,مرحبا,😀\n".encode() * 50 + b"bad \xff byte\n", "utf-8-sig"),  # one damaged byte in UTF-8
    (b"\xef\xbb\xbfname\nplain\n\xff\xfe\n", "utf-8-sig"),  # a UTF-8 byte-order mark says so
    ("caf\u00e9,na\u00efve,S\u00e3o Paulo\n".encode("cp1252") * 50, "cp1252"),
    ("caf\u00e9 na\u00efve\n".encode("cp1252") * 5 + "Ж\n".encode(), "cp1252"),  # mostly invalid: not UTF-8
    (b"plain ascii\n", "utf-8-sig"),
    ("@carol\n".encode("utf-16"), "utf-16"),
])
def test_the_encoding_is_told_from_the_bytes(tmp_path, content, expected):
    from accounts.importers.csvfiles import detect_encoding

    path = tmp_path / "file.csv"
    path.write_bytes(content)
    assert detect_encoding(path) == expected


@pytest.mark.django_db
def test_one_damaged_byte_does_not_garble_a_utf8_export(tmp_path):
    """A UTF-8 export with one corrupt byte: every other row keeps its non-Latin names, and the damaged row
    shows U+FFFD where the byte was, instead of the whole file being read as Windows-1252."""
    from accounts.services import import_paths

    folder = tmp_path / "io"
    folder.mkdir()
    rows = [f"u{n},Алёна {n},alena_{n},Київ,,,1,2,2016-05-01,uk\n".encode() for n in range(20)]
    rows[7] = b"u7,Al\xffna,alena_7,,,,1,2,2016-05-01,uk\n"
    (folder / "op_users_csv_hashed.csv").write_bytes(USERS_HEADER.encode() + b"".join(rows))
    run = import_paths(dataset_name="cyrillic", format="twitter-io", paths=[folder], user=None)
    assert (run.status, run.created_count) == ("succeeded", 20)
    assert Account.objects.get(external_id="u3").display_name == "Алёна 3"
    assert Account.objects.get(external_id="u3").location == "Київ"
    assert Account.objects.get(external_id="u7").display_name == "Al\ufffdna"


@pytest.mark.django_db
def test_a_file_named_twice_or_with_its_folder_is_read_once(twitter_archive):
    from accounts.services import import_paths

    users = twitter_archive / "op_users_csv_hashed.csv"
    once = import_paths(dataset_name="once", format="twitter-io", paths=[twitter_archive], user=None)
    Post.objects.all().delete()
    Account.objects.all().delete()
    again = import_paths(dataset_name="overlapping", format="twitter-io", user=None,
                         paths=[users, twitter_archive, users, twitter_archive / ".." / twitter_archive.name])
    assert [s["name"] for s in again.sources] == [s["name"] for s in once.sources]
    assert len(again.sources) == 2
    assert (again.read_count, again.created_count, again.rejected_count) == (
        once.read_count, once.created_count, once.rejected_count)
