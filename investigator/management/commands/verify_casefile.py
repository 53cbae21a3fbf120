from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from investigator.casefile.signing import SigningKeyError, public_key_load
from investigator.casefile.verify import case_file_verify


class Command(BaseCommand):
    help = "Check a case file: every file's SHA-256, nothing added or removed, the audit chain, the manifest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--public-key", type=Path, help="The exporter's Ed25519 public key (PEM): the manifest must "
                            "carry its valid signature. Default: this instance's CASEFILE_SIGNING_KEY, when set")

    def handle(self, *args: object, **options: object) -> None:
        key_path = options["public_key"] or (Path(settings.CASEFILE_SIGNING_KEY) if settings.CASEFILE_SIGNING_KEY else None)
        try:
            public_key = public_key_load(key_path) if key_path else None
        except (OSError, SigningKeyError) as exc:
            raise CommandError(str(exc)) from exc
        result = case_file_verify(options["file"], public_key=public_key)  # type: ignore[arg-type]
        for problem in result.problems:
            self.stdout.write(f"CHANGED  {problem}")
        if result.manifest_origin:
            self.stdout.write(result.manifest_origin)
        if result.signature:
            self.stdout.write(result.signature)
        if not result.ok:
            raise CommandError(f"{len(result.problems)} problem(s): this case file is not as it was exported")
        self.stdout.write(f"OK: {result.checked_files} files and {result.audit_records} audit records verified.")
