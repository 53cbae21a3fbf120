from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from investigator.casefile.signing import key_fingerprint, key_pair_generate


class Command(BaseCommand):
    help = ("Make an Ed25519 key pair for signing case files: the private key at PATH (set CASEFILE_SIGNING_KEY to "
            "it) and the public key beside it as .pub.pem, to hand to recipients.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="Where to write the private key, e.g. var/casefile-signing.pem")

    def handle(self, *args: object, **options: object) -> None:
        path: Path = options["path"]  # type: ignore[assignment]
        try:
            key = key_pair_generate(path)
        except FileExistsError as exc:
            raise CommandError(f"{path} exists; a signing key is never overwritten") from exc
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc}") from exc
        public = path.with_name(path.name.removesuffix(".pem") + ".pub.pem")
        self.stdout.write(f"Private key: {path} (set CASEFILE_SIGNING_KEY={path})\nPublic key: {public}\n"
                          f"Fingerprint: {key_fingerprint(key.public_key())}")
