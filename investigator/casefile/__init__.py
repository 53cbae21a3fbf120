"""Case files: a self-contained, verifiable ZIP of a case's evidence for hand-off (export.py), and the
check that proves it unaltered (verify.py)."""

SCHEMA = "investigator.casefile/1"
