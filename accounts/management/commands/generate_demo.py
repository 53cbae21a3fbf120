from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from accounts.demo import DemoSpec, generate_demo
from accounts.demo.generator import plan_demo


class Command(BaseCommand):
    help = "Write the demo campaign in Instaloader's on-disk format, with ground_truth.json."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("outdir", type=Path)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--scale", type=float, default=1.0, help="multiplies the background (10 → ≥100,000 posts)")
        parser.add_argument("--processes", type=int, default=None)

    def handle(self, *args: object, **options: object) -> None:
        outdir: Path = options["outdir"]  # type: ignore[assignment]
        scale = float(options["scale"])  # type: ignore[arg-type]
        if not 0 < scale <= 1000:
            raise CommandError("--scale must be between 0 and 1000")
        if outdir.exists() and any(outdir.iterdir()):
            raise CommandError(f"{outdir} is not empty; choose a new folder")
        spec = DemoSpec(seed=int(options["seed"]), scale=scale)  # type: ignore[arg-type]
        total = len(plan_demo(spec)[0])
        with tqdm(total=total, unit="account", desc="Generating demo", disable=not sys.stderr.isatty()) as bar:
            truth = generate_demo(outdir, spec, progress=bar.update, processes=options["processes"])  # type: ignore[arg-type]
        counts = truth["counts"]
        self.stdout.write(
            f"Wrote {counts['accounts']} accounts, {counts['posts']} posts and {counts['images']} images to {outdir} "
            f"(seed {spec.seed}, scale {spec.scale}); ground truth in {outdir / 'ground_truth.json'}."
        )
