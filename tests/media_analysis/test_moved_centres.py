"""Uneven crops: 10% off one side and nothing off the other moves a picture's centre by 5%, beyond what the
central region's scales tolerate. The moved regions find those copies: the central region moved in eight
directions (and mirrored, and away from a one-edge banner), and the outer windows, where a crop's original's
central region sits. Lookups and media clusters use them on the real database."""

from __future__ import annotations

from dataclasses import asdict, replace
from importlib import import_module

import pytest
from PIL import ImageOps

from accounts.demo.images import add_banner
from media_analysis.matching import (
    LATER_FIELDS,
    MOVES,
    SCALES,
    WIDE_SCALES,
    Signature,
    Thresholds,
    hamming,
    media_match,
    signature,
)
from tests.media_analysis.pictures import crop, square

UNEVEN = {
    "10% off the left only": lambda im: crop(im, 0.10, 0.0, 0.0, 0.0),
    "10% off the left and the top": lambda im: crop(im, 0.10, 0.10, 0.0, 0.0),
    "10% off the right and the bottom": lambda im: crop(im, 0.0, 0.0, 0.10, 0.10),
    "10% off the left and the top, 5% off the right": lambda im: crop(im, 0.10, 0.10, 0.05, 0.0),
    "mirrored, 10% off one side": lambda im: ImageOps.mirror(crop(im, 0.10, 0.0, 0.0, 0.02)),
    "mirrored, 10% off the left and the top": lambda im: ImageOps.mirror(crop(im, 0.10, 0.10, 0.0, 0.0)),
    "banner below, cropped into it and 10% off the top": lambda im: crop(add_banner(im, "#share #truth"),
                                                                         0.02, 0.10, 0.03, 0.08),
}
# A full 10% off two adjacent sides: the moved central regions alone miss most of these (25 of the labelled set's
# 52 bases match), the outer windows find them.
CORNERS = {f"10% off the {x} and the {y}": (lambda im, cut=cut: crop(im, *cut))
           for x, y, cut in (("left", "top", (0.1, 0.1, 0, 0)), ("right", "top", (0, 0.1, 0.1, 0)),
                             ("left", "bottom", (0.1, 0, 0, 0.1)), ("right", "bottom", (0, 0, 0.1, 0.1)))}
PHOTOGRAPHS = ["astronaut", "chelsea", "coffee", "camera"]


def _unmoved(found: Signature) -> Signature:
    return replace(found, shifted=(), shifted_flip=(), outer=(), outer_flip=())


def _matches_no_other_photograph(copy: Signature, name: str) -> None:
    for other in set(PHOTOGRAPHS + ["rocket", "motorcycle"]) - {name}:
        assert not media_match(copy, signature(square(other))).matched, other


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
    _matches_no_other_photograph(copy, name)


@pytest.mark.parametrize("corner", CORNERS)
@pytest.mark.parametrize("name", PHOTOGRAPHS)
def test_the_outer_windows_alone_match_a_crop_of_two_adjacent_sides(name, corner):
    thresholds = Thresholds.from_settings()
    original = signature(square(name))
    copy = signature(CORNERS[corner](square(name)))
    windows_only = replace(copy, shifted=(), shifted_flip=())
    evidence = media_match(windows_only, replace(original, shifted=(), shifted_flip=()), thresholds)
    assert evidence.matched and evidence.via == "moved" and evidence.distance <= thresholds.centre_shifted, evidence
    _matches_no_other_photograph(copy, name)


def test_a_match_by_a_moved_region_near_its_threshold_asks_the_keypoint_check_strictly():
    from media_analysis.matching import MOVED_SURE_MARGIN

    original = signature(square("chelsea"))
    asked: list[tuple[bool, bool]] = []

    def record(mirrored: bool, strict: bool) -> bool:
        asked.append((mirrored, strict))
        return True

    near = media_match(signature(UNEVEN["mirrored, 10% off one side"](square("chelsea"))), original, confirm=record)
    close = media_match(signature(UNEVEN["banner below, cropped into it and 10% off the top"](square("chelsea"))), original,
                        confirm=record)
    assert media_match(signature(crop(square("chelsea"), 0.06, 0.05, 0.06, 0.05)), original, confirm=record).via == "centre"
    limit = Thresholds.from_settings().centre_shifted - MOVED_SURE_MARGIN
    assert (near.via, close.via) == ("moved-mirror", "moved") and close.distance <= limit < near.distance
    assert asked == [(True, True), (False, False), (False, False)]


def test_moved_regions_need_their_own_tighter_threshold():
    original = signature(square("coffee"))
    copy = signature(crop(square("coffee"), 0.10, 0.0, 0.0, 0.0))
    distance = media_match(copy, original).distance
    assert not media_match(copy, original, replace(Thresholds.from_settings(), centre_shifted=distance - 1)).matched


def test_every_picture_has_eight_moved_regions_eight_outer_and_inner_windows_and_a_one_edge_banner_six_more():
    plain = signature(square("chelsea"))
    bannered = signature(add_banner(square("chelsea"), "#share"))
    assert len(MOVES) == 8 and len(plain.shifted) == len(plain.shifted_flip) == 8
    assert len(bannered.shifted) == len(bannered.shifted_flip) == 14
    assert len(plain.outer) == len(plain.outer_flip) == len(bannered.outer) == 8
    assert len(set(plain.shifted)) == len(set(plain.outer)) == 8  # each window is another part of the picture
    assert plain.moved == plain.shifted + plain.outer and plain.moved_flip == plain.shifted_flip + plain.outer_flip
    # A mirror image's mirrored regions are the picture's own regions (each direction mirrored).
    mirrored = signature(ImageOps.mirror(square("chelsea")))
    assert set(mirrored.shifted_flip) == set(plain.shifted) and mirrored.shifted_flip != plain.shifted
    assert set(mirrored.outer_flip) == set(plain.outer) and mirrored.outer_flip != plain.outer
    assert len(plain.inner) == len(plain.inner_flip) == len(set(plain.inner)) == 8
    assert set(mirrored.inner_flip) == set(plain.inner) and mirrored.inner_flip != plain.inner
    assert not set(plain.inner) & set(plain.outer + plain.shifted)  # none of them is another's window
    # The central region at its other scales, mirrored, and at the wide scales: a mirror image's are the picture's.
    assert len(plain.scales_flip) == len(SCALES) - 1 and len(plain.wide) == len(plain.wide_flip) == len(WIDE_SCALES)
    assert mirrored.scales_flip == plain.centre[1:] and mirrored.wide_flip == plain.wide


@pytest.mark.parametrize("missing", [LATER_FIELDS, LATER_FIELDS[2:], LATER_FIELDS[4:]])
def test_a_signature_stored_before_moved_regions_reads_without_them(missing):
    stored = asdict(signature(square("rocket")))
    for name in missing:
        del stored[name]
    found = Signature.from_json(stored)
    assert all(getattr(found, name) == () for name in missing)
    assert media_match(found, signature(square("rocket"))).matched


@pytest.mark.django_db
@pytest.mark.parametrize(("migration", "added"), [("0009_rehash_for_shifted_centres", {"shifted", "shifted_flip"}),
                                                  ("0010_rehash_for_outer_windows", {"outer", "outer_flip"})])
def test_pictures_hashed_before_moved_regions_are_hashed_again(migration, added):
    from django.apps import apps

    from media_analysis.models import MediaAsset

    current = asdict(signature(square("rocket")))
    old = {k: v for k, v in current.items() if k not in added}
    rows = {label: MediaAsset.objects.create(sha256=f"{n:064x}", file=f"m/{n}.jpg", size_bytes=1, hash_state="done",
                                             signature=value)
            for n, (label, value) in enumerate({"old": old, "current": current, "none": None}.items())}
    failed = MediaAsset.objects.create(sha256="f" * 64, file="m/f.jpg", size_bytes=1, hash_state="failed",
                                       hash_error="not a picture")
    import_module(f"media_analysis.migrations.{migration}").rehash(apps, None)
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
    changes = list({**UNEVEN, **CORNERS}.values())  # two of the corners are uneven crops already
    pictures |= {f"copy{n}": change(square("astronaut")) for n, change in enumerate(changes)}
    assets = store_pictures(tmp_path, pictures)
    copies = {f"copy{n}" for n in range(len(changes))}

    media_clusters_rebuild()  # first appearance: the asset order, so the original comes first
    cluster = assets["original"].cluster_membership.cluster
    members = {m.asset.original_name.removesuffix(".jpg"): m for m in cluster.members.select_related("asset")}
    assert set(members) == {"original"} | copies
    assert {members[copy].via for copy in copies} <= {"moved", "moved-mirror"}
    # Matched by one coarse signature alone, so the keypoint check had its say, and agreed.
    assert all(members[copy].keypoints >= settings.CENTRE_CONFIRM_KEYPOINTS for copy in copies)
    assert assets["other"].cluster_membership.cluster != cluster

    probe = compute_hashes(tmp_path / "original.jpg", max_pixels=10**7).signature
    found = {m.asset.original_name: m.via for m in media_similar(user=cast["investigator"], signature=probe,
                                                                 picture=tmp_path / "original.jpg")}
    assert set(found) == {f"{name}.jpg" for name in {"original"} | copies}


@pytest.mark.parametrize("name", ["astronaut", "coffee", "camera", "grass"])
def test_one_reduction_gives_a_region_and_its_mirror_image_exactly(name):
    from media_analysis.matching import _centre, _region, _region_and_mirror

    picture = square(name, 256)
    for right, down in ((0.0, 0.0), *MOVES):
        window = _centre(picture, 0.7, right, down)
        assert _region_and_mirror(window) == (_region(window), _region(ImageOps.mirror(window)))


@pytest.mark.parametrize("alteration", UNEVEN)
@pytest.mark.parametrize("name", PHOTOGRAPHS)
def test_a_crops_outer_windows_meet_its_originals_central_region(name, alteration):
    """What a lookup whose probe is the uneven crop compares with the stored central regions (the only ones
    indexed): the probe's outer windows come within the moved regions' threshold of the original's central 70%,
    and of no other photograph's."""
    limit = Thresholds.from_settings().centre_shifted
    copy = signature(UNEVEN[alteration](square(name)))

    def nearest(picture: object) -> int:
        found = signature(picture)
        return min(hamming(v, h) for v in (*copy.outer, *copy.outer_flip) for h in (found.centre[0], found.centre_flip))

    # The crop cut into a banner was cut from the picture with that banner.
    original = add_banner(square(name), "#share #truth") if "banner" in alteration else square(name)
    assert nearest(original) <= limit
    assert all(nearest(square(other)) > limit for other in set(PHOTOGRAPHS + ["rocket", "motorcycle"]) - {name})


@pytest.mark.django_db
@pytest.mark.parametrize("scan_max_rows", [5_000_000, 0], ids=["in-memory scan", "HNSW indexes"])
@pytest.mark.parametrize("name", PHOTOGRAPHS)
def test_a_lookup_by_an_uneven_crop_finds_its_original(tmp_path, settings, cast, name, scan_max_rows):
    """The probe is cut 10% off the left and the top: its own central and moved central regions are too far from
    the stored original's central region, so only its outer windows bring the original in. Asked for pictures
    within the thresholds only (no nearest neighbours), with the probe's signature from its file and stored."""
    from media_analysis.hashing import compute_hashes
    from media_analysis.models import MediaAsset
    from media_analysis.selectors import media_similar, stored_signature
    from tests.media_analysis.pictures import store_pictures

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MEDIA_SCAN_MAX_ROWS = scan_max_rows
    crop_of = UNEVEN["10% off the left and the top"]
    assets = store_pictures(tmp_path, {"original": square(name), "rocket": square("rocket"),
                                       "crop": crop_of(square(name))})
    from_file = compute_hashes(tmp_path / "crop.jpg", max_pixels=10**7).signature
    stored = stored_signature(MediaAsset.objects.get(pk=assets["crop"].pk))
    assert stored == from_file

    def found(probe: Signature, picture: object) -> set[str]:
        return {m.asset.original_name for m in media_similar(user=cast["investigator"], signature=probe,
                                                             picture=picture, candidates=0)}

    assert found(from_file, tmp_path / "crop.jpg") == found(stored, assets["crop"].pk) == {"crop.jpg", "original.jpg"}
    assert found(from_file, None) == {"crop.jpg", "original.jpg"}  # the signature alone is enough
    assert found(replace(from_file, outer=(), outer_flip=()), None) == {"crop.jpg"}  # without its outer windows


@pytest.mark.parametrize("alteration", [*(a for a in UNEVEN if "banner" not in a), *CORNERS])
@pytest.mark.parametrize("name", PHOTOGRAPHS)
def test_an_originals_inner_windows_meet_its_uneven_crops_central_region(name, alteration):
    """What a lookup whose probe is the original compares with the stored central regions: its inner windows come
    within the moved regions' threshold of each uneven crop's central 70% (or of its mirror image's), and of no
    other photograph's."""
    limit = Thresholds.from_settings().centre_shifted
    original = signature(square(name))

    def nearest(picture: object) -> int:
        return min(hamming(v, signature(picture).centre[0]) for v in (*original.inner, *original.inner_flip))

    assert nearest(UNEVEN.get(alteration, CORNERS.get(alteration))(square(name))) <= limit
    assert all(nearest(square(other)) > limit for other in set(PHOTOGRAPHS + ["rocket", "motorcycle"]) - {name})


@pytest.mark.django_db
@pytest.mark.parametrize("scan_max_rows", [5_000_000, 0], ids=["in-memory scan", "HNSW indexes"])
def test_a_lookup_by_an_original_finds_its_uneven_crops(tmp_path, settings, cast, scan_max_rows):
    """The other way round: the probe is the original, its copies are stored cut unevenly. Asked for pictures within
    the thresholds only (no nearest neighbours, which in a small library would bring everything in), it finds
    every crop through its inner windows; without them it misses most of those cut off two sides."""
    from media_analysis.hashing import compute_hashes
    from media_analysis.selectors import media_similar
    from tests.media_analysis.pictures import store_pictures

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MEDIA_SCAN_MAX_ROWS = scan_max_rows
    changes = {**{a: c for a, c in UNEVEN.items() if "banner" not in a}, **CORNERS}
    crops = {f"crop{n}": change(square("astronaut")) for n, change in enumerate(changes.values())}
    store_pictures(tmp_path, {"rocket": square("rocket"), "coffee": square("coffee"), **crops})
    square("astronaut").save(tmp_path / "original.jpg", quality=90)
    probe = compute_hashes(tmp_path / "original.jpg", max_pixels=10**7).signature

    def found(signature: Signature) -> set[str]:
        return {m.asset.original_name.removesuffix(".jpg") for m in media_similar(
            user=cast["investigator"], signature=signature, picture=tmp_path / "original.jpg", candidates=0)}

    assert found(probe) == set(crops)
    without = found(replace(probe, inner=(), inner_flip=()))
    assert len(without) <= len(crops) - 3, without


# Cut down on every side: the copy's central 70% is a smaller part of the original than the original's own.
EVERY_SIDE = {
    "8% off every side": lambda im: crop(im, 0.08, 0.08, 0.08, 0.08),
    "10% off every side": lambda im: crop(im, 0.10, 0.10, 0.10, 0.10),
    "6%, 10%, 9% and 7% off the sides": lambda im: crop(im, 0.06, 0.10, 0.09, 0.07),
    "mirrored, 8% off every side": lambda im: ImageOps.mirror(crop(im, 0.08, 0.08, 0.08, 0.08)),
}


@pytest.mark.django_db
@pytest.mark.parametrize("scan_max_rows", [5_000_000, 0], ids=["in-memory scan", "HNSW indexes"])
@pytest.mark.parametrize("name", ["astronaut", "chelsea"])
def test_lookups_find_a_copy_cut_down_on_every_side_and_its_original_either_way_round(tmp_path, settings, cast, name,
                                                                                     scan_max_rows):
    """Only the 70% central region is indexed. A copy cut 6-10% off every side shows a smaller part of its
    original there, so neither picture's 70% region comes within the threshold of the other's: the probe's other
    scales (the probe as the original) and its wide ones (the probe as the copy) bring the other in. Asked for
    pictures within the thresholds only; without those scales most are missed either way round."""
    from media_analysis.hashing import compute_hashes
    from media_analysis.selectors import media_similar
    from tests.media_analysis.pictures import store_pictures

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MEDIA_SCAN_MAX_ROWS = scan_max_rows
    copies = {f"copy{n}": change(square(name)) for n, change in enumerate(EVERY_SIDE.values())}
    store_pictures(tmp_path, {"rocket": square("rocket"), "coffee": square("coffee"), **copies})

    def found(probe: Signature, picture: object) -> set[str]:
        return {m.asset.original_name.removesuffix(".jpg") for m in media_similar(
            user=cast["investigator"], signature=probe, picture=picture, candidates=0)}

    def without_scales(probe: Signature) -> Signature:
        return replace(probe, centre=probe.centre[:1], trimmed=probe.trimmed[:1], scales_flip=(), wide=(), wide_flip=())

    square(name).save(tmp_path / "original.jpg", quality=90)
    original = compute_hashes(tmp_path / "original.jpg", max_pixels=10**7).signature
    assert found(original, tmp_path / "original.jpg") == set(copies)
    assert len(found(without_scales(original), tmp_path / "original.jpg")) <= len(copies) - 2

    # The other way round: each copy, looked up, finds the original (stored now) and no unrelated picture.
    store_pictures(tmp_path, {"original": square(name)})
    missed = 0
    for label in copies:
        probe = compute_hashes(tmp_path / f"{label}.jpg", max_pixels=10**7).signature
        assert "original" in found(probe, tmp_path / f"{label}.jpg") and not {"rocket", "coffee"} & found(probe, None)
        missed += "original" not in found(without_scales(probe), tmp_path / f"{label}.jpg")
    assert missed >= 2
