"""The keypoint check on matches that rest on one coarse signature alone (the central region, or the whole-picture
pHash near its threshold): real copies pass it, unrelated pictures do not, and lookups, media clusters and case
files use it, each pair's pictures read once."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from PIL import Image, ImageOps

from accounts.demo.images import add_banner, meme
from media_analysis import keypoints as keypoints_module
from media_analysis.keypoints import UNDECIDED, agreement, confirmed, keypoints
from media_analysis.matching import Thresholds, media_match, signature
from tests.media_analysis.pictures import crop, jpeg, square, store_pictures

COPIES = {
    "crop 8% per side": (lambda im: crop(im, 0.08, 0.06, 0.08, 0.07), False),
    "banner": (lambda im: add_banner(im, "#share #truth"), False),
    "meme text and jpeg 30": (lambda im: jpeg(meme(im, "when he tweets", "at 3am again"), 30), False),
    "mirror and crop": (lambda im: ImageOps.mirror(crop(im, 0.06, 0.08, 0.05, 0.06)), True),
    "grayscale, crop and half size": (lambda im: ImageOps.grayscale(crop(im, 0.05, 0.05, 0.07, 0.05)).convert("RGB")
                                      .resize((170, 180)), False),
}


@pytest.mark.parametrize("alteration", COPIES)
@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket", "camera"])
def test_copies_share_keypoints_and_other_photographs_do_not(name, alteration):
    change, mirrored = COPIES[alteration]
    original = keypoints(square(name))
    copy = keypoints(change(square(name)), mirrored=mirrored)
    assert agreement(copy, original) >= 12, alteration
    assert len({agreement(copy, original) for _ in range(3)}) == 1  # the random draws are seeded: one pair, one count
    assert agreement(keypoints(change(square(name)), mirrored=not mirrored), original) < 12  # the wrong way round
    for other in {"astronaut", "coffee", "rocket", "camera", "motorcycle"} - {name}:
        assert agreement(copy, keypoints(square(other))) < 12, other


def test_a_photograph_pasted_into_two_different_pictures_is_not_a_copy(monkeypatch):
    """The same photograph placed at opposite corners of two backgrounds shares every one of its keypoints,
    but no copy's transform carries one picture onto the other: the photograph's centre would move by half
    the picture."""
    photograph = square("astronaut", 200)
    first, second = square("moon", 400), square("moon", 400).rotate(180)
    first.paste(photograph, (10, 10))
    second.paste(photograph, (190, 190))
    assert agreement(keypoints(first), keypoints(second)) < 12
    monkeypatch.setattr(keypoints_module, "MAX_CENTRE_SHIFT", 10.0)  # without the rule on where the centre goes
    assert agreement(keypoints(first), keypoints(second)) > 500


def test_plain_pictures_cannot_refute_a_match_unless_beside_a_textured_one_of_their_size():
    flat, sky = Image.new("RGB", (400, 400), (90, 140, 200)), Image.linear_gradient("L").convert("RGB")
    assert agreement(keypoints(flat), keypoints(sky)) == UNDECIDED  # both plain
    # A copy shrunk to half size loses the fine detail its original had.
    assert agreement(keypoints(flat.resize((180, 180))), keypoints(square("coffee"))) == UNDECIDED
    # At the same size, a plain picture is not a copy of a textured one.
    assert agreement(keypoints(flat), keypoints(square("coffee"))) == 0
    # A picture decoded at reduced size counts at its stored size.
    assert agreement(keypoints(flat.resize((180, 180)), side=400), keypoints(square("coffee"))) == 0
    assert confirmed(UNDECIDED, 12) and confirmed(12, 12) and not confirmed(11, 12)
    # Strict (a match by a moved central region): too plain to tell refuses.
    assert not confirmed(UNDECIDED, 12, strict=True) and confirmed(12, 12, strict=True)


def test_media_match_asks_the_check_only_when_the_central_region_alone_agrees():
    original = signature(square("rocket"))
    cropped = signature(crop(square("rocket"), 0.08, 0.06, 0.08, 0.07))
    asked: list[bool] = []

    def refuse(mirrored: bool, strict: bool) -> bool:
        asked.append(mirrored)
        return False

    assert _by_centre(media_match(cropped, original).via)
    assert not media_match(cropped, original, confirm=refuse).matched and asked == [False]
    assert _by_centre(media_match(cropped, original, confirm=lambda mirrored, strict: True).via)
    asked.clear()
    resized = signature(square("rocket").resize((200, 200)))
    assert media_match(resized, original, confirm=refuse).via == "phash" and asked == []
    # Two signatures agreeing need no third opinion: a trusted PDQ beside the central region.
    loose = Thresholds(phash=0, centre=64, pdq=128, pdq_min_quality=0)
    assert _by_centre(media_match(cropped, original, loose, confirm=refuse).via) and asked == []


def _by_centre(via: str) -> bool:
    return via.split("-")[0] in {"centre", "trimmed", "moved"}  # the central region: plain, without its banner, moved


@pytest.fixture
def loose_centre(tmp_path, settings):
    """The central-region threshold loosened until an unrelated photograph matches by it, as happens at the
    default threshold once a collection holds tens of thousands of pictures."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.CENTRE_MATCH_DISTANCE = 50
    pictures = {
        "original": square("rocket"),
        "cropped": crop(square("rocket"), 0.08, 0.06, 0.07, 0.08),
        "mirrored_captioned": ImageOps.mirror(meme(square("rocket"), "look at this", "")),
        "stranger": square("coins"),
    }
    assets = store_pictures(tmp_path, pictures)
    from media_analysis.selectors import stored_signature

    signatures = {name: stored_signature(asset) for name, asset in assets.items()}
    # Without the check, the stranger is a copy by its central region.
    assert _by_centre(media_match(signatures["stranger"], signatures["original"]).via)
    assert _by_centre(media_match(signatures["cropped"], signatures["original"]).via)
    return tmp_path, assets


@pytest.mark.django_db
@pytest.mark.parametrize("batch", [512, 1], ids=["one batch", "a batch a picture"])
def test_media_clusters_keep_an_unrelated_picture_out_and_remember_each_check(loose_centre, settings, batch,
                                                                              monkeypatch):
    """With one picture a batch, each meets centres already in the index, and the pairs are checked side by
    side before they are resolved (KeypointChecks.prefetch); within a batch, one at a time."""
    from media_analysis.models import KeypointCheck
    from media_analysis.services import CentreIndex, media_clusters_rebuild

    monkeypatch.setattr(CentreIndex, "BATCH", batch)
    _, assets = loose_centre

    def members() -> dict[str, int]:
        return {name: asset.cluster_membership.cluster.centre_id for name, asset in
                ((n, type(a).objects.get(pk=a.pk)) for n, a in assets.items())}

    first = media_clusters_rebuild()
    grouped = members()
    # Each member says how many keypoints agreed with its centre, when the check was asked.
    for name, asset in assets.items():
        member = type(asset).objects.get(pk=asset.pk).cluster_membership
        asked = _by_centre(member.via) or (member.via.startswith("phash") and member.distance > settings.PHASH_CONFIRM_BEYOND)
        assert (member.keypoints is not None) == asked, name
    assert type(assets["cropped"]).objects.get(pk=assets["cropped"].pk).cluster_membership.keypoints >= 12
    assert grouped["cropped"] == grouped["mirrored_captioned"] == grouped["original"] == assets["original"].pk
    assert grouped["stranger"] == assets["stranger"].pk
    assert first["pictures_read_for_keypoints"] >= 2
    checks = {(c.first_id, c.second_id): c.agreement for c in KeypointCheck.objects.all()}
    stranger_pair = tuple(sorted((assets["stranger"].pk, assets["original"].pk)))
    assert 0 <= checks[stranger_pair] < 12
    assert checks[tuple(sorted((assets["cropped"].pk, assets["original"].pk)))] >= 12

    # The next build reads no picture: the verdicts are kept (the files are gone, and nothing changes).
    for asset in assets.values():
        (Path(settings.MEDIA_ROOT) / asset.file.name).unlink()
    second = media_clusters_rebuild()
    assert second["pictures_read_for_keypoints"] == 0 and members() == grouped
    assert KeypointCheck.objects.count() == len(checks)

    # With the check turned off, the stranger joins: the check is what kept it out.
    settings.CENTRE_CONFIRM_KEYPOINTS = 0
    media_clusters_rebuild()
    assert members()["stranger"] == assets["original"].pk


@pytest.mark.django_db
def test_a_picture_whose_file_is_gone_keeps_its_match_and_is_checked_again_later(loose_centre, settings):
    from media_analysis.models import KeypointCheck
    from media_analysis.services import media_clusters_rebuild

    _, assets = loose_centre
    (Path(settings.MEDIA_ROOT) / assets["stranger"].file.name).unlink()
    media_clusters_rebuild()
    assets["stranger"].refresh_from_db()
    assert assets["stranger"].cluster_membership.cluster.centre_id == assets["original"].pk
    assert not KeypointCheck.objects.filter(first=assets["stranger"]).exists()
    assert not KeypointCheck.objects.filter(second=assets["stranger"]).exists()


@pytest.mark.django_db
def test_lookups_show_copies_and_leave_out_unrelated_pictures(loose_centre, cast, client):
    from media_analysis.hashing import compute_hashes
    from media_analysis.selectors import media_similar

    tmp_path, assets = loose_centre
    probe = tmp_path / "original.jpg"
    hashes = compute_hashes(probe, max_pixels=10**7)
    matches = {m.asset.original_name: m for m in media_similar(user=cast["investigator"], signature=hashes.signature,
                                                               picture=probe)}
    by_file = set(matches)
    assert by_file == {"original.jpg", "cropped.jpg", "mirrored_captioned.jpg"}
    # A match by the central region says how many keypoints agree; a whole-picture match needed no check.
    assert matches["cropped.jpg"].keypoints >= 12 and matches["original.jpg"].keypoints is None
    by_asset = {m.asset.original_name for m in media_similar(user=cast["investigator"], signature=hashes.signature,
                                                            picture=assets["original"].pk)}
    assert by_asset == by_file
    unchecked = {m.asset.original_name for m in media_similar(user=cast["investigator"], signature=hashes.signature,
                                                             picture=None)}
    assert "stranger.jpg" in unchecked

    # The page of a stored picture and the lookup page (an upload) say the same.
    client.force_login(cast["investigator"])
    page = client.get(f"/media/{assets['original'].pk}/").content.decode()
    assert assets["cropped"].sha256[:12] in page and assets["stranger"].sha256[:12] not in page
    assert "keypoints agree" in page
    with probe.open("rb") as upload:
        response = client.post("/api/media/lookup/", {"image": upload})
    found = {m["asset"]["sha256"]: m for m in response.json()}
    assert set(found) == {assets[name].sha256 for name in ("original", "cropped", "mirrored_captioned")}
    assert found[assets["cropped"].sha256]["keypoints"] == matches["cropped.jpg"].keypoints

    # The command line too, in its JSON and its lines.
    out = io.StringIO()
    call_command("find_similar", str(probe), "--json", stdout=out)
    listed = {m["sha256"]: m for m in json.loads(out.getvalue())[0]["matches"]}
    assert set(listed) == set(found) and listed[assets["cropped"].sha256]["keypoints"] >= 12
    out = io.StringIO()
    call_command("find_similar", str(probe), stdout=out)
    assert f"{matches['cropped.jpg'].keypoints} keypoints agree" in out.getvalue()


@pytest.mark.django_db
def test_case_file_copy_groups_keep_an_unrelated_picture_out(loose_centre):
    from investigator.casefile.figures import copy_groups
    from media_analysis.models import KeypointCheck, MediaAsset

    _, assets = loose_centre
    groups = copy_groups(list(MediaAsset.objects.order_by("pk")), [], {})
    assert len(groups) == 1 and groups[0].original == assets["original"]
    copies = {c["asset"].original_name: c for c in groups[0].copies}
    assert set(copies) == {"cropped.jpg", "mirrored_captioned.jpg"}
    assert copies["cropped.jpg"]["keypoints"] >= 12
    assert KeypointCheck.objects.get(first=assets["original"], second=assets["stranger"]).agreement < 12  # kept


def test_a_whole_picture_match_near_its_threshold_is_checked_too():
    original, other = signature(square("rocket")), signature(square("coins"))
    asked: list[bool] = []

    def refuse(mirrored: bool, strict: bool) -> bool:
        asked.append(mirrored)
        return False

    loose = Thresholds(phash=40, centre=0, pdq=0, pdq_min_quality=101, phash_sure=6)
    assert media_match(other, original, loose).via.startswith("phash")  # the signatures alone: a copy
    assert not media_match(other, original, loose, confirm=refuse).matched and len(asked) == 1
    sure = Thresholds(phash=40, centre=0, pdq=0, pdq_min_quality=101, phash_sure=40)
    assert media_match(other, original, sure, confirm=refuse).matched and len(asked) == 1  # close enough: not asked


@pytest.mark.django_db
def test_media_clusters_check_whole_picture_matches_near_the_threshold(tmp_path, settings):
    from media_analysis.services import media_clusters_rebuild

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.PHASH_MATCH_DISTANCE = 32  # loosened until an unrelated photograph matches by its whole picture
    assets = store_pictures(tmp_path, {"original": square("rocket"), "recompressed": jpeg(square("rocket"), 40),
                               "stranger": square("coins")})
    from media_analysis.selectors import stored_signature

    evidence = media_match(stored_signature(assets["stranger"]), stored_signature(assets["original"]))
    assert evidence.via.startswith("phash") and evidence.distance > settings.PHASH_CONFIRM_BEYOND

    def centre_of(name: str) -> int:
        return type(assets[name]).objects.get(pk=assets[name].pk).cluster_membership.cluster.centre_id

    media_clusters_rebuild()
    assert centre_of("recompressed") == assets["original"].pk and centre_of("stranger") == assets["stranger"].pk
    settings.PHASH_CONFIRM_BEYOND = 32
    media_clusters_rebuild()
    assert centre_of("stranger") == assets["original"].pk


@pytest.mark.django_db
def test_checks_made_side_by_side_give_the_verdicts_of_checks_made_one_at_a_time(loose_centre, monkeypatch):
    from media_analysis.services import KeypointChecks

    monkeypatch.setattr(KeypointChecks, "PREFETCH", 2)  # two rounds: two pairs, then one
    _, assets = loose_centre
    original = assets["original"].pk
    pairs = [(assets["cropped"].pk, original, False), (assets["stranger"].pk, original, False),
             (assets["mirrored_captioned"].pk, original, True)]
    together, one_by_one = KeypointChecks(), KeypointChecks()
    together.prefetch(pairs)
    for a, b, mirrored in pairs:
        one_by_one.confirms(a, b, mirrored=mirrored)
    assert len(together.new) == 3 and together.new == one_by_one.new
    assert together.pictures_read == one_by_one.pictures_read
    read = together.pictures_read
    assert [together.confirms(a, b, mirrored=m) for a, b, m in pairs] == [True, False, True]
    assert together.pictures_read == read  # nothing read twice
