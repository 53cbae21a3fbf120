"""Watchlists: named lists of handles and ids, matched on id, handle and past handles."""

import pytest
from django.core.management import call_command

from accounts.models import Account, Cluster, ClusterMember, DetectionRun, HandleChange, Platform
from accounts.watchlists import cluster_watchlist_overlap, parse_entry, watchlist_hits

pytestmark = pytest.mark.django_db


def test_parse_entry():
    assert parse_entry("@DumpChump") == ("handle", "dumpchump")
    assert parse_entry("  handle:bob.news ") == ("handle", "bob.news")
    assert parse_entry("12345") == ("id", "12345")
    assert parse_entry("id:a1f3") == ("id", "a1f3")
    assert parse_entry("4f1c2e0b9c0f4d2a8e1b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f")[0] == "id"
    assert parse_entry("<script>alert(1)</script>") is None
    assert parse_entry("", "auto") is None


def test_watchlist_flags_accounts_by_id_handle_and_past_handle(tmp_path, cast, capsys):
    instagram, twitter = Platform.objects.get(slug="instagram"), Platform.objects.get(slug="twitter")
    by_id = Account.objects.create(platform=twitter, external_id="555", handle="someone")
    by_handle = Account.objects.create(platform=instagram, external_id="1", handle="DumpChump")
    renamed = Account.objects.create(platform=instagram, external_id="2", handle="new_name")
    HandleChange.objects.create(account=renamed, field="handle", old_value="old_name", new_value="new_name")
    unlisted = Account.objects.create(platform=instagram, external_id="3", handle="innocent")
    listing = tmp_path / "takedown.csv"
    listing.write_text("# published takedown list\n555,extra column\n@dumpchump\nold_name\n<bad entry>\n@dumpchump\n",
                       encoding="utf-8")
    call_command("import_watchlist", "Takedown 2019", str(listing))
    out = capsys.readouterr().out
    assert "3 added" in out and "1 rejected" in out
    hits = watchlist_hits(user=cast["investigator"], account_ids=[by_id.pk, by_handle.pk, renamed.pk, unlisted.pk])
    assert hits == {by_id.pk: ["Takedown 2019"], by_handle.pk: ["Takedown 2019"], renamed.pk: ["Takedown 2019"]}
    assert watchlist_hits(user=cast["outsider"], account_ids=[by_id.pk]) == {}
    call_command("import_watchlist", "Takedown 2019", str(listing))
    assert "0 added, 3 already listed" in capsys.readouterr().out


def test_platform_restricted_list_and_cluster_overlap(tmp_path, cast):
    instagram, twitter = Platform.objects.get(slug="instagram"), Platform.objects.get(slug="twitter")
    insta = Account.objects.create(platform=instagram, external_id="10", handle="twin")
    tweet = Account.objects.create(platform=twitter, external_id="11", handle="twin")
    other = Account.objects.create(platform=twitter, external_id="12", handle="other")
    listing = tmp_path / "list.txt"
    listing.write_text("twin\n", encoding="utf-8")
    call_command("import_watchlist", "IG only", str(listing), platform="instagram")
    hits = watchlist_hits(user=cast["lead"], account_ids=[insta.pk, tweet.pk])
    assert hits == {insta.pk: ["IG only"]}
    run = DetectionRun.objects.create()
    cluster = Cluster.objects.create(detection_run=run, label="c", size=3)
    for account in (insta, tweet, other):
        ClusterMember.objects.create(cluster=cluster, account=account)
    assert cluster_watchlist_overlap(user=cast["lead"], cluster=cluster) == [
        {"watchlist": "IG only", "listed": 1, "members": 3}
    ]


def test_same_id_on_two_platforms_flags_both_unless_the_list_names_one(tmp_path, cast):
    instagram, twitter = Platform.objects.get(slug="instagram"), Platform.objects.get(slug="twitter")
    insta = Account.objects.create(platform=instagram, external_id="42", handle="a")
    tweet = Account.objects.create(platform=twitter, external_id="42", handle="b")
    listing = tmp_path / "ids.txt"
    listing.write_text("id:42\n", encoding="utf-8")
    call_command("import_watchlist", "Any platform", str(listing))
    call_command("import_watchlist", "Twitter only", str(listing), platform="twitter")
    hits = watchlist_hits(user=cast["investigator"], account_ids=[insta.pk, tweet.pk])
    assert hits == {insta.pk: ["Any platform"], tweet.pk: ["Any platform", "Twitter only"]}


def test_a_line_too_long_to_be_an_entry_is_rejected_unread(tmp_path):
    from accounts.models import Watchlist
    from accounts.watchlists import watchlist_import_file

    listing = tmp_path / "list.txt"
    listing.write_text("@ana\r\n" + "x" * 100_000 + "\r\n@bob\r\n", encoding="utf-8")
    result = watchlist_import_file(name="Long", path=listing, platform=None, user=None)
    assert [(r.line, r.reason) for r in result.rejected] == [(2, "line longer than 64 KiB")]
    assert sorted(Watchlist.objects.get(name="Long").entries.values_list("value", flat=True)) == ["ana", "bob"]
