"""gunicorn settings for the web tier. `manage.py serve` passes them; when running gunicorn yourself, pass them
too: `gunicorn -c python:investigator.gunicorn investigator.wsgi:application`."""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("investigator.web")


def lookups_warm_in_background() -> threading.Thread:
    """Read the in-memory copy of the hashes that image lookups scan (media_analysis.selectors) in a thread of
    this process, so that the first lookup answers at once. A lookup arriving before it is done waits for it
    rather than reading a second copy."""

    def warm() -> None:
        from media_analysis.selectors import media_lookups_warm

        started = time.monotonic()
        try:
            pictures = media_lookups_warm()
        except Exception:  # the first lookup then reads the copy itself, as it would without this
            logger.exception("Could not read the hashes for image lookups ahead of time")
            return
        logger.info("Image lookups ready: %d pictures in memory (%.1f s)", pictures, time.monotonic() - started)

    thread = threading.Thread(target=warm, name="lookups-warm", daemon=True)
    thread.start()
    return thread


def post_worker_init(worker: object) -> None:
    """In each worker, once the application is loaded: never in a master that forks afterwards (with --preload),
    whose threads would not survive the fork."""
    from django.conf import settings

    if settings.MEDIA_LOOKUP_WARM:
        lookups_warm_in_background()
