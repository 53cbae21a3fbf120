"""Robust matching: mirrored, cropped and captioned copies of real photographs match; unrelated photographs
do not; the signatures are stored and used by lookups and media clusters on the real database."""

from __future__ import annotations

import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageOps

from accounts.demo.images import add_banner, meme
from media_analysis.matching import hamming, media_match, signature, trim_banners
from tests.media_analysis.pictures import crop, jpeg, square, store_pictures


def test_pdq_dihedral_index_five_is_the_mirror_image():
    image = np.asarray(square("astronaut"))
    dihedral, _ = pdqhash.compute_dihedral(image)
    mirrored, _ = pdqhash.compute(np.asarray(ImageOps.mirror(Image.fromarray(image))))
    distances = [int((np.asarray(d) != mirrored).sum()) for d in dihedral]
    assert distances.index(min(distances)) == 5 and min(distances) <= 31


COPIES = {
    "mirror": lambda im: ImageOps.mirror(im),
    "crop 8% per side": lambda im: crop(im, 0.08, 0.06, 0.08, 0.07),
    "mirror and crop": lambda im: ImageOps.mirror(crop(im, 0.06, 0.08, 0.05, 0.06)),
    "banner": lambda im: add_banner(im, "#share #truth"),
    "meme text and jpeg 30": lambda im: jpeg(meme(im, "when he tweets", "at 3am again"), 30),
    "grayscale and resize": lambda im: ImageOps.grayscale(im).convert("RGB").resize((200, 200)),
}


@pytest.mark.parametrize("alteration", COPIES)
@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "rocket"])
def test_altered_copies_match_and_other_photographs_do_not(name, alteration):
    original = signature(square(name))
    copy = signature(COPIES[alteration](square(name)))
    evidence = media_match(copy, original)
    assert evidence.matched, (alteration, evidence)
    for other in {"astronaut", "chelsea", "coffee", "rocket", "motorcycle"} - {name}:
        assert not media_match(copy, signature(square(other))).matched, other


def test_the_fields_only_lookups_read_never_change_a_verdict():
    """The cluster build reads signatures without LOOKUP_FIELDS: media_match must not need them."""
    from dataclasses import replace

    from media_analysis.matching import LOOKUP_FIELDS

    def without(s):
        return replace(s, **dict.fromkeys(LOOKUP_FIELDS, ()))

    signatures = {name: signature(square(name)) for name in ("astronaut", "chelsea", "coffee")}
    signatures |= {f"{name} {alteration}": signature(COPIES[alteration](square(name)))
                   for name in ("astronaut", "chelsea", "coffee") for alteration in COPIES}
    assert all(getattr(s, field) for s in signatures.values() for field in LOOKUP_FIELDS)
    for a in signatures.values():
        for b in signatures.values():
            assert media_match(a, b) == media_match(without(a), without(b))
            asked: dict[str, list] = {"all": [], "without": []}
            assert (media_match(a, b, confirm=lambda *args, to=asked["all"]: to.append(args) or False)
                    == media_match(without(a), without(b), confirm=lambda *args, to=asked["without"]: to.append(args) or False))
            assert asked["all"] == asked["without"]


@pytest.mark.django_db
def test_the_cluster_build_reads_signatures_without_the_lookup_fields(tmp_path, settings):
    from dataclasses import replace

    from media_analysis.matching import LOOKUP_FIELDS, Signature
    from media_analysis.services import stored_signatures

    settings.MEDIA_ROOT = str(tmp_path / "media")
    assets = store_pictures(tmp_path, {"original": square("rocket"), "cropped": crop(square("rocket"), 0.08, 0, 0, 0)})
    read = stored_signatures([a.pk for a in assets.values()])
    for asset in assets.values():
        stored = Signature.from_json(asset.signature)
        assert all(getattr(stored, field) for field in LOOKUP_FIELDS)
        assert read[asset.pk] == replace(stored, **dict.fromkeys(LOOKUP_FIELDS, ()))


def test_a_mirror_is_far_by_plain_phash_but_matched_as_a_mirror():
    original = signature(square("chelsea"))
    mirrored = signature(ImageOps.mirror(square("chelsea")))
    assert hamming(original.phash, mirrored.phash) > 20  # a plain pHash lookup would miss it
    assert media_match(mirrored, original).via == "phash-mirror"


def test_banner_is_trimmed_and_a_photograph_is_left_alone():
    picture = square("coffee")
    with_banner = add_banner(picture, "#share")
    assert trim_banners(with_banner).size == picture.size
    assert trim_banners(picture).size == picture.size
    assert trim_banners(Image.new("RGB", (300, 300), "white")).size == (300, 300)  # all flat: nothing to cut


@pytest.mark.django_db
@pytest.mark.parametrize("scan_max_rows", [5_000_000, 0], ids=["in-memory scan", "HNSW indexes"])
def test_lookup_and_media_clusters_find_mirrored_and_cropped_copies(tmp_path, settings, cast, scan_max_rows,
                                                                    monkeypatch):
    from media_analysis import selectors
    from media_analysis.hashing import compute_hashes
    from media_analysis.selectors import media_similar
    from media_analysis.services import media_clusters_rebuild

    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MEDIA_SCAN_MAX_ROWS = scan_max_rows
    files = {
        "original": square("rocket"),
        "mirrored_cropped": ImageOps.mirror(crop(square("rocket"), 0.07, 0.05, 0.06, 0.08)),
        "bannered": add_banner(square("rocket"), "#truth"),
        "other": square("coffee"),
    }
    assets = store_pictures(tmp_path, files)
    assert all(a.hash_state == "done" and a.signature and a.centre for a in assets.values())

    probe = compute_hashes(tmp_path / "original.jpg", max_pixels=10**7).signature
    index_searches = []
    knn_within = selectors.knn_within
    monkeypatch.setattr(selectors, "knn_within", lambda *a, **kw: index_searches.append(kw) or knn_within(*a, **kw))
    matches = {m.asset.original_name: m for m in media_similar(user=cast["investigator"], signature=probe,
                                                                          picture=tmp_path / "original.jpg")}
    assert bool(index_searches) == (scan_max_rows == 0)
    assert set(matches) == {"original.jpg", "mirrored_cropped.jpg", "bannered.jpg"}
    assert matches["mirrored_cropped.jpg"].via.endswith("mirror") and matches["original.jpg"].distance == 0

    reported: list[tuple[int, int]] = []
    result = media_clusters_rebuild(progress=lambda done, total: reported.append((done, total)))
    assert result["with_copies"] == 1 and reported[-1] == (4, 4)
    cluster = assets["original"].cluster_membership.cluster
    members = set(cluster.members.values_list("asset__original_name", flat=True))
    assert members == {"original.jpg", "mirrored_cropped.jpg", "bannered.jpg"}
    assert assets["other"].cluster_membership.cluster != cluster


@pytest.mark.django_db
def test_knn_within_returns_every_copy_of_a_picture_with_many_copies():
    """A fixed LIMIT would cut a viral picture's copies; the doubling k-NN returns exactly the hashes within
    the threshold, as an exact scan does, through the HNSW index."""
    import random

    from django.db import connection

    from media_analysis.selectors import knn_within

    rng = random.Random(3)
    probe = rng.getrandbits(64)
    rows = []
    for i in range(150):  # copies: 0-5 bits from the probe
        value = probe
        for bit in rng.sample(range(64), rng.randrange(6)):
            value ^= 1 << bit
        rows.append((i, value))
    rows += [(150 + i, rng.getrandbits(64)) for i in range(400)]  # unrelated pictures
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE knn_probe (id integer, v bit(64))")
        cursor.executemany("INSERT INTO knn_probe VALUES (%s, %s::bit(64))", [(i, format(v, "064b")) for i, v in rows])
        cursor.execute("CREATE INDEX ON knn_probe USING hnsw (v bit_hamming_ops) WITH (m = 16, ef_construction = 64)")
        cursor.execute("SET enable_seqscan = off")
        try:
            found = knn_within(cursor, table="knn_probe", column="v", length=64, vector=format(probe, "064b"),
                               max_distance=8, k=10)
            cursor.execute("EXPLAIN SELECT id FROM knn_probe ORDER BY v <~> %s::bit(64) LIMIT 10", [format(probe, "064b")])
            plan = " ".join(r[0] for r in cursor.fetchall())
        finally:
            cursor.execute("SET enable_seqscan = on")
    exact = {i for i, v in rows if bin(v ^ probe).count("1") <= 8}
    assert len(exact) >= 150 and {i for i, _ in found} == exact
    assert all(d <= 8 for _, d in found) and "knn_probe_v_idx" in plan


def test_a_picture_with_many_copies_keeps_one_centre():
    """Leader first over a centres-only index: however many copies crowd around a picture, each later copy
    still meets the centre (even with 2 neighbours per probe), and other photographs stay apart."""
    from PIL import ImageEnhance

    from media_analysis.matching import Thresholds
    from media_analysis.services import CentreIndex

    original = square("rocket")
    copies = [jpeg(ImageEnhance.Brightness(original).enhance(0.8 + i / 100), 40 + i) for i in range(30)]
    copies += [ImageOps.mirror(crop(original, 0.05, 0.04, 0.03, 0.06)), add_banner(original, "#flood")]
    others = [square(name) for name in ("coffee", "astronaut", "camera", "chelsea")]
    signatures = [signature(image) for image in [original, *copies, *others]]
    # One picture at a time, and in batches: a copy meets its centre in the faiss index or, when the centre
    # came earlier in the same batch, in the exact comparison with the batch's new centres.
    for batch in (1, 5, len(signatures)):
        index = CentreIndex(Thresholds.from_settings(), neighbours=2)
        joined = {}
        for first in range(0, len(signatures), batch):
            chunk = list(enumerate(signatures[first:first + batch], start=first))
            joined.update({n: centre for (n, _), (centre, _) in zip(chunk, index.assign(chunk), strict=True)})
        assert all(joined[n] == 0 for n in range(1, len(copies) + 1)), batch
        assert [joined[n] for n in range(len(copies) + 1, len(joined))] == list(range(len(copies) + 1, len(joined)))


def _random_signature(rng: np.random.Generator) -> object:
    from media_analysis.matching import Signature

    def bits(n: int) -> str:
        return "".join(rng.choice(["0", "1"], size=n))

    centre = tuple(bits(128) for _ in range(5))
    return Signature(phash=bits(64), phash_flip=bits(64), centre=centre, centre_flip=bits(128), trimmed=centre,
                     trimmed_flip=bits(128), pdq=bits(256), pdq_flip=bits(256), pdq_quality=90,
                     shifted=tuple(bits(128) for _ in range(8)), shifted_flip=tuple(bits(128) for _ in range(8)))


def _flipped(bits: str, count: int, start: int = 0) -> str:
    return "".join("10"[int(b)] if start <= i < start + count else b for i, b in enumerate(bits))


def test_within_a_batch_a_closer_whole_picture_match_beats_an_earlier_centre():
    """A picture that already matched a centre from before its batch still joins a new centre earlier in its
    batch when that one matches it better: by the whole picture rather than the central region, or by the whole
    picture at fewer bits."""
    from dataclasses import replace

    from media_analysis.matching import Thresholds
    from media_analysis.services import CentreIndex

    rng = np.random.default_rng(5)
    thresholds = Thresholds.from_settings()
    before = _random_signature(rng)
    # Matches `before` by its central region only, and the batch's first picture by the whole picture.
    by_centre = replace(_random_signature(rng), centre=before.centre, trimmed=before.trimmed)
    whole = replace(_random_signature(rng), phash=_flipped(by_centre.phash, 3))
    # Matches `before` by the whole picture at 9 bits, and the batch's other new picture at 2.
    by_phash = replace(_random_signature(rng), phash=_flipped(before.phash, 9))
    closer = replace(_random_signature(rng), phash=_flipped(by_phash.phash, 2, start=40))
    assert media_match(by_centre, before, thresholds).via == "centre"
    assert media_match(by_phash, before, thresholds).via == "phash"

    index = CentreIndex(thresholds)
    assert index.assign([(1, before)]) == [(1, None)]
    placed = index.assign([(2, whole), (3, by_centre), (4, closer), (5, by_phash)])
    assert [(centre, evidence and (evidence.via, evidence.distance)) for centre, evidence in placed] == [
        (2, None), (2, ("phash", 3)), (4, None), (4, ("phash", 2))]
    # Without the batch's own pictures, each would have stayed with the centre from before.
    alone = CentreIndex(thresholds)
    alone.assign([(1, before)])
    assert [centre for centre, _ in alone.assign([(3, by_centre), (5, by_phash)])] == [1, 1]


def test_the_wide_whole_picture_search_is_only_for_pictures_the_narrow_one_found_no_match_for(monkeypatch):
    """Most pictures are copies a few bits from their centre: the pHash index is searched narrowly for every
    picture, and as widely as the other indexes only for those without a whole-picture match."""
    from dataclasses import replace

    from media_analysis.matching import Thresholds
    from media_analysis.services import CentreIndex

    rng = np.random.default_rng(3)
    original, unrelated = _random_signature(rng), _random_signature(rng)
    copy = replace(_random_signature(rng), phash=_flipped(original.phash, 3))
    index = CentreIndex(Thresholds.from_settings())
    index.assign([(1, original)])
    searched: dict[str, list[int]] = {}  # the positions in the batch each search was asked for
    search = index._search

    def spy(name: str, queries: list) -> list:
        searched[name] = [position for position, _ in queries]
        return search(name, queries)

    monkeypatch.setattr(index, "_search", spy)
    assert [centre for centre, _ in index.assign([(2, copy), (3, unrelated)])] == [1, 3]
    assert searched["phash_first"] == [0, 1] and searched["phash"] == searched["scales"] == [1]


@pytest.fixture(scope="module")
def photographs_and_copies():
    return [signature(square(name)) for name in ("astronaut", "chelsea", "coffee")] + [
        signature(COPIES[alteration](square(name))) for name in ("astronaut", "chelsea") for alteration in COPIES]


def _related(rng: np.random.Generator, base, *, older: bool) -> object:
    """A signature whose every central region is one of `base`'s with a few to many bits flipped (so distances
    fall on both sides of every threshold, and equal distances under different names happen), sometimes with the
    mirror's regions swapped in; `older`: stored before the moved regions existed (none of them)."""
    from dataclasses import replace

    def near(bits: str) -> str:
        return _flipped(bits, int(rng.choice([0, 0, 2, 5, 12, 20, 23, 24, 25, 40])), start=int(rng.integers(0, 64)))

    def pick(hashes: tuple) -> tuple:
        return tuple(near(hashes[int(rng.integers(len(hashes)))]) for _ in range(int(rng.integers(1, 9))))

    moved = {} if older else {"shifted": pick(base.shifted + base.trimmed), "shifted_flip": pick(base.trimmed),
                              "outer": pick(base.centre), "outer_flip": pick(base.centre + (base.centre_flip,))}
    return replace(_random_signature(rng), centre=tuple(near(h) for h in base.centre),
                   trimmed=tuple(near(h) for h in base.trimmed), centre_flip=near(base.centre_flip if rng.random() < 0.5
                                                                                     else base.centre[0]),
                   trimmed_flip=near(base.trimmed_flip), **({"shifted": (), "shifted_flip": ()} if older else moved))


def _verdicts_one_by_one_and_at_once(probe, candidates, thresholds=None):
    """media_match for each candidate, and media_matches for all, with the confirm calls each made (every other
    candidate's keypoint check says no)."""
    from media_analysis.matching import media_matches

    asked: dict[str, list] = {"one": [], "all": []}

    def confirm(i, to):
        return lambda mirrored, strict: to.append((i, mirrored, strict)) or i % 2 == 0

    one = [media_match(probe, c, thresholds, confirm(i, asked["one"])) for i, c in enumerate(candidates)]
    every = media_matches(probe, candidates, thresholds, lambda i: confirm(i, asked["all"]))
    return (one, asked["one"]), (every, asked["all"])


def test_a_lookup_checks_its_candidates_all_at_once_with_the_verdicts_it_gives_one_by_one(photographs_and_copies):
    """media_matches compares the central regions of all the candidates in NumPy; every verdict, every keypoint
    check asked (and in the same order) and every central-region distance and name are media_match's."""
    from media_analysis.matching import Thresholds, _centre_distance, _centre_distances, media_matches

    thresholds = Thresholds.from_settings()
    signatures = photographs_and_copies
    for probe in signatures:
        one, every = _verdicts_one_by_one_and_at_once(probe, signatures, thresholds)
        assert every == one
        assert [e.matched for e in media_matches(probe, signatures)] == [media_match(probe, c).matched for c in signatures]
        assert _centre_distances(probe, signatures, thresholds.centre_shifted) == [
            min(_centre_distance(probe, c, thresholds.centre_shifted), _centre_distance(c, probe, thresholds.centre_shifted))
            for c in signatures]
    assert sum(e.matched for e in one[0]) >= 2  # the copies of the last probe's photograph


def test_checking_all_at_once_breaks_ties_and_applies_the_moved_limit_as_one_by_one():
    """Random families of signatures, a few to many bits apart on every central region, some stored before the
    moved regions existed: the same distance under two names, moved regions just inside and outside their
    limit, regions that are nowhere near."""
    from collections import Counter
    from dataclasses import replace

    from media_analysis.matching import Thresholds, _centre_distance, _centre_distances

    rng = np.random.default_rng(11)
    thresholds = Thresholds.from_settings()
    limit = thresholds.centre_shifted
    seen: Counter = Counter()
    for _ in range(40):
        base = _random_signature(rng)
        probe = _related(rng, base, older=rng.random() < 0.2)
        candidates = [_related(rng, base, older=rng.random() < 0.2) for _ in range(30)] + [_random_signature(rng)]
        expected = [min(_centre_distance(probe, c, limit), _centre_distance(c, probe, limit)) for c in candidates]
        assert _centre_distances(probe, candidates, limit) == expected
        seen.update(via for _, via in expected)
        one, every = _verdicts_one_by_one_and_at_once(probe, candidates, thresholds)
        assert every == one
    assert set(seen) == {"centre", "centre-mirror", "moved", "moved-mirror", "trimmed", "trimmed-mirror"}, seen
    # And nothing near at all: every region as far as it can be.
    zeros, ones = ({name: tuple(bit * 128 for _ in getattr(base, name)) if isinstance(getattr(base, name), tuple)
                    else bit * 128 for name in ("centre", "trimmed", "centre_flip", "trimmed_flip", "shifted",
                                                "shifted_flip", "outer", "outer_flip")} for bit in "01")
    far = [replace(base, **zeros), replace(base, **ones)]
    one_by_one = min(_centre_distance(*far, limit), _centre_distance(*far[::-1], limit))
    assert _centre_distances(far[0], far[1:], limit) == [one_by_one] == [(65, "")]
    # A moved region at its limit counts; a bit beyond, it does not.
    edge = [replace(far[1], shifted=(_flipped("1" * 128, 128 - bits),)) for bits in (limit, limit + 1)]
    assert _centre_distances(far[0], edge, limit) == [
        min(_centre_distance(far[0], c, limit), _centre_distance(c, far[0], limit)) for c in edge] == [(limit, "moved"), (65, "")]


def test_checking_all_at_once_falls_back_to_one_by_one_for_hashes_of_another_length():
    """A signature whose central regions are not of the probe's length (or not bits at all) cannot be packed
    into words beside the others: the candidates are then compared one by one, as media_match does."""
    from dataclasses import replace

    from media_analysis.matching import _centre_distance, _centre_distances

    rng = np.random.default_rng(2)
    base = _random_signature(rng)
    candidates = [_related(rng, base, older=False) for _ in range(5)]
    shorter = replace(candidates[0], centre=tuple(h[:64] for h in candidates[0].centre))
    for batch in (candidates + [shorter], [shorter] + candidates):
        assert _centre_distances(base, batch, 24) == [min(_centre_distance(base, c, 24), _centre_distance(c, base, 24))
                                                      for c in batch]
    assert _centre_distances(base, [], 24) == []
    broken = replace(candidates[1], trimmed=("2" * 128,) + candidates[1].trimmed[1:])
    with pytest.raises(ValueError):  # int() refuses it, as media_match always has
        _centre_distances(base, [broken], 24)
