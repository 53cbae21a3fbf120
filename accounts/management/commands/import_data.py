from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from accounts.importers import READERS
from accounts.models import ImportRun
from accounts.selectors import import_run_problems_csv
from accounts.services import import_paths


class Command(BaseCommand):
    help = "Import platform exports (files, folders or .zip archives) into a dataset; one ImportRun per call."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--format", default="auto", choices=["auto", *sorted(READERS)],
                            help="the export's format; auto guesses it from the content")
        parser.add_argument("--dataset", default="default", help="dataset name (created if new)")
        parser.add_argument("--json", action="store_true",
                            help="print the ImportRun summary as JSON (with the first 1,000 problems)")
        parser.add_argument("--report", type=Path, metavar="FILE.csv",
                            help="write every rejected row and warning to this CSV file")

    def handle(self, *args: object, **options: object) -> None:
        paths: list[Path] = options["paths"]  # type: ignore[assignment]
        for path in paths:
            if not path.exists():
                raise CommandError(f"{path} does not exist")
        report_path: Path | None = options["report"]  # type: ignore[assignment]
        if report_path is not None and not report_path.parent.is_dir():
            raise CommandError(f"cannot write the report to {report_path}: no such folder")  # before the import, not after
        started = time.monotonic()
        show_bar = sys.stderr.isatty() and not options["json"]
        checking_bar = tqdm(unit="file", desc="Reading the files for their SHA-256", disable=not show_bar, leave=False)

        def checked(done: int, total: int) -> None:
            checking_bar.total = total
            checking_bar.update(done - checking_bar.n)
            if done == total:
                checking_bar.close()  # gone from the terminal; the rows' bar follows

        with checking_bar, tqdm(unit="item", desc="Importing", disable=not show_bar) as bar:
            def set_total(total: int) -> None:
                bar.total = total
                bar.refresh()

            try:
                run = import_paths(dataset_name=str(options["dataset"]), format=str(options["format"]), paths=paths,
                                   user=None, progress_total=set_total, progress=bar.update, checking=checked)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        summary = {
            "import_run": run.pk,
            "dataset": run.dataset.name,
            "format": run.format,
            "status": run.status,
            "read": run.read_count,
            "created": run.created_count,
            "updated": run.updated_count,
            "rejected": run.rejected_count,
            "media": run.media_count,
            "seconds": round(time.monotonic() - started, 2),
            "source_sha256": run.source_sha256,
            "sources": run.sources,
            "problems": [
                {"file": r.file, "line": r.line, "column": r.column, "reason": r.reason, "kept": r.kept}
                for r in run.rejections.all()[:1000]
            ],
            "problem_count": run.rejections.count(),
        }
        if report_path is not None:
            with report_path.open("w", encoding="utf-8", newline="") as report:
                report.writelines(import_run_problems_csv(run=run))
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2, default=str))
        else:
            self.print_report(run, summary, written=report_path)
        if run.status == "failed":
            raise CommandError(f"import run {run.pk} failed: {run.error}")

    def print_report(self, run: ImportRun, summary: dict, *, written: Path | None) -> None:
        self.stdout.write(
            f"Import run {run.pk} ({run.status}) into {run.dataset.name!r}: {run.read_count} read, {run.created_count} created, "
            f"{run.updated_count} updated, {run.rejected_count} rejected, {run.media_count} media files "
            f"in {summary['seconds']} s."
        )
        for problem in summary["problems"][:50]:
            where = problem["file"] + (f":{problem['line']}" if problem["line"] else "")
            label = "warning" if problem["kept"] else "rejected"
            self.stdout.write(f"  {label}: {where}: {problem['reason']}")
        if summary["problem_count"] > 50:
            self.stdout.write(f"  … and {summary['problem_count'] - 50} more problems"
                              + (f" (all of them in {written})" if written else "; --report FILE.csv writes every one"))
