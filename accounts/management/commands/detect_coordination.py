from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from accounts.coordination.exports import FORMATS, network_write
from accounts.coordination.services import (
    IMAGE_SIGNALS,
    SIGNAL_CHOICES,
    detection_run_create,
    detection_run_execute,
)
from accounts.models import Dataset, DetectionRun, JobStatus
from accounts.selectors import detection_pictures


class Command(BaseCommand):
    help = "Find coordinated account clusters in a dataset: a detection run on a Celery worker, with progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", help="dataset name (default: every post)")
        parser.add_argument("--signals", help=f"comma-separated, from: {', '.join(SIGNAL_CHOICES)} (default: all)")
        parser.add_argument("--window", type=int, help="seconds between two posts that count as together (default 600)")
        parser.add_argument("--json", type=Path, metavar="OUT", help="write the clusters and edges as JSON to OUT")
        parser.add_argument("--export", type=Path, action="append", default=[], metavar="FILE",
                            help=f"write the network to FILE ({', '.join(FORMATS)} by extension); repeatable")
        parser.add_argument("--here", action="store_true", help="run in this process instead of on a worker")
        parser.add_argument("--worker-timeout", type=float, default=60.0,
                            help="seconds to wait for a worker to pick the job up")

    def handle(self, *args: object, **options: object) -> None:
        dataset = None
        if options["dataset"]:
            dataset = Dataset.objects.filter(name=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"no dataset named {options['dataset']!r}")
        signals = [s.strip() for s in str(options["signals"]).split(",") if s.strip()] if options["signals"] else None
        for target in options["export"]:
            if target.suffix.lstrip(".").lower() not in FORMATS:
                raise CommandError(f"{target}: the export format comes from the extension ({', '.join(FORMATS)})")
        try:
            run = detection_run_create(dataset=dataset, signals=signals, window=options["window"],
                                       enqueue=not options["here"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["here"] and IMAGE_SIGNALS & set(run.signals):
            waiting = detection_pictures(dataset_id=run.dataset_id, waiting_only=True).waiting
            if waiting:
                self.stderr.write(self.style.WARNING(
                    f"{waiting} pictures are not hashed yet: the image signals leave them out. For complete evidence run "
                    "`python manage.py hash_media --wait` first, or leave out --here: a worker waits for them."))
        show_bar = sys.stderr.isatty()
        with tqdm(total=run.progress_total, unit="step", desc="Detecting", disable=not show_bar) as bar:
            if options["here"]:
                run = detection_run_execute(run=run, progress=lambda label: (bar.set_postfix_str(label), bar.update()))
            else:
                run = self.wait(run, bar, float(options["worker_timeout"]))
        if run.status != JobStatus.SUCCEEDED:
            raise CommandError(f"detection run {run.pk} failed: {run.error}")
        self.report(run)
        if options["json"]:
            options["json"].write_text(json.dumps(detection_run_document(run), indent=1, default=str))
            self.stdout.write(f"Clusters and edges written to {options['json']}")
        for target in options["export"]:
            network_write(run=run, path=target)
            self.stdout.write(f"Network written to {target}")

    def wait(self, run: DetectionRun, bar: tqdm, timeout: float) -> DetectionRun:
        started = time.monotonic()
        while True:
            run.refresh_from_db()
            bar.n = run.progress_done
            bar.refresh()
            if run.status in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                return run
            if run.stage and run.status == JobStatus.PENDING:
                bar.set_postfix_str(run.stage)  # a worker has it, and waits for an import or the hashing
            elif run.status == JobStatus.PENDING and time.monotonic() - started > timeout:
                raise CommandError(
                    f"no worker picked detection run {run.pk} up within {timeout:.0f} s: is `make run` (or a Celery "
                    "worker) running? It stays queued; or run again with --here to work in this process.")
            time.sleep(0.5)

    def report(self, run: DetectionRun) -> None:
        summary = run.summary
        self.stdout.write(f"Detection run {run.pk}: {summary['accounts']} accounts, {summary['edges']} evidence edges, "
                          f"{summary['clusters']} clusters ({summary['clustered_accounts']} accounts).")
        if pictures := summary.get("pictures"):
            left_out = [f"{pictures['waiting']} not hashed yet are left out"] if pictures["waiting"] else []
            left_out += [f"{pictures['unreadable']} could not be read"] if pictures["unreadable"] else []
            self.stdout.write(f"The image signals compared {pictures['hashed']} of {pictures['total']} pictures"
                              + (f"; {'; '.join(left_out)}." if left_out else "."))
        for cluster in run.clusters.all()[:20]:
            self.stdout.write(f"  [{cluster.score:.1f}] {cluster.label} ({cluster.size} accounts): {cluster.explanation}")


def detection_run_document(run: DetectionRun) -> dict:
    """The run, its clusters and its edges as plain data (the --json output)."""
    clusters = []
    for cluster in run.clusters.prefetch_related("members"):
        clusters.append({
            "id": cluster.pk, "label": cluster.label, "score": cluster.score, "size": cluster.size,
            "explanation": cluster.explanation, "signals": cluster.signal_breakdown, "timeline": cluster.timeline,
            "members": [{"id": a.pk, "platform_id": a.external_id, "handle": a.handle} for a in cluster.members.all()],
        })
    edges = [
        {"a": e.account_a_id, "b": e.account_b_id, "signal": e.signal, "weight": e.weight, "post_pairs": e.evidence,
         "explanation": e.explanation}
        for e in run.edges.order_by("id")
    ]
    return {"detection_run": run.pk, "dataset": run.dataset.name if run.dataset else None, "signals": run.signals,
            "parameters": run.parameters, "summary": run.summary, "clusters": clusters, "edges": edges}
