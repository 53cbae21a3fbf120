"""Pictures for the media tests: squares of the photographs bundled with scikit-image, their crops and
recompressed copies, and storing pictures as an import would."""

from __future__ import annotations

import io

from PIL import Image

from accounts.demo.images import photo


def square(name: str, size: int = 400) -> Image.Image:
    image = photo(name)
    side = min(image.size)
    return image.crop((0, 0, side, side)).resize((size, size), Image.Resampling.LANCZOS)


def crop(image: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = image.size
    return image.crop((int(w * left), int(h * top), w - int(w * right), h - int(h * bottom)))


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def store_pictures(folder, pictures: dict[str, Image.Image]) -> dict:
    """Save each picture as NAME.jpg in folder, store and hash it as an import would: the assets by NAME."""
    from media_analysis.models import MediaAsset
    from media_analysis.services import media_assets_register, media_file_store, media_hash_batch, media_hash_claim

    stored = []
    for name, image in pictures.items():
        path = folder / f"{name}.jpg"
        image.save(path, quality=90)
        stored.append((media_file_store(path=path), path.name))
    media_assets_register(files=stored)
    while ids := media_hash_claim(limit=10):
        media_hash_batch(asset_ids=ids)
    return {a.original_name.removesuffix(".jpg"): a for a in MediaAsset.objects.all()}
