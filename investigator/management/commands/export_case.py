from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from investigator.casefile.export import case_file_build
from investigator.models import Case


class Command(BaseCommand):
    help = "Export a case as a self-contained, verifiable case file (ZIP). Leads only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("case_id", type=int)
        parser.add_argument("out", type=Path)
        parser.add_argument("--as", dest="username", required=True, help="the lead exporting it (recorded and audited)")

    def handle(self, *args: object, **options: object) -> None:
        try:
            case = Case.objects.get(pk=options["case_id"])
            user = get_user_model().objects.get(username=options["username"], is_active=True)
        except (Case.DoesNotExist, get_user_model().DoesNotExist) as exc:
            raise CommandError(str(exc)) from exc
        out: Path = options["out"]  # type: ignore[assignment]
        with tqdm(total=1, unit="file", disable=not self.stdout.isatty(), desc="Exporting") as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            try:
                manifest = case_file_build(case=case, user=user, out=out, progress=progress)
            except PermissionDenied as exc:
                raise CommandError(str(exc)) from exc
        self.stdout.write(f"Wrote {out}: {len(manifest['files'])} files, "
                          + ", ".join(f"{n} {k}" for k, n in manifest["counts"].items()) + ".")
