from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Platform
from accounts.watchlists import watchlist_import_file


class Command(BaseCommand):
    help = "Import a list of handles or platform ids (one per line, or the first CSV column) as a named watchlist."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("path", type=Path)
        parser.add_argument("--platform", default=None, help="platform slug; omit to match on every platform")
        parser.add_argument("--kind", choices=["auto", "handle", "id"], default="auto")

    def handle(self, *args: object, **options: object) -> None:
        path: Path = options["path"]  # type: ignore[assignment]
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        platform = options["platform"]
        if platform and not Platform.objects.filter(slug=platform).exists():
            raise CommandError(f"unknown platform {platform!r}")
        result = watchlist_import_file(name=str(options["name"]), path=path, platform=platform,  # type: ignore[arg-type]
                                       user=None, kind=str(options["kind"]))
        self.stdout.write(f"Watchlist {result.watchlist.name!r}: {result.added} added, {result.already_listed} already "
                          f"listed, {len(result.rejected)} rejected.")
        for problem in result.rejected[:50]:
            self.stdout.write(f"  rejected: line {problem.line}: {problem.reason}")
