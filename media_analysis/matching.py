"""When are two pictures copies of each other? One pHash cannot say for a cropped or mirrored copy:
a 10% crop moves it 20–30 bits and a mirror ~34, while unrelated photographs can come within 16–22.

So every picture carries several signatures, and a pair matches when any of them agrees:

* pHash of the whole picture, and of its mirror image (a mirrored copy's pHash equals the original's
  mirror pHash);
* pHash of the central region (the middle 70% each way), and of its mirror: a crop of up to 10% per
  side, a banner or meme text along an edge leaves the centre nearly unchanged; the same after cutting
  off a flat caption banner; and that region (and its mirror) moved a little in eight directions (an uneven
  crop moves the centre), and for a picture with a banner along one edge only, moved away from the banner
  (a crop of the other edge moves the picture's centre towards the banner); and, for a picture that may itself
  be an uneven crop, the larger off-centre windows where its original's central 70% would sit had 8% been cut
  off one side or two adjacent ones (Signature.outer);
* PDQ and PDQ of the mirror image (pdqhash's dihedral hashes), when both pictures are detailed enough
  for PDQ to be trusted (quality ≥ PDQ_MIN_QUALITY).

A pair that only the central region matches is coarse evidence (unrelated pictures come within its
threshold about three times in 100,000 pairs), and so is a whole-picture pHash near its threshold, so wherever
the pictures are at hand such a pair is checked once more, keypoint by keypoint
(media_analysis.keypoints).

The thresholds live in settings (PHASH_MATCH_DISTANCE, CENTRE_MATCH_DISTANCE, CENTRE_SHIFTED_MATCH_DISTANCE,
PDQ_MATCH_DISTANCE, CENTRE_CONFIRM_KEYPOINTS, PHASH_CONFIRM_BEYOND) and were chosen with benchmarks/bench_matching.py, which
prints recall and precision per alteration.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import imagehash
import numpy as np
import pdqhash
import scipy.fftpack
from django.conf import settings
from PIL import Image, ImageOps

SCALES = (0.70, 0.66, 0.62, 0.58, 0.54)  # central regions hashed: the copy's 70% centre meets the original's at one of these
# and the other way round, for lookups (only the 70% region is indexed): the centre of a copy cut down to 80-100% of
# its original, at one of these, meets the original's 70%.
WIDE_SCALES = (0.76, 0.82, 0.88)
BAND_MAX = 0.25  # a banner (a flat strip of colour along the top or bottom edge) is at most this share of the height
BAND_MIN = 0.01  # and at least this share: a crop that cut most of a banner off leaves a strip this thin
# A crop of up to 10% per side moves the picture's centre by up to 5% of its size when the sides differ (10% off
# one, nothing off the other): the central region is also hashed moved by MOVE in each of eight directions
# (shares of the width and the height), which leaves at most about 2% to the scales' tolerance.
MOVE = 0.03
MOVES = tuple((MOVE * right, MOVE * down) for right in (-1, 0, 1) for down in (-1, 0, 1) if right or down)
# A picture that had a banner along one edge and was then cropped on the other keeps its whole height on the
# banner's side, so its centre sits nearer the banner than the original's, by half the crop (3-6% of the
# height for a crop of up to 10%): its central region is also hashed moved away from the banner by these shares,
# straight and with MOVE sideways (the sides may be cropped unevenly too).
BANNER_SHIFTS = (0.03, 0.06)
# A match by a moved region within this many bits of its threshold must be confirmed by keypoints: when both
# pictures are too plain for the check to tell, it is refused (on the labelled set such true matches sat at
# 2-13 bits, a false one between two skies at 20; the threshold being 24).
MOVED_SURE_MARGIN = 8


# Which signature the workers take today. Raise it when a field is added to Signature (one that from_json can
# leave empty for an older one): pictures hashed earlier keep matching with what they have, and the workers hash
# them again when no new picture is waiting (media_analysis.services.media_rehash_claim). A change that makes
# stored values mean something else needs a migration that sets them pending instead.
# 1: the central regions; 2: `shifted`, `shifted_flip`; 3: `outer`, `outer_flip`; 4: `inner`, `inner_flip`, `wide`,
# `wide_flip`, `scales_flip`.
SIGNATURE_VERSION = 4


# The signature's fields that a signature stored by an earlier version may lack (read as empty).
LATER_FIELDS = ("shifted", "shifted_flip", "outer", "outer_flip", "inner", "inner_flip", "scales_flip", "wide", "wide_flip")
# The fields only a lookup's probe reads (media_analysis.selectors.media_candidates); media_match never compares
# them, so whoever reads many signatures only to match them leaves them out.
LOOKUP_FIELDS = ("inner", "inner_flip", "scales_flip", "wide", "wide_flip")


@dataclass(frozen=True)
class Signature:
    phash: str  # bit strings, as pgvector's bit type takes them
    phash_flip: str
    centre: tuple[str, ...]  # pHash of the central region at each of SCALES
    centre_flip: str  # the mirror image's central 70%
    trimmed: tuple[str, ...]  # the same after cutting flat banners off the top and bottom
    trimmed_flip: str
    pdq: str
    pdq_flip: str
    pdq_quality: int
    shifted: tuple[str, ...] = ()  # the trimmed central 70% moved by each of MOVES, then away from a banner (if any)
    shifted_flip: tuple[str, ...] = ()  # the mirror image of each of those
    outer: tuple[str, ...] = ()  # the picture's windows that would be its original's central 70% (OUTER_CROP)
    outer_flip: tuple[str, ...] = ()  # the mirror image of each of those
    inner: tuple[str, ...] = ()  # the picture's windows that would be the central 70% of its uneven crops (lookups)
    inner_flip: tuple[str, ...] = ()  # the mirror image of each of those
    scales_flip: tuple[str, ...] = ()  # the mirror image's central region at SCALES[1:] (lookups)
    wide: tuple[str, ...] = ()  # the central region at WIDE_SCALES (lookups)
    wide_flip: tuple[str, ...] = ()  # the mirror image of each of those

    @classmethod
    def from_json(cls, data: dict) -> Signature:
        # A signature stored before one of LATER_FIELDS existed has none of it (see SIGNATURE_VERSION).
        return cls(**{**data, "centre": tuple(data["centre"]), "trimmed": tuple(data["trimmed"]),
                      **{name: tuple(data.get(name, ())) for name in LATER_FIELDS}})

    @property
    def moved(self) -> tuple[str, ...]:
        """Every region that stands for another picture's central region after an uneven crop: the central region
        moved, and the outer windows."""
        return self.shifted + self.outer

    @property
    def moved_flip(self) -> tuple[str, ...]:
        return self.shifted_flip + self.outer_flip


@dataclass(frozen=True)
class Thresholds:
    phash: int
    centre: int
    pdq: int
    pdq_min_quality: int
    phash_sure: int = 6  # a whole-picture match farther than this is checked like a central-region one
    # The central region moved (Signature.shifted) is a guess at where the picture's centre went, and every
    # guess is one more chance for an unrelated picture to come near: it must come nearer than `centre`.
    centre_shifted: int = 24

    @classmethod
    def from_settings(cls) -> Thresholds:
        return cls(settings.PHASH_MATCH_DISTANCE, settings.CENTRE_MATCH_DISTANCE, settings.PDQ_MATCH_DISTANCE,
                   settings.PDQ_MIN_QUALITY, settings.PHASH_CONFIRM_BEYOND,
                   min(settings.CENTRE_SHIFTED_MATCH_DISTANCE, settings.CENTRE_MATCH_DISTANCE))


def bits(array: np.ndarray) -> str:
    return "".join("1" if bit else "0" for bit in np.asarray(array, dtype=bool).ravel())


def _centre(image: Image.Image, share: float, right: float = 0.0, down: float = 0.0) -> Image.Image:
    """The central `share` of the picture each way, moved right by `right` of its width and down by `down` of
    its height (left and up when negative)."""
    margin_x, margin_y = image.width * (1 - share) / 2, image.height * (1 - share) / 2
    dx, dy = right * image.width, down * image.height
    return image.crop((round(margin_x + dx), round(margin_y + dy), round(image.width - margin_x + dx),
                       round(image.height - margin_y + dy)))


def _band(rows: np.ndarray) -> int:
    """How many rows, from the first, form a banner: mostly the colour of the edge row (text allowed),
    ending where the picture starts. 0 when there is none of a plausible height."""
    height = rows.shape[0]
    background = np.median(rows[:3])
    share = (np.abs(rows - background) <= 12).mean(axis=1)
    run = int(np.argmin(share >= 0.55)) if not (share >= 0.55).all() else height
    if not BAND_MIN * height <= run <= BAND_MAX * height or share[:run].mean() < 0.8:
        return 0
    return run


def banners(image: Image.Image) -> tuple[int, int]:
    """The rows of a caption banner at the top and at the bottom (0 where there is none): a strip of 1–25% of
    the height, mostly of one colour (the edge's), with some text on it, ending at the picture."""
    grey = np.asarray(ImageOps.grayscale(image), dtype=np.int16)
    return _band(grey), _band(grey[::-1])


def trim_banners(image: Image.Image, found: tuple[int, int] | None = None) -> Image.Image:
    """The picture with its caption banners (banners(), or the rows `found` there) cut off."""
    top, bottom = found or banners(image)
    return image.crop((0, top, image.width, image.height - bottom)) if top or bottom else image


def _phash(image: Image.Image) -> str:
    return bits(imagehash.phash(image).hash)


def _region(image: Image.Image) -> str:
    """A region's 128-bit signature: pHash (frequencies) and dHash (gradients) side by side. Two views
    of the same pixels disagree less often than one view twice as long. The definition: signatures take it, with
    the mirror image's, from _region_and_mirror, which the tests hold to it bit for bit."""
    return _phash(image) + bits(imagehash.dhash(image).hash)


def _region_and_mirror(image: Image.Image) -> tuple[str, str]:
    """_region of a picture and of its mirror image from one pair of reductions: imagehash's pHash and dHash
    steps (the same bits for the picture), with the mirror image's reduced pixels taken as the picture's
    reversed (Pillow's reduction filters are symmetric, so this is the mirror image's reduction, rounding aside)."""
    grey = image.convert("L")
    small = np.asarray(grey.resize((32, 32), Image.Resampling.LANCZOS))
    tiny = np.asarray(grey.resize((9, 8), Image.Resampling.LANCZOS))
    found = []
    for pixels, gradient in ((small, tiny), (small[:, ::-1], tiny[:, ::-1])):
        low = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:8, :8]
        found.append(bits(low > np.median(low)) + bits(gradient[:, 1:] > gradient[:, :-1]))
    return found[0], found[1]


def _scales(image: Image.Image, scales: tuple[float, ...] = SCALES) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """_region of the picture's centre at every one of `scales`, and of the mirror image's."""
    found = [_region_and_mirror(_centre(image, share)) for share in scales]
    return tuple(plain for plain, _ in found), tuple(mirrored for _, mirrored in found)


WORKING_SIDE = 256  # the pHash-family signatures are taken from a copy this large (they look at 32x32 or less)


def signature(image: Image.Image) -> Signature:
    """All signatures of an RGB picture."""
    dihedral, quality = pdqhash.compute_dihedral(np.asarray(image))
    if max(image.size) > WORKING_SIDE:
        image = image.copy()
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    top, bottom = banners(image)
    trimmed = trim_banners(image, (top, bottom))
    # With a banner along one edge only, the trimmed centre is also taken moved away from it.
    away = -1 if bottom and not top else 1 if top and not bottom else 0
    moves = [*MOVES, *((right, away * s) for s in BANNER_SHIFTS for right in (0.0, -MOVE, MOVE) if away)]
    moved = [_region_and_mirror(_centre(trimmed, SCALES[0], right, down)) for right, down in moves]
    outer, outer_flip = outer_windows(image)
    inner, inner_flip = inner_windows(image)
    centre, scales_flip = _scales(image)
    wide, wide_flip = _scales(image, WIDE_SCALES)
    trimmed_centre, trimmed_flip = (centre, scales_flip) if trimmed is image else _scales(trimmed)
    # compute_dihedral gives eight hashes; index 5 is the left-right mirror (checked in the tests).
    return Signature(
        phash=_phash(image),
        phash_flip=_phash(ImageOps.mirror(image)),
        centre=centre,
        centre_flip=scales_flip[0],
        trimmed=trimmed_centre,
        trimmed_flip=trimmed_flip[0],
        pdq=bits(dihedral[0]),
        pdq_flip=bits(dihedral[5]),
        pdq_quality=int(quality),
        shifted=tuple(plain for plain, _ in moved),
        shifted_flip=tuple(mirrored for _, mirrored in moved),
        outer=outer,
        outer_flip=outer_flip,
        inner=inner,
        inner_flip=inner_flip,
        scales_flip=scales_flip[1:],
        wide=wide,
        wide_flip=wide_flip,
    )


# A picture cut unevenly (up to 10% off some sides, nothing off the others) holds its original's central 70% as
# a larger window, off its own centre. The moved regions (Signature.shifted) look for it from the original's
# side, guessing where the copy's centre went; they miss many copies cut a full 10% off one side, and most cut
# 10% off two adjacent ones (of the labelled set's 52 bases, 43 matched cut off the left, 24-28 per corner). So
# every picture also hashes the windows where its original's central 70% would sit, had OUTER_CROP been cut off
# one side or two adjacent ones (Signature.outer): with them, 52 of 52 in each case.
OUTER_CROP = 0.08


def _uneven_windows(image: Image.Image, window_of: Callable[[float, float, float, float], tuple[float, ...]],
                    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """_region, and of the mirror image, of the window `window_of` gives (as shares of the picture's sides) for
    each crop of OUTER_CROP off one side or two adjacent ones (left, right, top, bottom cut): eight windows."""
    sides = (image.width, image.height) * 2
    cuts = ((OUTER_CROP, 0.0), (0.0, 0.0), (0.0, OUTER_CROP))  # (off the start, off the end) of one axis
    found: list[tuple[str, str]] = []
    for (left, right), (top, bottom) in itertools.product(cuts, cuts):
        if left or right or top or bottom:
            window = window_of(left, right, top, bottom)
            found.append(_region_and_mirror(image.crop(tuple(round(share * side) for share, side in zip(window, sides)))))
    return tuple(plain for plain, _ in found), tuple(mirrored for _, mirrored in found)


def outer_windows(image: Image.Image) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """_region, and of the mirror image, of each window of a picture that would be its original's central 70% had
    OUTER_CROP been cut off one side or two adjacent ones: eight windows."""
    margin = (1 - SCALES[0]) / 2

    def window(left: float, right: float, top: float, bottom: float) -> tuple[float, ...]:
        width, height = 1 - left - right, 1 - top - bottom
        return ((margin - left) / width, (margin - top) / height, (1 - margin - left) / width, (1 - margin - top) / height)

    return _uneven_windows(image, window)


# The other way round: the windows of a picture where the central 70% of its copy cut unevenly sits. A lookup
# by an original compares them with the stored pictures' central regions, the only regions indexed, to bring
# in its stored uneven crops, whose own outer windows are not indexed. The picture's central region moved
# (Signature.shifted) finds a crop only when the cut is slight: of the labelled set's 52 bases, 14-37 per
# uneven crop, against 43-52 with these (measured by comparing signatures as lookups do).
def inner_windows(image: Image.Image) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """_region, and of the mirror image, of each window of a picture that would be the central 70% of its copy
    cut OUTER_CROP off one side or two adjacent ones: eight windows."""
    margin = (1 - SCALES[0]) / 2

    def window(left: float, right: float, top: float, bottom: float) -> tuple[float, ...]:
        width, height = 1 - left - right, 1 - top - bottom
        return (left + width * margin, top + height * margin, left + width * (1 - margin), top + height * (1 - margin))

    return _uneven_windows(image, window)


def hamming(a: str, b: str) -> int:
    return (int(a, 2) ^ int(b, 2)).bit_count()


def _hamming_often(a: str, b: str) -> int:
    """hamming, for the central regions' hundreds of comparisons per pair: each of a probe's hashes meets every
    candidate's and each candidate's several of the probe's, so each string is parsed once (an image lookup's
    thousand candidates were checked in half the time). Whole-picture and PDQ hashes are compared once per pair,
    where the cache would only cost (a media-cluster build measured a few percent slower with it there)."""
    return (_value(a) ^ _value(b)).bit_count()


@lru_cache(maxsize=1 << 12)
def _value(bits: str) -> int:
    """A hash's bits as an integer. A picture is some ninety strings, so 4,096 hold a probe and the candidate it
    meets (about 2 MB)."""
    return int(bits, 2)


@dataclass(frozen=True)
class MatchEvidence:
    matched: bool
    via: str  # phash, centre, trimmed, moved, pdq (each also -mirror), or "" when no signature agrees
    distance: int  # bits, of the signature named in `via` (or of the whole-picture pHash when none agrees)


def _centre_distance(copy: Signature, original: Signature, shifted_limit: int) -> tuple[int, str]:
    """The copy's central 70% (or its mirror) against the original's centre at every scale, plain and trimmed;
    and the copy's moved regions, when within shifted_limit: its trimmed centre moved (Signature.shifted) against
    the original's trimmed centre, its outer windows (Signature.outer) against the original's centre; and mirrored."""
    best = (65, "")
    for probe, mirrored in ((copy.centre[0], False), (copy.centre_flip, True)):
        best = min(best, *((_hamming_often(probe, h), "centre-mirror" if mirrored else "centre") for h in original.centre))
    for probe, mirrored in ((copy.trimmed[0], False), (copy.trimmed_flip, True)):
        best = min(best, *((_hamming_often(probe, h), "trimmed-mirror" if mirrored else "trimmed") for h in original.trimmed))
    for probes, against, via in ((copy.shifted, original.trimmed, "moved"), (copy.shifted_flip, original.trimmed, "moved-mirror"),
                                 (copy.outer, original.centre, "moved"), (copy.outer_flip, original.centre, "moved-mirror")):
        moved = min((_hamming_often(probe, h) for probe in probes for h in against), default=65)
        if moved <= shifted_limit:
            best = min(best, (moved, via))
    return best


def media_match(a: Signature, b: Signature, thresholds: Thresholds | None = None,
                confirm: Callable[[bool, bool], bool] | None = None) -> MatchEvidence:
    """Do two signatures show the same picture (either may be the altered one)? The closest agreeing
    signature says how.

    A match that rests on one coarse signature alone — the central region, or the whole-picture pHash
    farther than `phash_sure` bits — with no trusted PDQ agreeing, is put to `confirm` (with whether it is
    a mirrored match, and whether it is strict: a match by a moved region, one guess among thirty-two,
    within MOVED_SURE_MARGIN bits of its threshold is refused when the pictures are too plain to tell), and
    stands only if it says yes: callers holding the
    pictures pass a keypoint check (media_analysis.keypoints). Without `confirm`, the signatures decide alone."""
    t = thresholds or Thresholds.from_settings()
    return _verdict(a, b, t, confirm, lambda: min(_centre_distance(a, b, t.centre_shifted),
                                                  _centre_distance(b, a, t.centre_shifted)))


def media_matches(probe: Signature, candidates: Sequence[Signature], thresholds: Thresholds | None = None,
                  confirm: Callable[[int], Callable[[bool, bool], bool] | None] | None = None) -> list[MatchEvidence]:
    """media_match(probe, candidate) for every candidate, the same verdicts in the same order (confirm(i): the
    i-th candidate's `confirm`), with the central regions of all the candidates compared at once in NumPy. An
    image lookup checks a thousand candidates, and every pair makes a few hundred central-region comparisons."""
    t = thresholds or Thresholds.from_settings()
    centres = _centre_distances(probe, candidates, t.centre_shifted)
    return [_verdict(probe, candidate, t, confirm(i) if confirm else None, lambda i=i: centres[i])
            for i, candidate in enumerate(candidates)]


def _verdict(a: Signature, b: Signature, t: Thresholds, confirm: Callable[[bool, bool], bool] | None,
             centre_distance: Callable[[], tuple[int, str]]) -> MatchEvidence:
    """media_match's decision, the central regions' distance asked only when the whole picture does not decide."""
    pdq = None
    if a.pdq_quality >= t.pdq_min_quality and b.pdq_quality >= t.pdq_min_quality:
        pdq = min((hamming(a.pdq, b.pdq), "pdq"), (hamming(a.pdq_flip, b.pdq), "pdq-mirror"))
        pdq = pdq if pdq[0] <= t.pdq else None
    whole = min((hamming(a.phash, b.phash), "phash"), (hamming(a.phash_flip, b.phash), "phash-mirror"))
    if whole[0] <= t.phash and (whole[0] <= t.phash_sure or pdq is not None or confirm is None
                                or confirm(whole[1].endswith("mirror"), False)):
        return MatchEvidence(True, whole[1], whole[0])
    centre = centre_distance()
    # A moved match near its threshold must be confirmed by keypoints: too plain to tell refuses it.
    strict = centre[1].startswith("moved") and centre[0] > t.centre_shifted - MOVED_SURE_MARGIN
    if centre[0] <= t.centre and (pdq is not None or confirm is None or confirm(centre[1].endswith("mirror"), strict)):
        return MatchEvidence(True, centre[1], centre[0])
    if pdq is not None:
        return MatchEvidence(True, pdq[1], pdq[0])
    return MatchEvidence(False, "", whole[0])


# _centre_distance's names for its comparisons, in the order min() breaks a tie between two of them (by name).
_CENTRE_VIAS = ("centre", "centre-mirror", "moved", "moved-mirror", "trimmed", "trimmed-mirror")
_REGION_FIELDS = ("centre", "trimmed", "shifted", "shifted_flip", "outer", "outer_flip")
_NONE = 65  # _centre_distance's starting point: a comparison only counts when nearer than this


def words(bit_strings: list[str]) -> np.ndarray:
    """Bit strings of one length (a multiple of 64) as rows of uint64 words (their bytes in order, as faiss packs
    bits; the order is the same for every row, which is all XOR and a bit count need). ValueError for anything
    but 0s and 1s."""
    bits = np.frombuffer("".join(bit_strings).encode("ascii", errors="replace"), dtype=np.uint8) - ord("0")
    if bits.size and bits.max() > 1:
        raise ValueError("not a bit string")
    return np.packbits(bits.reshape(len(bit_strings), -1), axis=1).view(np.uint64)


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Differing bits between every row of a and every row of b (rows of uint64 words)."""
    total = np.bitwise_count(a[:, None, 0] ^ b[None, :, 0])
    if a.shape[1] > 2:  # 256 differing bits would not fit in uint8
        total = total.astype(np.uint16)
    for word in range(1, a.shape[1]):
        total += np.bitwise_count(a[:, None, word] ^ b[None, :, word])
    return total


def _regions(signatures: Sequence[Signature], length: int) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Each central-region field of the signatures as rows of uint64 words with, beside them, the position of
    the signature each row belongs to; the first central region and the mirror's (plain and trimmed) as `*0`
    fields, one row per signature. None unless every such hash is `length` 0s and 1s (a multiple of 64) and
    every signature has its central regions: the caller then compares pair by pair, as media_match does."""
    if length % 64 or any(not s.centre or not s.trimmed for s in signatures):
        return None
    lists = {name: [getattr(s, name) for s in signatures] for name in _REGION_FIELDS}
    lists |= {"centre0": [(s.centre[0],) for s in signatures], "centre_flip0": [(s.centre_flip,) for s in signatures],
              "trimmed0": [(s.trimmed[0],) for s in signatures], "trimmed_flip0": [(s.trimmed_flip,) for s in signatures]}
    found = {}
    for name, groups in lists.items():
        hashes = [h for group in groups for h in group]
        if hashes and set(map(len, hashes)) != {length}:
            return None
        try:
            rows = words(hashes) if hashes else np.zeros((0, length // 64), dtype=np.uint64)
        except ValueError:
            return None
        found[name] = (rows, np.repeat(np.arange(len(signatures)), [len(group) for group in groups]))
    return found


def _nearest(probes: np.ndarray, hashes: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """Per signature (owner: the signature of each of `hashes`), the fewest differing bits between any of the
    probe's hashes and any of its own; _NONE for a signature with none, or when the probe has none."""
    nearest = np.full(count, _NONE, dtype=np.int16)
    if len(probes) and len(hashes):
        np.minimum.at(nearest, owner, hamming_matrix(probes, hashes).min(axis=0))
    return nearest


def _centre_distances(probe: Signature, candidates: Sequence[Signature], shifted_limit: int) -> list[tuple[int, str]]:
    """min(_centre_distance(probe, c), _centre_distance(c, probe)) for every candidate c, the same values (ties
    broken the same way), computed for all of them at once."""
    length = len(probe.centre[0]) if probe.centre else 0
    theirs = _regions(candidates, length) if candidates else None
    mine = _regions([probe], length) if theirs is not None else None
    if mine is None:
        return [min(_centre_distance(probe, c, shifted_limit), _centre_distance(c, probe, shifted_limit)) for c in candidates]
    n = len(candidates)
    p = {name: rows for name, (rows, _) in mine.items()}

    def near(probes: np.ndarray, field: str) -> np.ndarray:
        return _nearest(probes, *theirs[field], n)

    # The probe as the copy (its regions against each candidate's), then each candidate as the copy.
    columns = {
        "centre": np.minimum(near(p["centre0"], "centre"), near(p["centre"], "centre0")),
        "centre-mirror": np.minimum(near(p["centre_flip0"], "centre"), near(p["centre"], "centre_flip0")),
        "trimmed": np.minimum(near(p["trimmed0"], "trimmed"), near(p["trimmed"], "trimmed0")),
        "trimmed-mirror": np.minimum(near(p["trimmed_flip0"], "trimmed"), near(p["trimmed"], "trimmed_flip0")),
        "moved": np.minimum.reduce([near(p["shifted"], "trimmed"), near(p["outer"], "centre"),
                                    near(p["trimmed"], "shifted"), near(p["centre"], "outer")]),
        "moved-mirror": np.minimum.reduce([near(p["shifted_flip"], "trimmed"), near(p["outer_flip"], "centre"),
                                           near(p["trimmed"], "shifted_flip"), near(p["centre"], "outer_flip")]),
    }
    for moved in ("moved", "moved-mirror"):  # a moved region counts only within its own limit
        columns[moved] = np.where(columns[moved] <= shifted_limit, columns[moved], 2 * _NONE)
    table = np.stack([columns[via] for via in _CENTRE_VIAS], axis=1)
    best = table.argmin(axis=1)  # the first of equals: the name min() would pick
    distances = table[np.arange(n), best]
    return [(d, _CENTRE_VIAS[b]) if d < _NONE else (_NONE, "")
            for d, b in zip(distances.tolist(), best.tolist(), strict=True)]
