"""The demo campaign: deterministic, in Instaloader's format, and matching its ground truth."""

import json
import lzma
from collections import defaultdict
from datetime import UTC, datetime

import imagehash
import pytest
from PIL import Image

from accounts.demo import DemoSpec, generate_demo
from accounts.demo.generator import CORE_GROUPS, plan_demo, tree_digest


def _profile(folder):
    (path,) = [p for p in folder.glob("*_*.json.xz") if not p.name[0].isdigit()]
    return json.loads(lzma.decompress(path.read_bytes()))


def _posts(folder):
    return [json.loads(lzma.decompress(p.read_bytes())) for p in sorted(folder.glob("*_UTC.json.xz"))]


def test_same_seed_gives_identical_files_and_another_seed_does_not(small_demo, tmp_path):
    outdir, _ = small_demo
    again = tmp_path / "again"
    generate_demo(again, DemoSpec(seed=11, scale=0.03), processes=1)
    assert tree_digest(again) == tree_digest(outdir)
    other_plans, _ = plan_demo(DemoSpec(seed=12, scale=0.03))
    same_plans, _ = plan_demo(DemoSpec(seed=11, scale=0.03))
    assert [p.posts[0].taken_at for p in other_plans] != [p.posts[0].taken_at for p in same_plans]


def test_default_scale_meets_the_campaign_sizes():
    spec = DemoSpec()
    assert spec.organic_count >= 2000
    assert spec.suspicious_extra_count + 19 == 350
    assert DemoSpec(scale=10).organic_count * 5 >= 100_000  # ≥ 100,000 posts at --scale 10 (3–7 posts each)


def test_files_follow_instaloader_layout(small_demo):
    outdir, truth = small_demo
    folder = outdir / "dumpchump"
    profile = _profile(folder)
    assert profile["instaloader"]["node_type"] == "Profile"
    assert profile["node"]["username"] == "dumpchump"
    assert (folder / "id").read_text() == profile["node"]["id"]
    assert list(folder.glob("*_UTC_profile_pic.jpg"))
    for post in _posts(folder):
        node = post["node"]
        assert post["instaloader"]["node_type"] == "Post"
        stamp = datetime.fromtimestamp(node["taken_at_timestamp"], tz=UTC).strftime("%Y-%m-%d_%H-%M-%S")
        assert (folder / f"{stamp}_UTC.json.xz").exists()
        assert (folder / f"{stamp}_UTC.jpg").exists() or (folder / f"{stamp}_UTC_1.jpg").exists()
        assert node["owner"] == {"id": profile["node"]["id"], "username": "dumpchump"}
        with Image.open(next(folder.glob(f"{stamp}_UTC*.jpg"))) as image:
            assert image.format == "JPEG"


def test_ground_truth_matches_what_was_written(small_demo):
    outdir, truth = small_demo
    written = [p for p in outdir.iterdir() if p.is_dir() and p.name != "known_sources"]
    assert len(written) == truth["counts"]["accounts"]
    assert sum(len(_posts(folder)) for folder in written) == truth["counts"]["posts"]
    assert sum(1 for f in outdir.rglob("*.jpg") if "known_sources" not in f.parts) == truth["counts"]["images"]
    assert truth["counts"]["core_accounts"] == 19
    assert [g["name"] for g in truth["groups"]] == [stem for stem, _ in CORE_GROUPS]
    assert sum(len(g["accounts"]) for g in truth["groups"]) == 19
    for group in truth["groups"]:
        for account in group["accounts"]:
            assert group["stem"].replace(".", "") in account["username"].replace(".", "").replace("_", "")
            assert _profile(outdir / account["username"])["node"]["id"] == account["id"]
            assert len(_posts(outdir / account["username"])) == account["posts"]
    assert set(truth["organic_accounts"]).isdisjoint(truth["suspicious_accounts"])
    # Viral pictures re-shared by unrelated organic accounts: the false positives naive matching makes.
    organic = set(truth["organic_accounts"])
    assert any(len(set(v["shared_by"]) & organic) >= 2 for v in truth["viral_images"])
    assert len(truth["organic_accounts"]) + len(truth["suspicious_accounts"]) == truth["counts"]["accounts"]


def test_creation_block_is_created_together_and_silent_from_month_end(small_demo):
    outdir, truth = small_demo
    block = truth["creation_block"]
    assert len(block["accounts"]) == 5
    created = {a["created"][:10] for g in truth["groups"] for a in g["accounts"] if a["username"] in block["accounts"]}
    assert created == {block["created_on"]}
    silent_from = datetime.fromisoformat(block["silent_from"]).replace(tzinfo=UTC)
    ids = []
    for username in block["accounts"]:
        posts = _posts(outdir / username)
        assert posts
        assert max(p["node"]["taken_at_timestamp"] for p in posts) < silent_from.timestamp() + 86400
        ids.append(int(_profile(outdir / username)["node"]["id"]))
    assert max(ids) - min(ids) < 500_000  # created the same day: neighbouring ids


def test_core_posts_same_memes_minutes_apart_with_growing_interactions(small_demo):
    outdir, truth = small_demo
    waves = truth["waves"]
    minutes_apart = weeks_apart = 0
    for wave in waves:
        times = sorted(p["taken_at"] for p in wave["posts"])
        gaps = [b - a for a, b in zip(times, times[1:])]
        minutes_apart += sum(g <= 30 * 60 for g in gaps)
        weeks_apart += sum(g >= 14 * 86400 for g in gaps)
    assert minutes_apart > 40 and weeks_apart >= 1
    likes = defaultdict(list)
    for group in truth["groups"][1:]:
        for account in group["accounts"]:
            for post in _posts(outdir / account["username"]):
                node = post["node"]
                likes[group["name"]].append((node["taken_at_timestamp"], node["edge_media_preview_like"]["count"]))
    import numpy as np

    for name, series in likes.items():
        days = np.array([t for t, _ in series]) / 86400
        slope = np.polyfit(days, np.log2([max(n, 1) for _, n in series]), 1)[0]
        assert 20 < 1 / slope < 90, f"{name}: likes double every {1 / slope:.0f} days"  # exponential growth


def test_copies_of_one_meme_are_near_duplicates_and_organic_scenes_are_not(small_demo):
    outdir, truth = small_demo
    wave = max(truth["waves"], key=lambda w: len(w["posts"]))
    hashes = []
    for post in wave["posts"]:
        if post["alteration"] in {"identical", "recompress", "resize", "brightness"}:
            stamp = datetime.fromtimestamp(post["taken_at"], tz=UTC).strftime("%Y-%m-%d_%H-%M-%S")
            with Image.open(outdir / post["username"] / f"{stamp}_UTC.jpg") as image:
                hashes.append(imagehash.phash(image))
    organic = []
    sharers = {u for v in truth["viral_images"] for u in v["shared_by"]}
    for username in [u for u in truth["organic_accounts"] if u not in sharers][:15]:
        first = sorted((outdir / username).glob("*_UTC.jpg"))[0]
        with Image.open(first) as image:
            organic.append(imagehash.phash(image))
    if len(hashes) >= 2:
        assert max(a - b for a in hashes for b in hashes) <= 10
    distances = [a - b for i, a in enumerate(organic) for b in organic[i + 1:]]
    assert min(distances) > 12
    assert sum(distances) / len(distances) > 24


def test_stolen_avatar_matches_known_source(small_demo):
    outdir, truth = small_demo
    with Image.open(outdir / truth["stolen_avatar"]["known_source"]) as source:
        source_hash = imagehash.phash(source)
    for username in truth["stolen_avatar"]["accounts"]:
        (avatar,) = (outdir / username).glob("*_profile_pic.jpg")
        with Image.open(avatar) as image:
            assert imagehash.phash(image) - source_hash <= 12, username


@pytest.mark.parametrize("scale", [0, -1])
def test_generate_demo_command_rejects_bad_scale(scale, tmp_path):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="scale"):
        call_command("generate_demo", str(tmp_path / "x"), scale=scale)
