"""Near-duplicate matching on a labelled set built from real photographs, per alteration.

    .venv/bin/python benchmarks/bench_matching.py [--tune] [--distractors N] [--seed N]

Bases: the four quadrants of each photograph bundled with scikit-image (distinct pictures that share
colours and textures: hard distractors), except the retina, whose quadrants mirror each other. Each
base is altered in every way the issue lists, and in combinations of two. For every alteration, a
positive is (base, its altered copy) and the negatives are (altered copy, every other base). Recall
and precision come from media_analysis.matching.media_match with the thresholds in settings, with the
signatures alone and with the keypoint check on matches that rest on one coarse signature
(media_analysis.keypoints, as lookups and media clusters use it); --tune also prints the best
thresholds found on this set (signatures alone).
Figures, never assertions.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "investigator.settings")

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance, ImageOps  # noqa: E402

SIZE = 400


def bases() -> list[Image.Image]:
    from accounts.demo.images import PHOTO_NAMES, photo

    pictures = []
    # The retina photograph is left-right symmetric: its quadrants are mirror copies of each other.
    for name in (n for n in PHOTO_NAMES if n != "retina"):
        image = photo(name)
        half_w, half_h = image.width // 2, image.height // 2
        for x, y in itertools.product((0, 1), (0, 1)):
            quadrant = image.crop((x * half_w, y * half_h, (x + 1) * half_w, (y + 1) * half_h))
            pictures.append(quadrant.resize((SIZE, SIZE), Image.Resampling.LANCZOS))
    return pictures


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def _crop(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Up to 10% off each side, each side its own share: from an even trim to 10% off one side only."""
    left, top, right, bottom = rng.uniform(0.0, 0.10, size=4)
    w, h = image.size
    return image.crop((int(w * left), int(h * top), w - int(w * right), h - int(h * bottom)))


def _meme(image: Image.Image) -> Image.Image:
    from accounts.demo.images import meme

    return meme(image, "when he tweets", "at 3am again")


def _banner(image: Image.Image) -> Image.Image:
    from accounts.demo.images import add_banner

    return add_banner(image, "#share #truth")


def _filter(image: Image.Image) -> Image.Image:
    sepia = ImageOps.colorize(ImageOps.grayscale(image), "#3b2a14", "#f3e2c0")
    return Image.blend(image, sepia, 0.6)


ALTERATIONS = {
    "resize 50%": lambda im, rng: im.resize((im.width // 2, im.height // 2), Image.Resampling.BILINEAR),
    "jpeg q30": lambda im, rng: _jpeg(im, 30),
    "brightness +30%": lambda im, rng: ImageEnhance.Brightness(im).enhance(1.3),
    "brightness -30%": lambda im, rng: ImageEnhance.Brightness(im).enhance(0.7),
    "contrast +30%": lambda im, rng: ImageEnhance.Contrast(im).enhance(1.3),
    "contrast -30%": lambda im, rng: ImageEnhance.Contrast(im).enhance(0.7),
    "grayscale": lambda im, rng: ImageOps.grayscale(im).convert("RGB"),
    "colour filter": lambda im, rng: _filter(im),
    "banner added": lambda im, rng: _banner(im),
    "meme text": lambda im, rng: _meme(im),
    "crop ≤10%/side": _crop,
    "mirror": lambda im, rng: ImageOps.mirror(im),
}
# "banner removed" is "banner added" seen from the other side: the base carries the banner.
PAIRS_OF_TWO = (
    ("mirror", "crop ≤10%/side"), ("mirror", "jpeg q30"), ("crop ≤10%/side", "resize 50%"), ("meme text", "crop ≤10%/side"),
    ("meme text", "mirror"), ("banner added", "mirror"), ("grayscale", "crop ≤10%/side"), ("colour filter", "crop ≤10%/side"),
    ("brightness +30%", "crop ≤10%/side"), ("contrast -30%", "mirror"), ("jpeg q30", "resize 50%"),
    ("grayscale", "mirror"), ("banner added", "crop ≤10%/side"), ("meme text", "jpeg q30"), ("colour filter", "mirror"),
    ("meme text", "banner added"), ("brightness -30%", "grayscale"),
)


class Picture:
    """A picture's signature, and its keypoints (plain and mirrored) for the keypoint check."""

    def __init__(self, image: Image.Image) -> None:
        from media_analysis.keypoints import keypoints
        from media_analysis.matching import signature

        self.signature = signature(image)
        self.keypoints = (keypoints(image), keypoints(image, mirrored=True))


def labelled_set(seed: int = 1, limit: int | None = None) -> tuple[tuple[list, list], dict[str, list]]:
    """The bases (the first `limit` of them, or all; and the bases with a banner), and per alteration (base
    index, altered copy), as Pictures."""
    rng = np.random.default_rng(seed)
    pictures = bases()[:limit]
    originals = [Picture(p) for p in pictures]
    altered: dict[str, list] = {}
    for name, change in ALTERATIONS.items():
        altered[name] = [(i, Picture(change(p, rng))) for i, p in enumerate(pictures)]
    altered["banner removed"] = [(i, originals[i]) for i in range(len(pictures))]
    bannered = [Picture(_banner(p)) for p in pictures]
    for first, second in PAIRS_OF_TWO:
        altered[f"{first} + {second}"] = [
            (i, Picture(ALTERATIONS[second](ALTERATIONS[first](p, rng), rng))) for i, p in enumerate(pictures)]
    return (originals, bannered), altered


def _matches(a: Picture, b: Picture, thresholds, check: int) -> bool:
    """media_match, with the keypoint check at `check` keypoints (0: without it)."""
    from media_analysis.keypoints import agreement, confirmed
    from media_analysis.matching import media_match

    def confirm(mirrored: bool, strict: bool = False) -> bool:
        return confirmed(agreement(a.keypoints[mirrored], b.keypoints[0]), check, strict)

    return media_match(a.signature, b.signature, thresholds, confirm if check else None).matched


def evaluate(bases_signatures, altered, thresholds, check: int = 0) -> dict[str, tuple[float, float, int, int]]:
    originals, bannered = bases_signatures
    results = {}
    for name, copies in altered.items():
        reference = bannered if name == "banner removed" else originals
        true_positive = false_positive = 0
        for i, copy in copies:
            true_positive += _matches(copy, reference[i], thresholds, check)
            false_positive += sum(_matches(copy, reference[j], thresholds, check)
                                  for j in range(len(reference)) if j != i)
        recall = true_positive / len(copies)
        precision = true_positive / (true_positive + false_positive) if true_positive + false_positive else 1.0
        results[name] = (recall, precision, true_positive, false_positive)
    return results


def distractor_matches(count: int, thresholds, check: int, centre_limits=(20, 22, 24, 26, 28, 30), seed: int = 11) -> dict:
    """Pairs of unrelated pictures that match, among `count` of the demo's unique pictures (smooth random
    colour fields, each with a turned fragment of one of the bundled photographs pasted in: accounts.demo.images
    .procedural_scene). The labelled set above has 52 bases, about 1,300 unrelated pairs per alteration; a
    collection of N pictures has N²/2, so the far tail of unrelated distances decides its precision. Every
    pair is compared (whole-picture pHash, the central regions at every scale both ways and mirrored, PDQ
    when both are detailed enough), in NumPy. The pairs that media_match would put to the keypoint check then
    go through it."""
    from accounts.demo.images import procedural_scene
    from media_analysis.matching import hamming_matrix as _hamming_matrix
    from media_analysis.matching import words as _words

    rng = np.random.default_rng(seed)
    pictures = [Picture(procedural_scene(rng)) for _ in range(count)]
    signatures = [p.signature for p in pictures]
    words = {name: _words([getattr(s, name) for s in signatures]) for name in ("phash", "phash_flip", "centre_flip",
                                                                               "pdq", "pdq_flip")}
    scales = [_words([s.centre[k] for s in signatures]) for k in range(len(signatures[0].centre))]
    whole = np.minimum(_hamming_matrix(words["phash"], words["phash"]),
                       _hamming_matrix(words["phash_flip"], words["phash"]))
    # The copy's central 70% (plain or mirrored) against the original's centre at every scale, either way round.
    centre = np.full((count, count), 255, dtype=np.uint16)
    for scale in scales:
        for probe in (scales[0], words["centre_flip"]):
            centre = np.minimum(centre, _hamming_matrix(probe, scale))
    centre = np.minimum(centre, centre.T)
    # The copy's moved regions (Signature.moved: its central region moved, its outer windows; plain and mirrored)
    # against the original's centre at every scale.
    moved = np.full((count, count), 255, dtype=np.uint16)
    for k in range(max(len(s.moved) for s in signatures)):
        for probe in (_words([s.moved[min(k, len(s.moved) - 1)] for s in signatures]),
                      _words([s.moved_flip[min(k, len(s.moved_flip) - 1)] for s in signatures])):
            for scale in scales:
                moved = np.minimum(moved, _hamming_matrix(probe, scale))
    moved = np.minimum(moved, moved.T)
    near_centre = (centre <= thresholds.centre) | (moved <= thresholds.centre_shifted)
    trusted = np.array([s.pdq_quality >= thresholds.pdq_min_quality for s in signatures])
    pdq = np.minimum(_hamming_matrix(words["pdq"], words["pdq"]), _hamming_matrix(words["pdq_flip"], words["pdq"]))
    pdq = np.where(trusted[:, None] & trusted[None, :], np.minimum(pdq, pdq.T), 999)
    pairs = np.triu(np.ones((count, count), dtype=bool), 1)
    by_phash = pairs & (whole <= thresholds.phash)
    by_pdq = pairs & ~by_phash & ~near_centre & (pdq <= thresholds.pdq)
    # The pairs media_match puts to the keypoint check: pHash near its threshold or the central region alone.
    unsure = pairs & ~(pdq <= thresholds.pdq) & (((whole <= thresholds.phash) & (whole > thresholds.phash_sure))
                                                 | (~by_phash & near_centre))
    unsure_pairs = np.argwhere(unsure).tolist()
    checked = sum(_matches(pictures[a], pictures[b], thresholds, check) for a, b in unsure_pairs)
    return {"pictures": count, "pairs": int(pairs.sum()), "phash": int(by_phash.sum()), "pdq": int(by_pdq.sum()),
            "unsure": len(unsure_pairs), "unsure_checked": checked,
            "moved": int((pairs & ~by_phash & (centre > thresholds.centre) & (moved <= thresholds.centre_shifted)).sum()),
            "centre": {limit: int((pairs & ~by_phash & (centre <= limit)).sum()) for limit in centre_limits},
            "centre_pictures": {limit: int(((pairs & ~by_phash & (centre <= limit)) | (pairs & ~by_phash & (centre <= limit)).T)
                                           .any(axis=1).sum()) for limit in centre_limits}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1, help="the random draws of the alterations (crops) and the distractors")
    parser.add_argument("--tune", action="store_true", help="search the thresholds that pass the most alterations")
    parser.add_argument("--distractors", type=int, default=0, metavar="N",
                        help="also count the pairs of N unrelated demo pictures that match, per signature (all N²/2 "
                             "pairs; 2,000 take about a minute)")
    parser.add_argument("--bases", type=int, default=None, metavar="N",
                        help="only the first N of the labelled set's bases (a quick look; the targets are on all of them)")
    args = parser.parse_args()
    import django

    django.setup()
    from media_analysis.matching import Thresholds

    started = time.perf_counter()
    base_signatures, altered = labelled_set(args.seed, args.bases)
    print(f"{len(base_signatures[0])} bases, {len(altered)} alterations (seed {args.seed}), "
          f"signatures in {time.perf_counter() - started:.0f} s\n")
    thresholds = Thresholds.from_settings()
    if args.tune:
        best = None
        for phash, centre, pdq in itertools.product((8, 10, 12), range(22, 32, 2), (24, 31, 40)):
            candidate = Thresholds(phash, centre, pdq, thresholds.pdq_min_quality)
            results = evaluate(base_signatures, altered, candidate)
            passed = sum(r >= 0.95 and p >= 0.99 for r, p, _, _ in results.values())
            worst_recall = min(r for r, _, _, _ in results.values())
            key = (passed, worst_recall)
            if best is None or key > best[0]:
                best = (key, candidate)
        print(f"best on this set: {best[1]} ({best[0][0]} of {len(altered)} alterations pass)\n")
    from django.conf import settings

    check = settings.CENTRE_CONFIRM_KEYPOINTS
    plain = evaluate(base_signatures, altered, thresholds)
    results = evaluate(base_signatures, altered, thresholds, check) if check else plain
    print(f"thresholds (settings): pHash ≤ {thresholds.phash}, centre pHash ≤ {thresholds.centre}, "
          f"PDQ ≤ {thresholds.pdq} when quality ≥ {thresholds.pdq_min_quality}; a match on one coarse signature alone "
          f"(the central region, or pHash beyond {thresholds.phash_sure} bits) needs {check} keypoints in agreement "
          f"(CENTRE_CONFIRM_KEYPOINTS)\n")
    print(f"{'':<40} {'signatures alone':^27}   {'with the keypoint check':^27}")
    print(f"{'alteration':<40} {'recall':>7} {'precision':>9} {'TP':>4} {'FP':>4}   {'recall':>7} {'precision':>9} "
          f"{'TP':>4} {'FP':>4}  target")
    for name, (recall, precision, tp, fp) in results.items():
        ok = "ok" if recall >= 0.95 and precision >= 0.99 else "MISSED"
        before = plain[name]
        print(f"{name:<40} {before[0]:>7.3f} {before[1]:>9.3f} {before[2]:>4} {before[3]:>4}   "
              f"{recall:>7.3f} {precision:>9.3f} {tp:>4} {fp:>4}  {ok}")
    passed = sum(r >= 0.95 and p >= 0.99 for r, p, _, _ in results.values())
    print(f"\n{passed} of {len(results)} alterations meet recall ≥ 0.95 at precision ≥ 0.99 (with the check; "
          f"{sum(r >= 0.95 and p >= 0.99 for r, p, _, _ in plain.values())} with the signatures alone)")
    if args.distractors:
        started = time.perf_counter()
        found = distractor_matches(args.distractors, thresholds, check, seed=args.seed + 10)
        print(f"\nunrelated pictures that match: {found['pictures']:,} demo pictures, {found['pairs']:,} pairs "
              f"({time.perf_counter() - started:.0f} s)")
        print(f"  whole-picture pHash ≤ {thresholds.phash}: {found['phash']} pairs; PDQ ≤ {thresholds.pdq} (only "
              f"where nothing else matched): {found['pdq']} pairs")
        for limit, count in found["centre"].items():
            mark = "  (settings)" if limit == thresholds.centre else ""
            print(f"  central regions ≤ {limit}: {count} pairs, {found['centre_pictures'][limit]} pictures with a "
                  f"false match ({100 * found['centre_pictures'][limit] / found['pictures']:.1f}%){mark}")
        print(f"  and the moved regions ≤ {thresholds.centre_shifted} (CENTRE_SHIFTED_MATCH_DISTANCE) where the "
              f"others are farther: {found['moved']} pairs")
        print(f"  matched by one coarse signature alone (pHash {thresholds.phash_sure + 1}–{thresholds.phash} bits, or the "
              f"central region): {found['unsure']} pairs; after the keypoint check: {found['unsure_checked']}")


if __name__ == "__main__":
    main()
