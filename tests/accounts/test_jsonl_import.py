"""The project's own JSONL: validated line by line against the published schema."""

import json

import pytest
from django.core.management import call_command

from accounts.importers import guess_format
from accounts.models import Account, Post
from media_analysis.models import MediaAsset

pytestmark = pytest.mark.django_db


def test_jsonl_import_validates_each_line(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "media").mkdir()
    Image.new("RGB", (64, 64), "navy").save(tmp_path / "media" / "a.png")
    lines = [
        {"type": "account", "platform": "instagram", "id": "1", "handle": "ana", "display_name": "<b>Ana</b>",
         "created_at": "2018-08-03T09:00:00Z", "followers": 10},
        {"type": "post", "platform": "instagram", "id": "p1", "account_id": "1", "posted_at": "2018-08-04T10:00:00+02:00",
         "text": "hi #Resist", "media": ["media/a.png", "../../etc/passwd", "https://cdn.example/x.jpg"]},
        {"type": "post", "platform": "instagram", "id": "p2", "account_id": "1"},
        {"type": "post", "platform": "instagram", "id": "p3", "account_id": "404", "posted_at": "2018-08-04T10:00:00Z"},
        {"type": "account", "platform": "instagram", "id": "2", "handle": "bob", "followers": -5},
        {"type": "post", "platform": "instagram", "id": "p4", "account_id": "1", "posted_at": "last tuesday"},
    ]
    text = "\n".join(json.dumps(line) for line in lines) + "\n{broken json\n\n"
    path = tmp_path / "export.jsonl"
    path.write_text(text, encoding="utf-8")
    assert guess_format([path]) == "jsonl"
    call_command("import_data", str(path), dataset="jsonl", json=True)
    summary = json.loads(capsys.readouterr().out)
    rejected = {p["line"]: p for p in summary["problems"] if not p["kept"]}
    assert set(rejected) == {3, 4, 5, 6, 7}
    assert "posted_at" in rejected[3]["reason"]
    assert "unknown" in rejected[4]["reason"]
    assert rejected[5]["column"] == "followers"
    assert "unreadable date" in rejected[6]["reason"]
    assert "not valid JSON" in rejected[7]["reason"]
    warnings = [p["reason"] for p in summary["problems"] if p["kept"]]
    assert any("outside the import folder" in w for w in warnings)
    assert any("URLs are recorded" in w for w in warnings)
    post = Post.objects.get(external_id="p1")
    assert post.hashtags == ["resist"] and post.media.count() == 1
    assert MediaAsset.objects.count() == 1
    assert Account.objects.get(external_id="1").display_name == "<b>Ana</b>"  # stored as given; escaped on output
    assert Post.objects.count() == 1


def test_reposts_point_at_originals_stored_before_them_in_a_later_batch_or_after_them(tmp_path, monkeypatch):
    from accounts import services
    from accounts.importers import load

    monkeypatch.setattr(services, "BATCH_SIZE", 3)  # the original of r1 sits in an earlier batch, r2's comes later
    linked_after = []
    link = load.reposts_link
    monkeypatch.setattr(load, "reposts_link", lambda **kwargs: linked_after.append(link(**kwargs)))

    def post(id_, repost_of=""):
        return {"type": "post", "platform": "twitter", "id": id_, "account_id": "1", "repost_of": repost_of,
                "posted_at": "2018-08-04T10:00:00Z", "text": f"post {id_}"}

    lines = [{"type": "account", "platform": "twitter", "id": "1", "handle": "ana"}, post("o1"), post("x"),
             post("r1", "o1"), post("r2", "o2"), post("y"), post("o2"), post("r3", "elsewhere")]
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    call_command("import_data", str(path), dataset="reposts", json=True)
    originals = dict(Post.objects.filter(repost_of_external_id__gt="").values_list("external_id", "repost_of__external_id"))
    assert originals == {"r1": "o1", "r2": "o2", "r3": None}  # r3's original is not in the data
    assert linked_after == [1]  # r1 was linked as it was stored; only r2 waited for the end
