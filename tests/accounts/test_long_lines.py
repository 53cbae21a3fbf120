"""A line of gigabytes (a hostile file, a dump with no line breaks) is reported, never read into memory, and
the lines after it are imported."""

import csv
import io
import json

import pytest
from django.core.management import call_command

from accounts.importers import csvfiles, lines
from accounts.importers.lines import count_lines, numbered_lines
from accounts.models import Post
from tests.accounts.test_csv_importers import TWEETS_HEADER, USERS_HEADER, _tweet


class _Recording(io.BytesIO):
    """Remembers the longest piece any one read handed out."""

    longest = 0

    def readline(self, size: int = -1) -> bytes:
        line = super().readline(size)
        self.longest = max(self.longest, len(line))
        return line

    def read(self, size: int = -1) -> bytes:
        piece = super().read(size)
        self.longest = max(self.longest, len(piece))
        return piece


def test_an_over_long_line_is_read_past_in_pieces(monkeypatch):
    monkeypatch.setattr(lines, "PIECE", 64)
    handle = _Recording(b"one\n" + b"x" * 100_000 + b"\ntwo\n\n" + b"y" * 5_000)  # the last one has no ending
    assert list(numbered_lines(handle, 100)) == [(1, b"one\n"), (2, None), (3, b"two\n"), (4, b"\n"), (5, None)]
    assert handle.longest <= 101  # never more than the limit (and one) in memory
    text = io.StringIO("a,b\r\n" + "z" * 500 + "\r\nc,d\rlast", newline="")
    assert list(numbered_lines(text, 100)) == [(1, "a,b\r\n"), (2, None), (3, "c,d\r"), (4, "last")]
    counted = _Recording(b"a\n" + b"b" * 100_000 + b"\nc")
    assert count_lines(counted) == 3 and counted.longest <= 64
    assert (count_lines(io.BytesIO(b"a\n")), count_lines(io.BytesIO(b""))) == (1, 0)


@pytest.mark.django_db
def test_a_jsonl_line_over_8_mib_is_rejected_and_the_rest_imported(tmp_path, capsys):
    rows = [{"type": "account", "platform": "instagram", "id": "1", "handle": "ana"},
            {"type": "post", "platform": "instagram", "id": "p1", "account_id": "1", "posted_at": "2018-08-04T10:00:00Z"},
            {"type": "post", "platform": "instagram", "id": "huge", "account_id": "1",
             "posted_at": "2018-08-04T10:00:00Z", "text": "x" * (9 * 1024 * 1024)},
            {"type": "post", "platform": "instagram", "id": "p2", "account_id": "1", "posted_at": "2018-08-04T11:00:00Z"}]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows), encoding="utf-8")
    call_command("import_data", str(path), dataset="long", json=True)
    summary = json.loads(capsys.readouterr().out)
    assert [(p["line"], p["reason"]) for p in summary["problems"]] == [(3, "line longer than 8 MiB")]
    assert sorted(Post.objects.values_list("external_id", flat=True)) == ["p1", "p2"]
    from accounts.importers import jsonl

    assert jsonl.count_items([path]) == 4  # the progress total counts it as the item it was meant to be


@pytest.fixture
def small_csv_limits(monkeypatch):
    """A 64 MiB line would make a slow test: the same reading with a limit of 2,000 characters."""
    monkeypatch.setattr(csvfiles, "MAX_LINE_CHARS", 2_000)
    previous = csv.field_size_limit(2_000)
    yield
    csv.field_size_limit(previous)


@pytest.mark.django_db
def test_a_csv_row_with_an_over_long_line_or_field_is_rejected_and_the_rest_imported(tmp_path, capsys,
                                                                                     small_csv_limits):
    folder = tmp_path / "io"
    folder.mkdir()
    (folder / "op_users_csv_hashed.csv").write_text(USERS_HEADER + "u1,Ana,ana,,,,1,2,2016-05-01,en\n")
    (folder / "op_broken_users_csv_hashed.csv").write_text("userid," + "c" * 3_000 + "\nu2,x\n")  # its header
    long_text = "\n".join(["w" * 1_500] * 3)  # lines under the limit, one quoted field over it
    (folder / "op_tweets_csv_hashed.csv").write_text(TWEETS_HEADER + "".join([
        _tweet("1", "u1", "first", "2018-10-01 12:00"),  # line 2
        _tweet("2", "u1", "y" * 3_000, "2018-10-01 12:01"),  # line 3: a line over the limit
        _tweet("3", "u1", "third", "2018-10-01 12:02"),  # line 4
        _tweet("4", "u1", long_text, "2018-10-01 12:03"),  # lines 5-7: a field over the limit
        _tweet("5", "u1", "fifth", "2018-10-01 12:04"),  # line 8
    ]))
    call_command("import_data", str(folder), dataset="long", format="twitter-io", json=True)
    summary = json.loads(capsys.readouterr().out)
    problems = {(p["file"], p["line"]): p["reason"] for p in summary["problems"]}
    assert problems[("op_tweets_csv_hashed.csv", 3)] == "line 3 is longer than 2,000 bytes or characters"
    assert problems[("op_tweets_csv_hashed.csv", 5)].startswith("cannot be read as CSV (field larger than field limit")
    # Reading starts again after the line where the field went over: the rest of that row is rejected too.
    assert problems[("op_tweets_csv_hashed.csv", 7)] == "truncated row: fewer cells than the header"
    assert problems[("op_broken_users_csv_hashed.csv", 1)] == (
        "the header cannot be read: line 1 is longer than 2,000 bytes or characters")
    assert sorted(Post.objects.values_list("external_id", flat=True)) == ["1", "3", "5"]


@pytest.mark.django_db
@pytest.mark.parametrize(("format", "name"), [("twitter-io", "op_tweets_csv_hashed.csv"), ("ira-csv", "IRAhandle_tweets_1.csv"),
                                              ("crowdtangle", "ct.csv")])
def test_a_csv_whose_header_cannot_be_read_says_why(tmp_path, capsys, small_csv_limits, format, name):
    """An empty file, a header line over the limit and a header field over it are each rejected with their own
    reason, not as a file lacking columns, and the good file beside them is still imported."""
    good = tmp_path / "good" / "op_tweets_csv_hashed.csv"
    good.parent.mkdir()
    good.write_text(TWEETS_HEADER + _tweet("1", "u1", "first", "2018-10-01 12:00"))
    call_command("import_data", str(good), dataset="good", format="twitter-io", json=True)
    capsys.readouterr()
    reasons = {}
    for label, content in (("empty", ""), ("long line", "a," + "b" * 3_000 + "\n1,2\n"),
                           ("long field", 'a,"' + "b\n" * 1_500 + '"\n1,2\n')):
        path = tmp_path / label / name
        path.parent.mkdir()
        path.write_text(content)
        call_command("import_data", str(path), dataset="broken", format=format, json=True)
        summary = json.loads(capsys.readouterr().out)
        assert summary["status"] == "succeeded" and summary["rejected"] == 1, summary
        reasons[label] = summary["problems"][0]["reason"]
    assert reasons == {
        "empty": "the file is empty",
        "long line": "the header cannot be read: line 1 is longer than 2,000 bytes or characters",
        "long field": "the header cannot be read as CSV (field larger than field limit (2000))",
    }
    assert list(Post.objects.values_list("external_id", flat=True)) == ["1"]  # what was stored before is kept
