"""Hostile pictures, generated: whatever bytes a media file holds, hashing gives its hashes or a clear
UnreadableImage (which marks that one asset failed), never another exception (which would stop the worker's
whole batch)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from media_analysis.hashing import UnreadableImage, compute_hashes
from tests.fuzzing import edited


def _pictures() -> dict[str, bytes]:
    """One small picture of every kind hashing handles specially."""
    rng = np.random.default_rng(3)
    rgb = Image.fromarray(rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8))
    out: dict[str, bytes] = {}

    def save(name: str, image: Image.Image, **options: object) -> None:
        buffer = io.BytesIO()
        image.save(buffer, **options)
        out[name] = buffer.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: EXIF orientation is applied before hashing
    save("jpeg-exif", rgb, format="JPEG", quality=80, exif=exif)
    save("jpeg-cmyk", rgb.convert("CMYK"), format="JPEG")
    save("png-alpha", rgb.convert("RGBA"), format="PNG")
    save("png-16bit", Image.fromarray(rng.integers(0, 65535, size=(32, 32), dtype=np.uint16)), format="PNG")
    frames = [rgb.convert("P"), rgb.rotate(90).convert("P")]
    save("gif-animated", frames[0], format="GIF", save_all=True, append_images=frames[1:], transparency=0)
    save("webp-animated", rgb, format="WEBP", save_all=True, append_images=[rgb.rotate(180)])
    save("tiff", rgb, format="TIFF")
    save("bmp", rgb, format="BMP")
    return out


PICTURES = _pictures()
EDITS = st.lists(st.tuples(
    st.sampled_from(["insert", "delete", "overwrite", "cut"]),
    st.floats(min_value=0, max_value=1),
    st.one_of(st.binary(min_size=1, max_size=12),
              st.sampled_from([b"\x00" * 8, b"\xff" * 8, b"\xff\xd8\xff\xe1", b"\xff\xd9", b"Exif\x00\x00MM\x00*",
                               b"\xff\xff\xff\x7f", b"IHDR\x7f\xff\xff\xff\x7f\xff\xff\xff"])),
), min_size=1, max_size=4)


@pytest.mark.parametrize("kind", sorted(PICTURES))
def test_every_picture_kind_hashes_before_it_is_damaged(tmp_path, kind):
    path = tmp_path / "picture"
    path.write_bytes(PICTURES[kind])
    hashes = compute_hashes(path, max_pixels=10**7)
    assert len(hashes.phash) == 64 and len(hashes.pdq) == 256


# Pillow warns about the damage it reads past (corrupt EXIF, tags larger than the file): expected here.
@pytest.mark.filterwarnings("ignore::UserWarning:PIL")
@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(PICTURES)), edits=EDITS)
def test_any_damaged_picture_hashes_or_is_refused_with_a_reason(tmp_path: Path, kind, edits):
    path = tmp_path / "picture"
    path.write_bytes(edited(PICTURES[kind], edits))
    try:
        hashes = compute_hashes(path, max_pixels=10**7)
    except UnreadableImage as exc:
        assert str(exc)
    else:
        assert len(hashes.phash) == 64 and len(hashes.pdq) == 256 and set(hashes.phash) <= {"0", "1"}
        assert hashes.width > 0 and hashes.height > 0
