"""Test settings: the real settings, with a private broker folder, media root and queue per run.

The database is the same real PostgreSQL (embedded unless DATABASE_URL is set);
pytest-django creates and drops its test database on it.
"""

import os
import tempfile
from pathlib import Path

_RUN_DIR = Path(tempfile.mkdtemp(prefix="investigator-tests-"))
os.environ.setdefault("CELERY_BROKER_DIR", str(_RUN_DIR / "broker"))
os.environ.setdefault("MEDIA_ROOT", str(_RUN_DIR / "media"))
os.environ.setdefault("UPLOAD_ROOT", str(_RUN_DIR / "uploads"))
os.environ.setdefault("EXPORT_ROOT", str(_RUN_DIR / "exports"))
os.environ.setdefault("CELERY_QUEUE", f"investigator-test-{os.getpid()}")
os.environ["INVESTIGATOR_TEST_RUN_DIR"] = str(_RUN_DIR)

from investigator.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests only
DETECTION_WAIT_POLL_SECONDS = 1  # a waiting detection (tests/accounts/test_detection_waits.py) looks again sooner
