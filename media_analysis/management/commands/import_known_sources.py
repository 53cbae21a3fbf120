from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from media_analysis.hashing import UnreadableImage, load_rgb, picture_paths
from media_analysis.services import MediaRejected, known_sources_add


class Command(BaseCommand):
    help = ("Add pictures known to come from elsewhere (stolen portraits, stock photos) to the known-source bank. "
            "A folder stands for the pictures in it and its subfolders. A file that is not a readable picture is "
            "reported and left out, the others are added, and the command then exits with status 1.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, help="image files or folders of them")
        parser.add_argument("--label", required=True, help="where these pictures come from")
        parser.add_argument("--note", default="")

    def handle(self, *args: object, **options: object) -> None:
        readable: list[Path] = []
        refused: list[str] = []
        for path in picture_paths(options["paths"]):  # type: ignore[arg-type]
            if path.is_dir():
                refused.append(f"{path}: a folder with no pictures in it")
                continue
            try:
                if path.is_file() and path.stat().st_size > settings.MEDIA_MAX_FILE_BYTES:
                    raise UnreadableImage("larger than the media size limit")
                load_rgb(path, max_pixels=settings.MEDIA_MAX_IMAGE_PIXELS)  # a bank entry that can never match helps no one
            except UnreadableImage as exc:
                refused.append(f"{path}: {exc}")
                continue
            readable.append(path)
        added = []
        if readable:
            try:
                added = known_sources_add(paths=readable, label=str(options["label"]), note=str(options["note"]))
            except MediaRejected as exc:
                raise CommandError(str(exc)) from exc
        for line in refused:
            self.stderr.write(line)
        self.stdout.write(f"Known-source bank: {len(added)} picture{'' if len(added) == 1 else 's'} added under "
                          f"{options['label']!r}; "
                          "they are matched once hashed (make run's worker, or hash_media --wait).")
        if refused:
            raise CommandError(f"{len(refused)} of {len(refused) + len(readable)} files could not be added")
