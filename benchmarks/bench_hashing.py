"""Hashing throughput per core on 1080x1080 JPEGs: reduced-size JPEG decoding (libjpeg DCT scaling through
Pillow's draft) against plain `imagehash.phash(Image.open(path))`, with how far the hashes drift.

    .venv/bin/python benchmarks/bench_hashing.py [--images 60]

Prints images per second for each way of decoding, the ratio to the plain baseline, and the pHash and
PDQ drift (bits) of each draft size against a full decode (the largest over all the images). Also pHash from
the grey channel alone, shrunk in floating point (_grey_phash). Figures, never assertions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "investigator.settings")

import imagehash  # noqa: E402
import numpy as np  # noqa: E402
import pdqhash  # noqa: E402
import scipy.fftpack  # noqa: E402
from PIL import Image  # noqa: E402


def write_jpegs(folder: Path, count: int) -> list[Path]:
    from accounts.demo.images import PHOTO_NAMES, photo_crop

    rng = np.random.default_rng(5)
    paths = []
    for n in range(count):
        image = photo_crop(rng, PHOTO_NAMES[n % len(PHOTO_NAMES)], 1080)
        noise = rng.normal(0, 6, size=(1080, 1080, 3))  # camera-like grain, so JPEGs are realistic in size
        image = Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8))
        path = folder / f"{n:04d}.jpg"
        image.save(path, quality=88)
        paths.append(path)
    return paths


def _open(path: Path, draft: int | None) -> Image.Image:
    image = Image.open(path)
    if draft:
        image.draft("RGB", (draft, draft))
    return image.convert("RGB")


def _grey_phash(path: Path, draft: int) -> imagehash.ImageHash:
    """imagehash.phash's steps on the grey channel alone, decoded at reduced size (libjpeg then skips the colour
    components), shrunk to 32x32 in floating point rather than to whole grey levels: at 1/8 scale, rounding to
    whole levels moves up to 4 bits, while a full decode's own rounding moves 2."""
    image = Image.open(path)
    image.draft("L", (draft, draft))
    pixels = np.asarray(image.convert("L").convert("F").resize((32, 32), Image.Resampling.LANCZOS))
    low = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)[:8, :8]
    return imagehash.ImageHash(low > np.median(low))


def _rate(paths: list[Path], work) -> float:
    started = time.perf_counter()
    for path in paths:
        work(path)
    return len(paths) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=60)
    args = parser.parse_args()
    import django

    django.setup()
    from media_analysis.hashing import DRAFT_SIDE, compute_hashes

    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), args.images)
        baseline = _rate(paths, lambda p: imagehash.phash(Image.open(p)))
        print(f"{len(paths)} JPEGs of 1080x1080, one core\n")
        print(f"{'decoding':<34} {'images/s':>9} {'ratio':>7} {'pHash drift max':>16} {'PDQ drift median/max':>21}")
        print(f"{'plain imagehash.phash(open)':<34} {baseline:>9.1f} {1.0:>6.1f}x {'-':>16} {'-':>21}")
        full_phash = [imagehash.phash(_open(p, None)) for p in paths]
        full_pdq = [pdqhash.compute(np.asarray(_open(p, None)))[0] for p in paths]
        for draft in (128, 256, DRAFT_SIDE):
            rate = _rate(paths, lambda p, d=draft: imagehash.phash(_open(p, d)))
            drift = max(imagehash.phash(_open(p, draft)) - h for p, h in zip(paths, full_phash, strict=True))
            pdq_drift = [int((pdqhash.compute(np.asarray(_open(p, draft)))[0] != h).sum())
                         for p, h in zip(paths, full_pdq, strict=True)]
            print(f"{f'pHash, draft ≥ {draft} px':<34} {rate:>9.1f} {rate / baseline:>6.1f}x {drift:>16} "
                  f"{f'{int(np.median(pdq_drift))}/{max(pdq_drift)}':>21}")
        for draft in (128, 256):
            rate = _rate(paths, lambda p, d=draft: _grey_phash(p, d))
            drift = max(_grey_phash(p, draft) - h for p, h in zip(paths, full_phash, strict=True))
            print(f"{f'pHash, grey draft ≥ {draft} px, float':<34} {rate:>9.1f} {rate / baseline:>6.1f}x {drift:>16} {'-':>21}")
        rate = _rate(paths, lambda p: compute_hashes(p, max_pixels=10**8))
        print(f"{'every signature (compute_hashes)':<34} {rate:>9.1f} {rate / baseline:>6.1f}x")
        print(f"\nThe worker decodes JPEGs at ≥ {DRAFT_SIDE} px (PDQ needs the larger draft); target ≥ 4x the plain "
              "baseline with pHash within 2 bits")


if __name__ == "__main__":
    main()
