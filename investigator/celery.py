"""The Celery application; workers run as ``celery -A investigator worker``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "investigator.settings")

app = Celery("investigator")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
