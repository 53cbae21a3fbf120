from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from media_analysis.services import MediaRejected, known_sources_add


class Command(BaseCommand):
    help = "Add pictures known to come from elsewhere (stolen portraits, stock photos) to the known-source bank."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path, help="image files or folders of them")
        parser.add_argument("--label", required=True, help="where these pictures come from")
        parser.add_argument("--note", default="")

    def handle(self, *args: object, **options: object) -> None:
        files: list[Path] = []
        for path in options["paths"]:  # type: ignore[union-attr]
            if path.is_dir():
                files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
            elif path.is_file():
                files.append(path)
            else:
                raise CommandError(f"{path} does not exist")
        try:
            assets = known_sources_add(paths=files, label=str(options["label"]), note=str(options["note"]))
        except MediaRejected as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Known-source bank: {len(assets)} pictures added under {options['label']!r}; "
                          "they are matched once hashed (make run's worker, or hash_media --wait).")
