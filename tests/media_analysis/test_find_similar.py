"""Near-duplicate lookup through the pgvector indexes: copies found with who posted them, strangers not."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image, ImageEnhance

from accounts.models import Account, Platform, Post, PostMedia
from media_analysis.models import MediaAsset
from media_analysis.selectors import media_similar
from media_analysis.services import media_assets_register, media_file_store, media_hash_batch, media_hash_claim

pytestmark = pytest.mark.django_db


def _photo(name: str) -> Image.Image:
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB").resize((256, 256))


@pytest.fixture
def library(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    original = _photo("astronaut")
    files = {
        "original": original,
        "resized": original.resize((128, 128)),
        "brighter": ImageEnhance.Brightness(original).enhance(1.25),
        "stranger": _photo("coffee"),
    }
    paths = {}
    for name, image in files.items():
        paths[name] = tmp_path / f"{name}.jpg"
        image.save(paths[name], quality=70 if name == "resized" else 90)
    assets = media_assets_register(files=[(media_file_store(path=p), p.name) for p in paths.values()])
    media_hash_batch(asset_ids=media_hash_claim(limit=10))
    platform = Platform.objects.get(slug="instagram")
    start = datetime(2019, 1, 1, tzinfo=UTC)
    by_name = {}
    for offset, name in enumerate(["brighter", "original", "resized", "stranger"]):
        account = Account.objects.create(platform=platform, external_id=str(offset), handle=f"acct_{name}")
        post = Post.objects.create(platform=platform, external_id=f"p{offset}", account=account,
                                   posted_at=start + timedelta(minutes=offset), url=f"https://x.example/{name}")
        asset = MediaAsset.objects.get(original_name=f"{name}.jpg")
        PostMedia.objects.create(post=post, media=asset)
        by_name[name] = asset
    assert len(assets) == 4
    probe = tmp_path / "probe.png"
    original.resize((200, 200)).save(probe)
    return probe, by_name


def test_copies_are_found_ranked_with_sightings(library, cast):
    from media_analysis.hashing import compute_hashes

    probe, assets = library
    hashes = compute_hashes(probe, max_pixels=10**7)
    matches = media_similar(user=cast["investigator"], signature=hashes.signature, picture=probe, max_distance=10)
    found = {m.asset.pk for m in matches}
    assert {assets["original"].pk, assets["resized"].pk, assets["brighter"].pk} <= found
    assert assets["stranger"].pk not in found
    assert matches[0].phash_distance <= matches[-1].phash_distance
    first = [m for m in matches if m.first_seen]
    assert len(first) == 1 and first[0].asset == assets["brighter"]  # posted earliest
    assert first[0].sightings[0].handle == "acct_brighter"
    assert list(media_similar(user=cast["outsider"], signature=hashes.signature, picture=probe, max_distance=10)) == []


def test_matches_are_read_when_shown_and_the_first_seen_is_the_closest_of_the_earliest(library, cast,
                                                                                      django_assert_num_queries):
    """A lookup decides, orders and counts its matches at once, and reads a match's picture and posts only when it
    is shown (a viral picture's page shows sixty of thousands), once. Of copies posted at the same earliest moment,
    the closest is the first seen."""
    from media_analysis.hashing import compute_hashes

    probe, assets = library
    signature = compute_hashes(probe, max_pixels=10**7).signature
    matches = media_similar(user=cast["investigator"], signature=signature, picture=probe, max_distance=10)
    assert len(matches) == 3 and assets["stranger"].pk not in matches.asset_ids
    with django_assert_num_queries(3):  # the pictures, their posts, the accounts using them as avatars
        shown = matches[1:3]
    with django_assert_num_queries(0):
        assert [m.asset.pk for m in shown] == matches.asset_ids[1:3] and matches[2] is shown[1]
    everything = list(matches)
    assert [m.asset.pk for m in everything] == matches.asset_ids and everything[1] is shown[0]
    assert matches.first_seen.asset == assets["brighter"] and matches.first_seen.first_seen
    assert [m.first_seen for m in everything].count(True) == 1
    # Posted at the same moment as the brighter copy, the closer of the two is the first seen.
    brighter = Post.objects.get(post_media__media=assets["brighter"])
    Post.objects.filter(post_media__media=assets["resized"]).update(posted_at=brighter.posted_at)
    again = media_similar(user=cast["investigator"], signature=signature, picture=probe, max_distance=10)
    tied = [pk for pk in again.asset_ids if pk in (assets["brighter"].pk, assets["resized"].pk)]
    assert again.first_seen.asset.pk == tied[0]
    assert again.first_seen.first_posted_at == brighter.posted_at


def test_find_similar_command_json(library, capsys):
    probe, assets = library
    call_command("find_similar", str(probe), max_distance=8, json=True)
    (result,) = json.loads(capsys.readouterr().out)
    shas = {m["sha256"] for m in result["matches"]}
    assert assets["original"].sha256 in shas and assets["stranger"].sha256 not in shas
    assert all(m["posts"] and m["posts"][0]["account"].startswith("acct_") for m in result["matches"])
    with pytest.raises(CommandError, match="max-distance"):
        call_command("find_similar", str(probe), max_distance=99)


def test_find_similar_reports_each_unreadable_image_and_looks_up_the_others(library, capsys, tmp_path):
    """Every image named gets an entry; one that cannot be read does not stop the others. A folder stands for
    the pictures in it and its subfolders (not other files, not hidden ones)."""
    probe, assets = library
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    folder = tmp_path / "screenshots"
    (folder / "march").mkdir(parents=True)
    (folder / "march" / "copy.png").write_bytes(probe.read_bytes())
    (folder / "notes.txt").write_text("not a picture")
    (folder / ".thumbnails").mkdir()
    (folder / ".thumbnails" / "copy.png").write_bytes(b"hidden and broken")
    (tmp_path / "empty").mkdir()
    names = [bad, probe, tmp_path / "missing.jpg", folder, tmp_path / "empty"]
    with pytest.raises(CommandError, match="3 of 5 images could not be read"):
        call_command("find_similar", *map(str, names), json=True)
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == [str(bad), str(probe), str(tmp_path / "missing.jpg"),
                                             str(folder / "march" / "copy.png"), str(tmp_path / "empty")]
    errors = {r["image"]: r["error"] for r in results if "error" in r}
    assert errors == {str(bad): "not an image file (format not recognised)",
                      str(tmp_path / "missing.jpg"): "cannot open the file: No such file or directory",
                      str(tmp_path / "empty"): "a folder with no pictures in it"}
    for found in (results[1], results[3]):
        assert assets["original"].sha256 in {m["sha256"] for m in found["matches"]}
    with pytest.raises(CommandError, match="1 of 2"):
        call_command("find_similar", str(bad), str(probe))
    captured = capsys.readouterr()
    assert f"{bad}: not an image file" in captured.err
    assert f"{probe}: " in captured.out and "matches" in captured.out


def test_known_sources_take_the_readable_pictures_and_report_the_rest(tmp_path, settings, capsys):
    """A folder of downloaded stock portraits holds other files too: those are reported, never banked as
    pictures that could not match anything, and the readable pictures are still added."""
    from media_analysis.models import KnownSource

    settings.MEDIA_ROOT = str(tmp_path / "media")
    bank = tmp_path / "stock"
    (bank / "more").mkdir(parents=True)
    _photo("astronaut").save(bank / "astronaut.jpg")
    _photo("coffee").save(bank / "more" / "coffee.png")
    (bank / "licence.txt").write_text("not a picture")  # not named like a picture: left out of the folder
    (bank / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    (bank / "empty.jpg").write_bytes(b"")
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (600, 600, 3), dtype=np.uint8)).save(big)
    settings.MEDIA_MAX_FILE_BYTES = max(p.stat().st_size for p in bank.rglob("*")) + 1
    assert big.stat().st_size > settings.MEDIA_MAX_FILE_BYTES
    with pytest.raises(CommandError, match="3 of 5 files could not be added"):
        call_command("import_known_sources", str(bank), str(big), label="Stock site")
    err = capsys.readouterr().err
    assert f"{bank / 'broken.jpg'}: " in err and f"{bank / 'empty.jpg'}: " in err
    assert f"{big}: larger than the media size limit" in err and "licence.txt" not in err
    assert sorted(KnownSource.objects.values_list("asset__original_name", flat=True)) == ["astronaut.jpg", "coffee.png"]


def test_a_lookup_gives_every_stored_picture_the_verdict_media_match_gives_it(tmp_path, settings, cast):
    """Lookups decide copies within a sure whole-picture distance from the stored pHash column alone, and read
    full signatures only for the rest: every stored picture must still get exactly media_match's verdict (how it
    matched and at what distance), with and without the keypoint check, for every stored picture as the probe."""
    from PIL import ImageDraw, ImageOps

    from media_analysis.matching import Signature, Thresholds, media_match
    from media_analysis.services import KeypointChecks

    settings.MEDIA_ROOT = str(tmp_path / "media")
    original = _photo("astronaut")
    meme = original.copy()
    ImageDraw.Draw(meme).rectangle((0, 0, 255, 40), fill="white")
    pictures = {"original": original, "resized": original.resize((128, 128)), "mirrored": ImageOps.mirror(original),
                "cropped": original.crop((20, 20, 236, 236)), "grey": ImageOps.grayscale(original).convert("RGB"),
                "brighter": ImageEnhance.Brightness(original).enhance(1.3), "meme": meme,
                "coffee": _photo("coffee"), "chelsea": _photo("chelsea")}
    for name, image in pictures.items():
        image.save(tmp_path / f"{name}.jpg", quality=85)
    media_assets_register(files=[(media_file_store(path=tmp_path / f"{n}.jpg"), f"{n}.jpg") for n in pictures])
    media_hash_batch(asset_ids=media_hash_claim(limit=20))
    stored = {a.pk: Signature.from_json(a.signature) for a in MediaAsset.objects.filter(hash_state="done")}
    assert len(stored) == len(pictures)
    thresholds = Thresholds.from_settings()
    ways = set()
    for probe_id, probe in stored.items():
        for picture in (None, probe_id):
            checks = KeypointChecks(probe=picture)
            expected = {}
            for pk, signature in stored.items():
                evidence = media_match(probe, signature, thresholds, checks.with_probe(pk))
                if evidence.matched:
                    expected[pk] = (evidence.via, evidence.distance)
            found = {m.asset.pk: (m.via, m.distance)
                     for m in media_similar(user=cast["investigator"], signature=probe, picture=picture)}
            assert found == expected, (probe_id, picture)
            ways |= {via for via, _ in found.values()}
    assert {"phash", "phash-mirror"} <= ways and ways - {"phash", "phash-mirror"}  # sure, and read in full
