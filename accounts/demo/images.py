"""Pictures for the demo campaign: real photographs from scikit-image's bundled samples,
rich procedural scenes for the organic background, memes and their altered copies."""

from __future__ import annotations

import io
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

# Real photographs bundled inside the scikit-image wheel (no download needed).
PHOTO_NAMES = (
    "astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field",
    "immunohistochemistry", "moon", "coins", "grass", "gravel", "brick", "retina", "motorcycle",
)
SIZE = 320


@cache
def photo(name: str) -> Image.Image:
    import skimage.data

    if name == "motorcycle":
        # stereo pair left view: a real street photograph
        array = skimage.data.stereo_motorcycle()[0]
    else:
        array = getattr(skimage.data, name)()
    if array.dtype != np.uint8:
        array = (255 * (array.astype(np.float64) / max(float(array.max()), 1.0))).astype(np.uint8)
    image = Image.fromarray(array)
    return image.convert("RGB")


def photo_crop(rng: np.random.Generator, name: str, size: int = SIZE) -> Image.Image:
    """A random square crop of a photograph, at least half its short side."""
    base = photo(name)
    short = min(base.size)
    side = int(rng.integers(short // 2, short + 1))
    left = int(rng.integers(0, base.width - side + 1))
    top = int(rng.integers(0, base.height - side + 1))
    return base.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)


def procedural_scene(rng: np.random.Generator, size: int = SIZE) -> Image.Image:
    """A unique picture: a smooth random colour field with blobs and texture, plus a photo fragment."""
    # The smooth field is computed at low resolution and scaled up: it carries the
    # low-frequency structure perceptual hashes look at, at a fraction of the cost.
    low = 64
    y, x = np.mgrid[0:low, 0:low].astype(np.float32) / low
    channels = []
    for _ in range(3):
        field = np.zeros((low, low), dtype=np.float32)
        for _ in range(4):
            fx, fy = rng.uniform(0.5, 4.0, size=2)
            phase = rng.uniform(0, 2 * np.pi)
            field += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * (fx * x + fy * y) + phase)
        channels.append(field)
    image = np.stack(channels, axis=-1)
    for _ in range(int(rng.integers(3, 8))):
        cx, cy = rng.uniform(0, 1, size=2)
        radius = rng.uniform(0.05, 0.3)
        blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
        image += blob[..., None] * rng.uniform(-2.0, 2.0, size=3)
    image -= image.min()
    image /= max(float(image.max()), 1e-6)
    small = Image.fromarray((image * 255).astype(np.uint8))
    grain = rng.integers(-8, 9, size=(size, size, 3), dtype=np.int16)
    image = np.asarray(small.resize((size, size), Image.Resampling.BILINEAR), dtype=np.int16) + grain
    scene = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    # A fragment of a real photograph gives natural texture and edges. There are only a few photographs, so
    # each fragment is turned by an angle of its own: two scenes showing the same part of one photograph the
    # same way up and at the same place would be one picture on two backgrounds, a copy.
    fragment_size = int(rng.integers(size // 3, int(size * 0.6)))
    fragment = photo_crop(rng, PHOTO_NAMES[int(rng.integers(len(PHOTO_NAMES)))], fragment_size)
    angle = float(rng.uniform(0, 360))
    mask = Image.new("L", fragment.size, int(rng.integers(150, 256))).rotate(angle, Image.Resampling.BILINEAR, expand=True)
    fragment = fragment.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    position = (int(rng.integers(0, size - fragment.width + 1)), int(rng.integers(0, size - fragment.height + 1)))
    scene.paste(fragment, position, mask)
    return scene


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def meme(base: Image.Image, top: str, bottom: str) -> Image.Image:
    """Classic meme layout: white capitals with a black outline at the top and bottom."""
    image = base.copy()
    draw = ImageDraw.Draw(image)
    font = _font(max(14, image.width // 12))
    for text, anchor_y, anchor in ((top, 8, "ma"), (bottom, image.height - 8, "md")):
        if text:
            draw.text((image.width // 2, anchor_y), text.upper(), font=font, fill="white", anchor=anchor,
                      stroke_width=2, stroke_fill="black")
    return image


def add_banner(image: Image.Image, text: str) -> Image.Image:
    """A solid caption banner under the picture (a common re-post alteration)."""
    banner_height = max(24, image.height // 8)
    out = Image.new("RGB", (image.width, image.height + banner_height), "white")
    out.paste(image, (0, 0))
    ImageDraw.Draw(out).text((8, image.height + banner_height // 4), text, font=_font(banner_height // 2), fill="black")
    return out


ALTERATIONS = ("identical", "resize", "recompress", "colour", "filter", "grayscale", "crop", "mirror", "no_text",
               "partial_text", "banner", "brightness")


def alter(rng: np.random.Generator, meme_parts: tuple[Image.Image, str, str], kind: str) -> Image.Image:
    """One altered copy of a meme, as the Ghost Data study saw them."""
    base, top, bottom = meme_parts
    if kind == "no_text":
        return meme(base, "", "")
    if kind == "partial_text":
        return meme(base, top, "")
    image = meme(base, top, bottom)
    if kind == "resize":
        factor = float(rng.uniform(0.5, 0.8))
        return image.resize((int(image.width * factor), int(image.height * factor)), Image.Resampling.BILINEAR)
    if kind == "colour":
        r, g, b = image.split()
        shift = rng.integers(-25, 26, size=3)
        return Image.merge("RGB", [c.point(lambda v, s=int(s): max(0, min(255, v + s))) for c, s in zip((r, g, b), shift)])
    if kind == "filter":
        sepia = ImageOps.colorize(ImageOps.grayscale(image), "#3b2a14", "#f3e2c0")
        return Image.blend(image, sepia, 0.6).filter(ImageFilter.SMOOTH)
    if kind == "grayscale":
        return ImageOps.grayscale(image).convert("RGB")
    if kind == "crop":
        fraction = rng.uniform(0.03, 0.10, size=4)
        w, h = image.size
        return image.crop((int(w * fraction[0]), int(h * fraction[1]), w - int(w * fraction[2]), h - int(h * fraction[3])))
    if kind == "mirror":
        return ImageOps.mirror(image)
    if kind == "banner":
        return add_banner(image, "#impeachtrump")
    if kind == "brightness":
        return ImageEnhance.Brightness(ImageEnhance.Contrast(image).enhance(float(rng.uniform(0.75, 1.25)))).enhance(
            float(rng.uniform(0.75, 1.25))
        )
    return image  # identical and recompress: same picture, different encoding below


def jpeg_bytes(image: Image.Image, quality: int = 88) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=False)
    return buffer.getvalue()
