"""Settings for Investigator. Every value comes from the environment (see .env.example)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from investigator.env import database_from_url, env_bool, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("INVESTIGATOR_VAR_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    configured = env_str("SECRET_KEY")
    if configured:
        if len(configured) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
        return configured
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        # Written once, readable by the owner only; every process of this install shares it.
        key_file.touch(mode=0o600)
        key_file.write_text(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_results",
    "investigator",
    "accounts",
    "media_analysis",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "investigator.middleware.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a lockout raised during login into the lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # Counts failed logins and refuses further attempts once the limit is reached.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "investigator.urls"
WSGI_APPLICATION = "investigator.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "investigator.context_processors.roles",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# DATABASE_URL selects an external PostgreSQL (with pgvector >= 0.7). Unset: the
# embedded PostgreSQL 18 + pgvector server under var/pgdata, started on demand.
EMBEDDED_POSTGRES_DIR = Path(env_str("EMBEDDED_POSTGRES_DIR", str(VAR_DIR / "pgdata")))
_database_url = env_url("DATABASE_URL", schemes={"postgres", "postgresql"})
if _database_url:
    DATABASES = {"default": database_from_url(_database_url)}
    if env_str("INVESTIGATOR_DB_NAME"):
        DATABASES["default"]["NAME"] = env_str("INVESTIGATOR_DB_NAME")
else:
    DATABASES = {
        "default": {
            "ENGINE": "investigator.db_embedded",
            "NAME": env_str("INVESTIGATOR_DB_NAME", "investigator"),
            "USER": "postgres",
        }
    }
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60, minimum=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["TEST"] = {"NAME": env_str("INVESTIGATOR_TEST_DB_NAME", "test_investigator")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PGVECTOR_MIN_VERSION = (0, 7, 0)

# --- Auth ---------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Internationalisation -------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Files ---------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise expects it before collectstatic has run
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
# Uploaded import files wait here for a worker (and stay as the import's source of record).
UPLOAD_ROOT = Path(env_str("UPLOAD_ROOT", str(VAR_DIR / "uploads")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Larger uploads stream to disk beside UPLOAD_ROOT, not to /tmp (often a small RAM-backed tmpfs, where a
# multi-gigabyte export would not fit): on one file system, keeping the upload is then a rename, not a copy.
FILE_UPLOAD_TEMP_DIR = env_str("FILE_UPLOAD_TEMP_DIR", str(UPLOAD_ROOT.parent / "upload-tmp"))
Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)

# --- Security headers -------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Login throttling: after AXES_FAILURE_LIMIT wrong passwords for one username from one address,
# that pair is locked out for LOGIN_LOCKOUT_MINUTES.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

# --- Celery ----------------------------------------------------------------------
# CELERY_BROKER_URL selects a real broker (redis:// or amqp://). Unset: kombu's
# filesystem transport in var/broker, which needs no service at all; workers on
# the same machine share the folder. See README "Task queue".
CELERY_BROKER_URL = env_url(
    "CELERY_BROKER_URL", schemes={"redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem"}
) or "filesystem://localhost/"
CELERY_BROKER_DIR = Path(env_str("CELERY_BROKER_DIR", str(VAR_DIR / "broker")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_DIR.mkdir(parents=True, exist_ok=True)
    for _sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / _sub).mkdir(exist_ok=True)
    # store_processed: a worker claims a message by renaming it into processed/, which
    # is atomic on one filesystem, so two workers never both take it (the default moves
    # it to the system temp dir, possibly another filesystem, where the move is a copy).
    # `manage.py serve` prunes processed/ at start.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": True,
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "investigator")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Imports ---------------------------------------------------------------------------
# Case files built from the case page wait here for download, for EXPORT_TTL_HOURS.
EXPORT_ROOT = Path(env_str("EXPORT_ROOT", str(VAR_DIR / "exports")))
EXPORT_TTL_HOURS = env_int("EXPORT_TTL_HOURS", 24, minimum=1, maximum=24 * 90)
# An Ed25519 private key (PEM) that signs every case file's manifest (`manage.py casefile_keygen PATH` makes one).
# Unset: case files are not signed.
CASEFILE_SIGNING_KEY = env_str("CASEFILE_SIGNING_KEY", "")
if CASEFILE_SIGNING_KEY and not Path(CASEFILE_SIGNING_KEY).is_file():
    raise ImproperlyConfigured(f"CASEFILE_SIGNING_KEY={CASEFILE_SIGNING_KEY}: no such file")
# Four eyes: a reviewer may not decide on accounts in a case they built, unless this is set.
REVIEW_ALLOW_OWN_CASES = env_bool("REVIEW_ALLOW_OWN_CASES", False)
# Database connections storing an import's posts side by side (each batch in its own transaction).
IMPORT_LOAD_CONNECTIONS = env_int("IMPORT_LOAD_CONNECTIONS", 2, minimum=1)
IMPORT_MAX_UNZIPPED_BYTES = env_int("IMPORT_MAX_UNZIPPED_BYTES", 20 * 1024**3, minimum=1024**2)

# --- Coordination detection -------------------------------------------------------------
# A queued detection waits for imports into its dataset to finish and, with image signals, for the dataset's pictures
# to be hashed, looking every DETECTION_WAIT_POLL_SECONDS; once nothing has moved (no import batch stored, no picture
# hashed) for DETECTION_WAIT_STALL_SECONDS it starts anyway, and says how many pictures it left out.
DETECTION_WAIT_POLL_SECONDS = env_int("DETECTION_WAIT_POLL_SECONDS", 5, minimum=1, maximum=600)
DETECTION_WAIT_STALL_SECONDS = env_int("DETECTION_WAIT_STALL_SECONDS", 900, minimum=0, maximum=7 * 24 * 3600)

# --- Media analysis ------------------------------------------------------------------
MEDIA_HASH_BATCH_SIZE = env_int("MEDIA_HASH_BATCH_SIZE", 200, minimum=1, maximum=5000)
MEDIA_MAX_IMAGE_PIXELS = env_int("MEDIA_MAX_IMAGE_PIXELS", 64_000_000, minimum=1_000_000)
MEDIA_MAX_FILE_BYTES = env_int("MEDIA_MAX_FILE_BYTES", 50 * 1024 * 1024, minimum=1024)
PDQ_MIN_QUALITY = env_int("PDQ_MIN_QUALITY", 50, minimum=0, maximum=100)
# PDQ's authors call two hashes the same picture at distance ≤ 31 of 256 bits.
PDQ_MATCH_DISTANCE = env_int("PDQ_MATCH_DISTANCE", 31, minimum=0, maximum=128)
# Two pictures are copies when their 64-bit pHashes differ in at most this many bits (or their trusted PDQs match).
PHASH_MATCH_DISTANCE = env_int("PHASH_MATCH_DISTANCE", 10, minimum=0, maximum=32)
# The same for the pHash of the central 70% of each picture (crops, banners and captions along the edges). 28
# relies on the keypoint check below for its precision: without the check, 26 is the better choice.
CENTRE_MATCH_DISTANCE = env_int("CENTRE_MATCH_DISTANCE", 28, minimum=0, maximum=64)
# A picture with a caption banner along one edge is also compared with its central region moved away from the
# banner (a crop of the other edge moved its centre); such a guess must come within this many bits (at most
# CENTRE_MATCH_DISTANCE).
CENTRE_SHIFTED_MATCH_DISTANCE = env_int("CENTRE_SHIFTED_MATCH_DISTANCE", 24, minimum=0, maximum=64)
# A pair matched by the central region alone (no other signature agrees) must also share at least this many
# keypoints under a copy's transform (media_analysis.keypoints); 0 turns the check off.
CENTRE_CONFIRM_KEYPOINTS = env_int("CENTRE_CONFIRM_KEYPOINTS", 12, minimum=0, maximum=1000)
# Whole-picture pHash matches farther than this many bits (and within PHASH_MATCH_DISTANCE) get that check too.
PHASH_CONFIRM_BEYOND = env_int("PHASH_CONFIRM_BEYOND", 6, minimum=0, maximum=64)
# Image lookups scan an exact copy of the hash columns held in each process (about 80 bytes per picture: the
# pHash, central-region and PDQ words and an id beside each, so 80 MB at a million) up to this many stored
# pictures, and use the HNSW indexes beyond (media_analysis.hash_scan).
MEDIA_SCAN_MAX_ROWS = env_int("MEDIA_SCAN_MAX_ROWS", 5_000_000, minimum=0)
# Each web worker reads that copy as it starts (investigator/gunicorn.py) rather than in the first lookup's
# request (about 5 s at a million pictures).
MEDIA_LOOKUP_WARM = env_bool("MEDIA_LOOKUP_WARM", True)

# --- Web server (manage.py serve) -------------------------------------------------------
SERVE_BIND = env_str("INVESTIGATOR_BIND", "127.0.0.1:8000")
SERVE_WEB_WORKERS = env_int("WEB_CONCURRENCY", 3, minimum=1, maximum=64)
SERVE_CELERY_CONCURRENCY = env_int("CELERY_CONCURRENCY", 2, minimum=1, maximum=64)

# --- REST framework ---------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first, so an unauthenticated call gets 401 with "WWW-Authenticate: Token", not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Each view names its role (investigator.permissions); this is the floor for anything that does not.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "investigator.rest.Pages",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "investigator.rest.exception_handler",
    # JSON only: the docs page (/api/docs/) is the browsable view, and DRF's own HTML pages carry inline
    # scripts the Content-Security-Policy refuses.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Investigator API",
    "DESCRIPTION": (
        "Accounts, posts, pictures, imports, detection runs, clusters, cases, review decisions and case files. "
        "Authenticate with a session or `Authorization: Token <key>` (manage.py drf_create_token USER). "
        "The same roles as the pages: investigators read and build cases, reviewers decide, leads assign and export."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": "/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page's scripts and styles come from the drf-spectacular-sidecar wheel, served as our own static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "accounts.models.JobStatus",
        "CaseStatusEnum": "investigator.models.Case.Status",
        "ReviewStatusEnum": "accounts.models.ReviewStatus",
        "DecisionStateEnum": "investigator.models.ReviewDecision.State",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django-axes logs every login at INFO; lockouts are warnings.
    "loggers": {"embedded_postgres": {"level": "WARNING"}, "axes": {"level": "WARNING"},
                "weasyprint": {"level": "ERROR"}, "fontTools": {"level": "WARNING"},
                "faiss.loader": {"level": "WARNING"}},
}
