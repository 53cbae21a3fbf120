from pathlib import Path

import pytest

from accounts.demo import DemoSpec, generate_demo


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory) -> tuple[Path, dict]:  # noqa: ANN001
    """A small demo campaign (the full core, a reduced background), generated once per test run."""
    outdir = tmp_path_factory.mktemp("demo") / "campaign"
    truth = generate_demo(outdir, DemoSpec(seed=11, scale=0.03), processes=2)
    return outdir, truth
