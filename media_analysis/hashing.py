"""Perceptual hashes of one image: pHash and dHash (imagehash), PDQ with its quality (pdqhash)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from media_analysis.matching import Signature, signature


class UnreadableImage(ValueError):
    """The file is not an image we can hash; the message says why, for the asset's error state."""


@dataclass(frozen=True)
class ImageHashes:
    width: int
    height: int
    format: str
    phash: str  # 64 characters of 0/1, as pgvector's bit type takes them
    dhash: str
    pdq: str  # 256 characters
    pdq_quality: int
    signature: Signature


def _bits(array: np.ndarray) -> str:
    return "".join("1" if bit else "0" for bit in np.asarray(array, dtype=bool).ravel())


# JPEGs are decoded at reduced size (libjpeg's DCT scaling) down to no less than this many pixels a side:
# every hash here works on far fewer pixels (PDQ on 64x64 after its own filtering, pHash on 32x32), and
# benchmarks/bench_hashing.py measures that the hashes barely move.
DRAFT_SIDE = 512


def load_rgb(path: Path, *, max_pixels: int, draft: int | None = DRAFT_SIDE) -> tuple[Image.Image, str, tuple[int, int]]:
    """Open defensively: no decompression bombs, EXIF orientation applied, first frame, RGB on white.
    Returns the picture, its format and its stored size (before any reduced decoding)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Both are process-wide switches that other libraries flip (WeasyPrint turns truncated-image
            # loading on when imported): a cut-off picture must fail here, never be padded with grey.
            previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
            previous_truncated, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
            try:
                image = Image.open(path)
                image_format = image.format or ""
                if image.width * image.height > max_pixels:
                    raise UnreadableImage(f"{image.width}×{image.height} pixels is over the limit of {max_pixels}")
                image.seek(0)
                original_size = image.size
                if draft and image.format == "JPEG":
                    image.draft("RGB", (draft, draft))
                image.load()
            finally:
                Image.MAX_IMAGE_PIXELS = previous
                ImageFile.LOAD_TRUNCATED_IMAGES = previous_truncated
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(f"refused as a decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise UnreadableImage("not an image file (format not recognised)") from exc
    except OSError as exc:
        if exc.filename is not None:  # the file itself, not its contents: missing, a folder, not allowed
            raise UnreadableImage(f"cannot open the file: {exc.strerror or exc}") from exc
        raise UnreadableImage(f"damaged or truncated image ({exc})") from exc
    except (SyntaxError, ValueError) as exc:
        raise UnreadableImage(f"damaged or truncated image ({exc})") from exc
    size = original_size
    image = ImageOps.exif_transpose(image) or image
    if image.mode in {"I;16", "I;16B", "I;16L", "I"}:
        array = np.asarray(image, dtype=np.float64)
        span = max(float(array.max() - array.min()), 1.0)
        image = Image.fromarray(((array - array.min()) / span * 255).astype(np.uint8))
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB"), image_format, size


def compute_hashes(path: Path, *, max_pixels: int) -> ImageHashes:
    image, image_format, (width, height) = load_rgb(path, max_pixels=max_pixels)
    found = signature(image)
    return ImageHashes(
        width=width,
        height=height,
        format=image_format,
        phash=found.phash,
        dhash=_bits(imagehash.dhash(image).hash),
        pdq=found.pdq,
        pdq_quality=found.pdq_quality,
        signature=found,
    )


def picture_paths(paths: list[Path]) -> list[Path]:
    """The files named, in the order given, each folder replaced by the files in it named like pictures
    (an extension Pillow reads; hidden ones left out), sorted; a folder without any stays as itself, to be
    reported. A file named on its own is always tried."""
    extensions = Image.registered_extensions()
    found: list[Path] = []
    for path in paths:
        pictures = sorted(p for p in path.rglob("*") if p.suffix.lower() in extensions and p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(path).parts)) if path.is_dir() else []
        found += pictures or [path]
    return found
