"""Uneven crops: 10% off one side and nothing off the other moves a picture's centre by 5%, beyond what the
central region's scales tolerate. The central region moved in eight directions (and mirrored, and away from a
one-edge banner) finds those copies; lookups and media clusters use it on the real database."""

from __future__ import annotations

from dataclasses import asdict, replace
from importlib import import_module

import pytest
from PIL import ImageOps

from accounts.demo.images import add_banner
from media_analysis.matching import MOVES, Signature, Thresholds, media_match, signature
from tests.media_analysis.pictures import crop, square

UNEVEN = {
    "10% off the left only": lambda im: crop(im, 0.10, 0.0, 0.0, 0.0),
    "10% off the left and the top": lambda im: crop(im, 0.10, 0.10, 0.0, 0.0),
    "mirrored, 10% off one side": lambda im: ImageOps.mirror(crop(im, 0.10, 0.0, 0.0, 0.02)),
    "banner below, cropped into it and 10% off the top": lambda im: crop(add_banner(im, "#share #truth"),
                                                                         0.02, 0.10, 0.03, 0.08),
}
PHOTOGRAPHS = ["astronaut", "chelsea", "coffee", "camera"]


def _unmoved(found: Signature) -> Signature:
    return replace(found, shifted=(), shifted_flip=())


@pytest.mark.parametrize("alteration", UNEVEN)
@pytest.mark.parametrize("name", PHOTOGRAPHS)
def test_an_uneven_crop_matches_by_the_moved_centre_and_only_by_it(name, alteration):
    thresholds = Thresholds.from_settings()
    original = signature(square(name))
    copy = signature(UNEVEN[alteration](square(name)))
    assert not media_match(_unmoved(copy), _unmoved(original), thresholds).matched  # what the other signatures say
    evidence = media_match(copy, original, thresholds)
    assert evidence.matched and evidence.via == ("moved-mirror" if "mirrored" in alteration else "moved"), evidence
    assert evidence.distance <= thresholds.centre_shifted
    assert media_match(original, copy, thresholds) == evidence  # either way round
    for other in set(PHOTOGRAPHS + ["rocket", "motorcycle"]) - {name}:
        assert not media_match(copy, signature(square(other)), thresholds).matched, other


def test_a_match_by_a_moved_region_near_its_threshold_asks_the_keypoint_check_strictly():
    from media_analysis.matching import MOVED_SURE_MARGIN

    original = signature(square("chelsea"))
    asked: list[tuple[bool, bool]] = []

    def record(mirrored: bool, strict: bool) -> bool:
        asked.append((mirrored, strict))
        return True

    near = media_match(signature(crop(square("chelsea"), 0.10, 0.0, 0.0, 0.0)), original, confirm=record)
    close = media_match(signature(UNEVEN["banner below, cropped into it and 10% off the top"](square("chelsea"))), original,
                        confirm=record)
    assert media_match(signature(crop(square("chelsea"), 0.06, 0.05, 0.06, 0.05)), original, confirm=record).via == "centre"
    limit = Thresholds.from_settings().centre_shifted - MOVED_SURE_MARGIN
    assert near.via == close.via == "moved" and close.distance <= limit < near.distance
    assert asked == [(False, True), (False, False), (False, False)]


def test_moved_regions_need_their_own_tighter_threshold():
    original = signature(square("coffee"))
    copy = signature(crop(square("coffee"), 0.10, 0.0, 0.0, 0.0))
    distance = media_match(copy, original).distance
    assert not media_match(copy, original, replace(Thresholds.from_settings(), centre_shifted=distance - 1)).matched


def test_every_picture_has_eight_moved_regions_and_a_one_edge_banner_six_more():
    plain = signature(square("chelsea"))
    bannered = signature(add_banner(square("chelsea"), "#share"))
    assert len(MOVES) == 8 and len(plain.shifted) == len(plain.shifted_flip) == 8
    assert len(bannered.shifted) == len(bannered.shifted_flip) == 14
    assert len(set(plain.shifted)) == 8  # each window is another part of the picture
    # A mirror image's mirrored moved regions are the picture's own moved regions (each direction mirrored).
    mirrored = signature(ImageOps.mirror(square("chelsea")))
    assert set(mirrored.shifted_flip) == set(plain.shifted) and mirrored.shifted_flip != plain.shifted


def test_a_signature_stored_before_moved_regions_reads_without_them():
    stored = asdict(signature(square("rocket")))
    del stored["shifted"], stored["shifted_flip"]
    found = Signature.from_json(stored)
    assert found.shifted == () and found.shifted_flip == ()
    assert media_match(found, signature(square("rocket"))).matched


@pytest.mark.django_db
def test_pictures_hashed_before_moved_regions_are_hashed_again():
    from django.apps import apps

    from media_analysis.models import MediaAsset

    current = asdict(signature(square("rocket")))
    old = {k: v for k, v in current.items() if k not in {"shifted", "shifted_flip"}}
    rows = {label: MediaAsset.objects.create(sha256=f"{n:064x}", file=f"m/{n}.jpg", size_bytes=1, hash_state="done",
                                             signature=value)
            for n, (label, value) in enumerate({"old": old, "current": current, "none": None}.items())}
    failed = MediaAsset.objects.create(sha256="f" * 64, file="m/f.jpg", size_bytes=1, hash_state="failed",
                                       hash_error="not a picture")
    import_module("media_analysis.migrations.0009_rehash_for_shifted_centres").rehash(apps, None)
    states = {label: MediaAsset.objects.get(pk=row.pk).hash_state for label, row in rows.items()}
    assert states == {"old": "pending", "current": "done", "none": "done"}
    assert MediaAsset.objects.get(pk=failed.pk).hash_state == "failed"


@pytest.mark.django_db
def test_media_clusters_and_lookups_find_uneven_crops(tmp_path, settings, cast):
    from media_analysis.hashing import compute_hashes
    from media_analysis.selectors import media_similar
    from media_analysis.services import media_clusters_rebuild
    from tests.media_analysis.pictures import store_pictures

    settings.MEDIA_ROOT = str(tmp_path / "media")
    pictures = {"original": square("astronaut"), "other": square("coffee")}
    pictures |= {f"copy{n}": change(square("astronaut")) for n, change in enumerate(UNEVEN.values())}
    assets = store_pictures(tmp_path, pictures)

    media_clusters_rebuild()  # first appearance: the asset order, so the original comes first
    cluster = assets["original"].cluster_membership.cluster
    members = {m.asset.original_name.removesuffix(".jpg"): m for m in cluster.members.select_related("asset")}
    assert set(members) == {"original", "copy0", "copy1", "copy2", "copy3"}
    assert {members[f"copy{n}"].via for n in range(4)} <= {"moved", "moved-mirror"}
    # Matched by one coarse signature alone, so the keypoint check had its say, and agreed.
    assert all(members[f"copy{n}"].keypoints >= settings.CENTRE_CONFIRM_KEYPOINTS for n in range(4))
    assert assets["other"].cluster_membership.cluster != cluster

    probe = compute_hashes(tmp_path / "original.jpg", max_pixels=10**7).signature
    found = {m.asset.original_name: m.via for m in media_similar(user=cast["investigator"], signature=probe,
                                                                 picture=tmp_path / "original.jpg")}
    assert set(found) == {"original.jpg", "copy0.jpg", "copy1.jpg", "copy2.jpg", "copy3.jpg"}


@pytest.mark.parametrize("name", ["astronaut", "coffee", "camera", "grass"])
def test_one_reduction_gives_a_region_and_its_mirror_image_exactly(name):
    from media_analysis.matching import _centre, _region, _region_and_mirror

    picture = square(name, 256)
    for right, down in ((0.0, 0.0), *MOVES):
        window = _centre(picture, 0.7, right, down)
        assert _region_and_mirror(window) == (_region(window), _region(ImageOps.mirror(window)))


@pytest.mark.parametrize("alteration", UNEVEN)
@pytest.mark.parametrize("name", PHOTOGRAPHS)
def test_a_crops_outer_regions_meet_its_originals_central_region(name, alteration):
    """A lookup whose probe is the uneven crop finds the original through the probe's larger, off-centre windows
    (outer_regions): within the moved regions' threshold of the original's central 70%, and of no other
    photograph's."""
    from media_analysis.matching import hamming, outer_regions

    limit = Thresholds.from_settings().centre_shifted
    outer = outer_regions(UNEVEN[alteration](square(name)))
    assert len(outer) == 16

    def nearest(picture: object) -> int:
        found = signature(picture)
        return min(hamming(v, h) for v in outer for h in (found.centre[0], found.centre_flip))

    # The crop cut into a banner was cut from the picture with that banner.
    original = add_banner(square(name), "#share #truth") if "banner" in alteration else square(name)
    assert nearest(original) <= limit
    assert all(nearest(square(other)) > limit for other in set(PHOTOGRAPHS + ["rocket", "motorcycle"]) - {name})


@pytest.mark.django_db
@pytest.mark.parametrize("scan_max_rows", [5_000_000, 0], ids=["in-memory scan", "HNSW indexes"])
@pytest.mark.parametrize("name", PHOTOGRAPHS)
def test_a_lookup_by_an_uneven_crop_finds_its_original(tmp_path, settings, cast, name, scan_max_rows):
    """The probe is cut 10% off the left and the top: its own central and moved regions are too far from the
    stored original's central region, so only its outer regions bring the original in. Asked for pictures within
    the thresholds only (no nearest neighbours), by the probe's file and by the stored crop's id."""
    from media_analysis.hashing import compute_hashes
    from media_analysis.selectors import media_similar
    from tests.media_analysis.pictures import store_pictures

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MEDIA_SCAN_MAX_ROWS = scan_max_rows
    crop_of = UNEVEN["10% off the left and the top"]
    assets = store_pictures(tmp_path, {"original": square(name), "rocket": square("rocket"),
                                       "crop": crop_of(square(name))})
    probe = compute_hashes(tmp_path / "crop.jpg", max_pixels=10**7).signature

    def found(picture: object) -> set[str]:
        return {m.asset.original_name for m in media_similar(user=cast["investigator"], signature=probe,
                                                             picture=picture, candidates=0)}

    assert found(tmp_path / "crop.jpg") == found(assets["crop"].pk) == {"crop.jpg", "original.jpg"}
    assert found(None) == {"crop.jpg"}  # the signature alone: the original is not among the candidates
    (tmp_path / "gone.jpg").write_bytes(b"not a picture")
    assert found(tmp_path / "gone.jpg") == {"crop.jpg"}  # a probe file that cannot be read: the signature alone
