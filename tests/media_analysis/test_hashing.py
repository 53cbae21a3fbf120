"""Hashing real image files of every awkward kind, and through a real worker."""

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from media_analysis.hashing import UnreadableImage, compute_hashes
from media_analysis.models import MediaAsset
from media_analysis.services import media_assets_register, media_file_store, media_hash_batch, media_hash_claim

MAX_PIXELS = 64_000_000


def _photo(size: int = 256) -> Image.Image:
    import skimage.data

    return Image.fromarray(skimage.data.astronaut()).resize((size, size))


def _save(image: Image.Image, path: Path, **kwargs: object) -> Path:
    image.save(path, **kwargs)
    return path


def test_hash_shapes_and_quality(tmp_path):
    hashes = compute_hashes(_save(_photo(), tmp_path / "a.jpg", quality=90), max_pixels=MAX_PIXELS)
    assert len(hashes.phash) == len(hashes.dhash) == 64 and set(hashes.phash) <= {"0", "1"}
    assert len(hashes.pdq) == 256
    assert hashes.pdq_quality >= 50
    assert (hashes.width, hashes.height, hashes.format) == (256, 256, "JPEG")


def _distance(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b))


def test_exif_orientation_is_applied_before_hashing(tmp_path):
    upright = compute_hashes(_save(_photo(), tmp_path / "up.png"), max_pixels=MAX_PIXELS)
    # Stored rotated, with an EXIF tag telling viewers to rotate it back.
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    rotated_file = _save(_photo().rotate(90, expand=True), tmp_path / "rot.jpg", exif=exif, quality=95)
    rotated = compute_hashes(rotated_file, max_pixels=MAX_PIXELS)
    assert _distance(upright.phash, rotated.phash) <= 6


@pytest.mark.parametrize("mode", ["CMYK", "P", "L", "RGBA", "I;16"])
def test_unusual_modes_hash_like_the_original(tmp_path, mode):
    original = compute_hashes(_save(_photo(), tmp_path / "o.png"), max_pixels=MAX_PIXELS)
    photo = _photo()
    if mode == "I;16":
        array = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
        converted = Image.fromarray(array)  # uint16 → mode I;16
        path = _save(converted, tmp_path / "x.png")
        expected_distance = 20  # grey, so colour information is gone
    else:
        converted = photo.convert(mode)
        path = _save(converted, tmp_path / ("x.jpg" if mode == "CMYK" else "x.png"))
        expected_distance = 12
    hashes = compute_hashes(path, max_pixels=MAX_PIXELS)
    assert _distance(original.phash, hashes.phash) <= expected_distance


def test_animated_gif_uses_first_frame(tmp_path):
    frames = [_photo(128), Image.new("RGB", (128, 128), "red")]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    first = compute_hashes(_save(frames[0], tmp_path / "first.png"), max_pixels=MAX_PIXELS)
    assert _distance(compute_hashes(path, max_pixels=MAX_PIXELS).phash, first.phash) <= 12


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an image"),
        (b"<html><script>alert(1)</script></html>", "not an image"),
    ],
)
def test_non_images_are_refused_clearly(tmp_path, content, message):
    path = tmp_path / "fake.jpg"
    path.write_bytes(content)
    with pytest.raises(UnreadableImage, match=message):
        compute_hashes(path, max_pixels=MAX_PIXELS)


@pytest.mark.parametrize("library_switch", [False, True], ids=["default", "truncated-loading-on"])
def test_truncated_image_is_refused(tmp_path, monkeypatch, library_switch):
    # Some libraries (WeasyPrint among them) turn Pillow's truncated-image loading on for the whole process.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", library_switch)
    buffer = io.BytesIO()
    _photo().save(buffer, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(UnreadableImage, match="damaged or truncated"):
        compute_hashes(path, max_pixels=MAX_PIXELS)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is library_switch


def test_decompression_bomb_is_refused(tmp_path):
    path = _save(Image.new("1", (20_000, 20_000)), tmp_path / "bomb.png")  # a few KiB, 400 megapixels
    assert path.stat().st_size < 200_000
    with pytest.raises(UnreadableImage, match="over the limit|decompression bomb"):
        compute_hashes(path, max_pixels=MAX_PIXELS)


@pytest.mark.django_db
def test_claim_is_exclusive_and_broken_files_fail_only_themselves(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    good = _save(_photo(), tmp_path / "good.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"GIF89a-not-really")
    stored = [(media_file_store(path=p), p.name) for p in (good, bad)]
    assets = media_assets_register(files=stored)
    assert len(assets) == 2
    first = media_hash_claim(limit=1)
    second = media_hash_claim(limit=5)
    assert len(first) == 1 and len(second) == 1 and set(first).isdisjoint(second)
    assert media_hash_claim(limit=5) == []
    assert media_hash_batch(asset_ids=first + second) == {"done": 1, "failed": 1}
    failed = MediaAsset.objects.get(hash_state="failed")
    assert failed.original_name == "bad.jpg" and "not an image" in failed.hash_error
    done = MediaAsset.objects.get(hash_state="done")
    assert done.width == 256 and done.pdq_quality >= 50


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
# The code under test queues through the configured broker: the default one in this run.
@pytest.mark.parametrize("celery_worker_process", ["filesystem"], indirect=True)
def test_imported_media_is_hashed_by_a_real_worker(celery_worker_process, tmp_path):
    """Storing media queues hashing on commit; a worker process claims and hashes it."""
    paths = [_save(_photo(64 + 16 * i), tmp_path / f"p{i}.jpg") for i in range(5)]
    media_assets_register(files=[(media_file_store(path=p), p.name) for p in paths])  # autocommit: queued now
    deadline = time.monotonic() + 90
    while MediaAsset.objects.exclude(hash_state="done").exists():
        assert time.monotonic() < deadline, celery_worker_process.log.read_text()[-3000:]
        time.sleep(0.5)
    assert MediaAsset.objects.filter(hash_state="done", phash__isnull=False, pdq__isnull=False).count() == 5


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("celery_worker_process", ["filesystem"], indirect=True)
def test_hash_media_command_waits_for_the_workers(celery_worker_process, tmp_path, capsys):
    from django.core.management import call_command

    from media_analysis.matching import SIGNATURE_VERSION

    # One picture hashed before the outer windows existed: the workers hash it again, after the new ones.
    earlier = _save(_photo(80), tmp_path / "earlier.png")
    media_assets_register(files=[(media_file_store(path=earlier), earlier.name)])
    media_hash_batch(asset_ids=media_hash_claim(limit=10))
    current = MediaAsset.objects.get().signature
    MediaAsset.objects.update(signature_version=SIGNATURE_VERSION - 1,
                              signature={k: v for k, v in current.items() if k not in {"outer", "outer_flip"}})
    bad = tmp_path / "zero.jpg"
    bad.write_bytes(b"\xff\xd8\xff")  # a JPEG header and nothing else
    paths = [_save(_photo(96), tmp_path / "ok.png"), bad]
    media_assets_register(files=[(media_file_store(path=p), p.name) for p in paths])
    call_command("hash_media", wait=True, timeout=90)
    out = capsys.readouterr().out
    assert "for 2 pending images and 1 to hash again with the newer signature" in out
    assert "Done: 2 hashed, 1 could not be read." in out
    again = MediaAsset.objects.get(original_name="earlier.png")
    assert (again.signature_version, again.signature) == (SIGNATURE_VERSION, current)


def test_storing_the_same_content_at_once_from_many_imports_gives_one_whole_file(tmp_path, settings):
    """Two imports that bring the same picture store it side by side. Each writes its own partial file and
    renames it into place, so neither can move the other's half-written copy into storage, or fail because
    the other already moved it."""
    import threading

    settings.MEDIA_ROOT = str(tmp_path / "media")
    content = np.random.default_rng(3).integers(0, 256, size=8 * 1024 * 1024, dtype=np.uint8).tobytes()
    sources = []
    for n in range(6):
        sources.append(tmp_path / f"upload-{n}" / "picture.jpg")
        sources[-1].parent.mkdir()
        sources[-1].write_bytes(content)
    start, stored, errors = threading.Barrier(len(sources)), [], []

    def store(path: Path) -> None:
        start.wait()
        try:
            stored.append(media_file_store(path=path))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=store, args=(path,)) for path in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len({s.relative_path for s in stored}) == 1
    target = Path(settings.MEDIA_ROOT) / stored[0].relative_path
    assert target.read_bytes() == content
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no partial file left behind
