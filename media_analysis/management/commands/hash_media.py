from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandParser
from tqdm import tqdm

from media_analysis.selectors import media_hash_counts
from media_analysis.services import media_hash_requeue_stale, media_hash_retry_failed, media_hashing_schedule


class Command(BaseCommand):
    help = ("Queue hashing of every pending image on the Celery workers, and hashing again of every image hashed "
            "with an older signature; --retry-failed tries again the images that could not be hashed; --wait shows "
            "progress until done.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", action="store_true")
        parser.add_argument("--retry-failed", action="store_true",
                            help="try again every image that could not be hashed (say, after restoring its file)")
        parser.add_argument("--timeout", type=float, default=3600.0)

    def handle(self, *args: object, **options: object) -> None:
        requeued = media_hash_requeue_stale()
        if options["retry_failed"]:
            failed, rehash = media_hash_retry_failed()
            self.stdout.write(f"Trying again {failed} images that could not be hashed and {rehash} that could not be "
                              "hashed again.")
        counts = media_hash_counts()
        batches = media_hashing_schedule(count=counts.pending + counts.outdated)
        self.stdout.write(f"Queued {batches} batches for {counts.pending} pending images and {counts.outdated} to hash "
                          f"again with the newer signature ({requeued} stale claims returned).")
        if not options["wait"]:
            return
        deadline = time.monotonic() + float(options["timeout"])  # type: ignore[arg-type]
        with tqdm(total=counts.total, unit="image", desc="Hashing", disable=not sys.stderr.isatty()) as bar:
            while True:
                counts = media_hash_counts()
                bar.total = counts.total  # an import may add pictures meanwhile
                bar.update(counts.finished - bar.n)
                if counts.finished == counts.total:
                    break
                if time.monotonic() > deadline:
                    self.stderr.write("Timed out; is a worker running? (make run starts one)")
                    sys.exit(1)
                time.sleep(1)
        self.stdout.write(f"Done: {counts.done} hashed, {counts.failed} could not be read.")
