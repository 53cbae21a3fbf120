from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from investigator.casefile.verify import case_file_verify


class Command(BaseCommand):
    help = "Check a case file: every file's SHA-256, nothing added or removed, the audit chain, the manifest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: object, **options: object) -> None:
        result = case_file_verify(options["file"])  # type: ignore[arg-type]
        for problem in result.problems:
            self.stdout.write(f"CHANGED  {problem}")
        if result.manifest_origin:
            self.stdout.write(result.manifest_origin)
        if not result.ok:
            raise CommandError(f"{len(result.problems)} problem(s): this case file is not as it was exported")
        self.stdout.write(f"OK: {result.checked_files} files and {result.audit_records} audit records verified.")
