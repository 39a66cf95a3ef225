"""OneTimeShare settings.

Every knob comes from the environment (a `.env` file at the repository root is read when
present); `.env.sample` lists each one with its default. With nothing set, the service runs
on the embedded default: SQLite and files under `var/`, a local-memory cache.

Each variable is read by one of the readers in core/env.py (env.integer, env.rate, ...):
an empty value means the default, and a bad value stops start-up with a message that names
the variable. A test holds the variables read and .env.sample to each other.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from core import env

BASE_DIR = Path(__file__).resolve().parent.parent  # django_backend/
REPO_DIR = BASE_DIR.parent
VAR_DIR = REPO_DIR / "var"

env.read_env_file(REPO_DIR / ".env")

DEBUG = env.boolean("DJANGO_DEBUG", True)

SECRET_KEY = env.string("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
            '(generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))").'
        )
    # Development only: a fixed, clearly insecure key so that sessions survive restarts.
    SECRET_KEY = "django-insecure-development-key-do-not-use-in-production"  # noqa: S105

ALLOWED_HOSTS = env.string_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.string_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env.url("SITE_URL", ["http", "https"]).rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "ninja",
    "csp",
    "apps.common",
    "apps.accounts",
    "apps.shares",
    "apps.uploads",
]

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "shares:mine"
LOGOUT_REDIRECT_URL = "shares:upload"
# Accounts are optional: anyone may upload unless this is off.
ALLOW_ANONYMOUS_UPLOADS = env.boolean("ALLOW_ANONYMOUS_UPLOADS", True)
# Bytes of active shares one user may hold at once; 0 means no quota.
USER_QUOTA_BYTES = env.size("USER_QUOTA_BYTES", 0, minimum=0)
# A claim opens a download session: the file may be fetched again, in ranges (a browser's
# Resume, `curl -C -`), for this many seconds, at most DOWNLOAD_SESSION_MAX_REQUESTS at
# once and about twice the file's size in all.
DOWNLOAD_SESSION_TTL = env.integer("DOWNLOAD_SESSION_TTL", 3600, minimum=60, maximum=7 * 86400)
DOWNLOAD_SESSION_MAX_REQUESTS = env.integer(
    "DOWNLOAD_SESSION_MAX_REQUESTS", 4, minimum=1, maximum=32
)

MIDDLEWARE = [
    # Request counts and latencies by view for /metrics; the After half is the innermost.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # Outermost: HEAD gets the final headers of GET, without the body.
    "apps.common.middleware.HeadWithoutBodyMiddleware",
    "apps.common.middleware.RequestIDMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The language of the page: the switcher's cookie, else the browser's Accept-Language.
    # Django's place for it is after sessions, which it no longer reads (only a cookie and
    # a header): here, before the 413 answered below, every page speaks the reader's
    # language, and /api/ stays in English (apps.common.middleware.LocaleMiddleware).
    "apps.common.middleware.LocaleMiddleware",
    # Before CSRF and sessions: an oversized upload is answered 413 before anything
    # else reads the request body.
    "apps.shares.middleware.UploadLimitMiddleware",
    "apps.common.middleware.ApiErrorShapeMiddleware",
    # Service exceptions from any view become the error page (or JSON) they map to.
    "apps.common.middleware.ServiceErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite under var/ unless DATABASE_URL says otherwise.
DATABASES = {"default": env.database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
SUPPORTED_DATABASES = {"django.db.backends.postgresql", "django.db.backends.sqlite3"}
if DATABASES["default"]["ENGINE"] not in SUPPORTED_DATABASES:
    raise ImproperlyConfigured(
        "DATABASE_URL must be a postgres:// or sqlite:/// URL, "
        f"got one for {DATABASES['default']['ENGINE']!r}."
    )

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default must work from a fresh checkout: make the database's folder.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        # BEGIN IMMEDIATE takes SQLite's write lock when a transaction starts, so that two
        # writers queue on the busy timeout instead of failing with "database is locked"
        # when a read lock cannot be upgraded.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests use a file, not SQLite's shared in-memory database, whose table locks do not
    # honour the busy timeout and would make the concurrency tests meaningless.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.integer("DATABASE_CONN_MAX_AGE", 60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    # Fail fast when the server is unreachable, rather than hold a request (and readiness).
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis, when configured, is the cache (rate-limit counters) and the task broker.
REDIS_URL = env.url("REDIS_URL", ["redis", "rediss", "unix"])
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ots",
            "OPTIONS": {
                # The cache only holds rate-limit counters: if Redis is down, requests go
                # on (the limiter fails open) and the failure is logged.
                "IGNORE_EXCEPTIONS": True,
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
    DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The pages speak these languages (docs/translations.md: adding one); the API speaks English.
# URLs carry no language prefix: links people already hold keep working.
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("de", "Deutsch"),
    ("fr", "Français"),
    ("es", "Español"),
    ("nl", "Nederlands"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The switcher's choice, a year; scripts never read it.
LANGUAGE_COOKIE_AGE = 365 * 86400
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"

MEDIA_ROOT = env.path("MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = None  # uploads are never served as static files; downloads go through the claim.

STORAGE_BACKEND = env.choice("STORAGE_BACKEND", ["local", "s3"], "local")

STORAGES = {
    # FileSystemStorage stores under MEDIA_ROOT with FILE_UPLOAD_PERMISSIONS.
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if STORAGE_BACKEND == "s3":
    from boto3.s3.transfer import TransferConfig

    MIB = 1024**2
    AWS_STORAGE_BUCKET_NAME = env.string("AWS_STORAGE_BUCKET_NAME")
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured("AWS_STORAGE_BUCKET_NAME must be set when STORAGE_BACKEND=s3.")
    # Files larger than one part go up in parts of this size, two at a time: memory stays
    # bounded. S3 takes parts from 5 MiB to 5 GiB (and boto3 grows the part size by itself
    # when a file would need more than 10,000 parts).
    AWS_S3_MULTIPART_SIZE = env.size(
        "AWS_S3_MULTIPART_SIZE", 8 * MIB, minimum=5 * MIB, maximum=5 * 1024**3
    )
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            # Empty values fall back to boto3's own chain (environment, instance role).
            "access_key": env.string("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env.string("AWS_SECRET_ACCESS_KEY") or None,
            "region_name": env.string("AWS_S3_REGION_NAME") or None,
            # For S3-compatible stores: http://minio:9000 and addressing style "path".
            "endpoint_url": env.url("AWS_S3_ENDPOINT_URL", ["http", "https"]) or None,
            "addressing_style": (
                env.choice("AWS_S3_ADDRESSING_STYLE", ["auto", "virtual", "path"], "") or None
            ),
            "location": env.string("AWS_LOCATION"),
            "default_acl": None,  # private: the bucket's policy applies
            # Names are random: skip the existence check before every write.
            "file_overwrite": True,
            "transfer_config": TransferConfig(
                multipart_threshold=AWS_S3_MULTIPART_SIZE,
                multipart_chunksize=AWS_S3_MULTIPART_SIZE,
                max_concurrency=2,
            ),
        },
    }

# Uploads: every upload streams through our handler, which hashes it, counts it against
# MAX_UPLOAD_SIZE and always spools it to a temporary file (never to memory). 10 GiB by
# default: memory stays flat, storing is a rename, and tus resumes what a network drops
# (docs/benchmarks.md, "Upload paths"; .env.sample says more).
MAX_UPLOAD_SIZE = env.size("MAX_UPLOAD_SIZE", 10 * 1024**3)
FILE_UPLOAD_HANDLERS = ["apps.shares.uploads.ShareUploadHandler"]
# Where uploads spool. Empty: MEDIA_ROOT/.uploads, on the stored files' filesystem (so that
# storing an upload is a rename), made by the first upload (apps.shares.uploads.spool_dir).
# The service's own directory: the reconciler deletes what a killed upload left there.
FILE_UPLOAD_TEMP_DIR = env.string("FILE_UPLOAD_TEMP_DIR") or None
FILE_UPLOAD_PERMISSIONS = 0o600

DEFAULT_EXPIRES_IN = env.integer("DEFAULT_EXPIRES_IN", 86400, minimum=1)
MIN_EXPIRES_IN = env.integer("MIN_EXPIRES_IN", 60, minimum=1)
MAX_EXPIRES_IN = env.integer("MAX_EXPIRES_IN", 7 * 86400, minimum=1)
if not MIN_EXPIRES_IN <= DEFAULT_EXPIRES_IN <= MAX_EXPIRES_IN:
    raise ImproperlyConfigured(
        "DEFAULT_EXPIRES_IN must lie between MIN_EXPIRES_IN and MAX_EXPIRES_IN "
        f"(got {DEFAULT_EXPIRES_IN}, range {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN})."
    )
MAX_DOWNLOADS_LIMIT = 100

# Security headers. Share and manage pages override the referrer policy to no-referrer.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Behind a TLS-terminating proxy (nginx sets X-Forwarded-Proto). Production defaults are on
# whenever debug is off; each can be turned off for a plain-HTTP test setup.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.boolean("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env.boolean("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env.integer("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env.boolean("DJANGO_SECURE_HSTS_PRELOAD", False)
if not SECURE_HSTS_PRELOAD:
    # Joining the browsers' preload list is a one-way decision for the domain's owner,
    # not a default: the deploy check's reminder about it is silenced unless opted in.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]
# The readiness endpoint is probed over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]

# Content-Security-Policy (django-csp): no inline script or style anywhere; every script
# and stylesheet is a file served by the app itself (no CDN: closed networks work).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

LOG_LEVEL = env.choice("LOG_LEVEL", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # One line per event, key=value pairs a log collector parses.
        "line": {
            "format": "time=%(asctime)s level=%(levelname)s logger=%(name)s "
            "request_id=%(request_id)s msg=%(message)r"
        }
    },
    "filters": {
        "redact_tokens": {"()": "apps.common.logging.RedactTokensFilter"},
        "quiet": {"()": "apps.common.logging.QuietFilter"},
        "request_id": {"()": "log_request_id.filters.RequestIDFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": ["request_id", "redact_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Replace Django's own handlers so that every line passes the redacting filter.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # The development server logs every request path: only errors, redacted.
        "django.server": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # Django logs a request for a host not in ALLOWED_HOSTS as an error, and every
        # scanner on the internet sends them: one warning line each, never an admin mail.
        "django.security.DisallowedHost": {"filters": ["quiet"]},
    },
}

CSRF_FAILURE_VIEW = "apps.common.views.csrf_failure"

# Celery. Broker: CELERY_BROKER_URL, else REDIS_URL, else the filesystem under var/.
CELERY_BROKER_URL = env.string("CELERY_BROKER_URL") or REDIS_URL or "filesystem://localhost/"
CELERY_BROKER_DIR = VAR_DIR / "celery"
if CELERY_BROKER_URL.startswith("filesystem://"):
    (CELERY_BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Every countdown stays far below this; a task not acknowledged within it is
        # delivered again (tasks are idempotent).
        "visibility_timeout": 3600,
        "socket_connect_timeout": 1,
        "socket_timeout": 2,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 1
# After the broker failed a send, a web process sends no task for this many seconds (the
# periodic jobs catch up), so that a dead broker does not slow every request.
BROKER_RETRY_AFTER = env.integer("BROKER_RETRY_AFTER", 30, minimum=1, maximum=3600)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
PURGE_INTERVAL = env.integer("PURGE_INTERVAL", 60, minimum=1)
RECONCILE_INTERVAL = env.integer("RECONCILE_INTERVAL", 3600, minimum=60)
CELERY_BEAT_SCHEDULE = {
    "purge-shares": {"task": "apps.shares.tasks.purge_shares", "schedule": PURGE_INTERVAL},
    "expire-uploads": {"task": "apps.uploads.tasks.expire_uploads", "schedule": PURGE_INTERVAL},
    "reconcile-storage": {
        "task": "apps.shares.tasks.reconcile_storage",
        "schedule": RECONCILE_INTERVAL,
    },
}
# After the last download, a task deletes the bytes this many seconds later (the response
# deletes them at once when the app streams; with nginx offload this is what deletes them).
PURGE_AFTER_LAST_DOWNLOAD = env.integer("PURGE_AFTER_LAST_DOWNLOAD", 30, maximum=600)
# Downloads: "" (the app streams them, with the WSGI server's sendfile where it can) or
# "nginx" (the app answers X-Accel-Redirect and nginx sends the file).
# "off" is "no offload" said explicitly, where an empty value means a deployment's default
# (docker-compose.yml offloads to nginx unless .env says off).
DOWNLOAD_OFFLOAD = env.choice("DOWNLOAD_OFFLOAD", ["off", "nginx"], "")
if DOWNLOAD_OFFLOAD == "off":
    DOWNLOAD_OFFLOAD = ""
if DOWNLOAD_OFFLOAD == "nginx" and STORAGE_BACKEND != "local":
    # nginx sends files from MEDIA_ROOT; with S3 the bytes are in the bucket, and every
    # download would be counted, then answered 404 by nginx.
    raise ImproperlyConfigured(
        f"DOWNLOAD_OFFLOAD=nginx needs STORAGE_BACKEND=local (got {STORAGE_BACKEND!r}); "
        "set DOWNLOAD_OFFLOAD=off."
    )
DOWNLOAD_OFFLOAD_LOCATION = env.string("DOWNLOAD_OFFLOAD_LOCATION", "/_protected/")
# A file in storage with no row is an orphan only once it is older than this: an upload
# writes its file before its row commits.
RECONCILE_GRACE_SECONDS = env.integer("RECONCILE_GRACE_SECONDS", 3600)
# Rows of purged shares (and their timelines) are kept this long for the audit trail.
SHARE_RETENTION_DAYS = env.integer("SHARE_RETENTION_DAYS", 30)
# Resumable uploads (tus): an upload that receives nothing for this many seconds expires
# and its bytes are removed; a completed one keeps its links for GET this long.
UPLOAD_SESSION_TTL = env.integer("UPLOAD_SESSION_TTL", 86400, minimum=60)

# Rate limits per client IP ("count/period", period s, m, h or d). Counters live in the cache.
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = True  # availability beats throttling for this service
RATE_LIMITS = {
    "upload": env.rate("RATE_LIMIT_UPLOADS", "30/h"),
    "download": env.rate("RATE_LIMIT_DOWNLOADS", "120/h"),
    "password": env.rate("RATE_LIMIT_WRONG_PASSWORDS", "10/h"),
    "report": env.rate("RATE_LIMIT_REPORTS", "10/h"),
    "login": env.rate("RATE_LIMIT_LOGINS", "10/10m"),
}
# Where the client's address comes from: REMOTE_ADDR, or behind a trusted reverse proxy
# the header it sets (HTTP_X_REAL_IP for the nginx config in deploy/).
CLIENT_IP_HEADER = env.string(
    "CLIENT_IP_HEADER", "REMOTE_ADDR", pattern=r"REMOTE_ADDR|HTTP_[A-Z0-9_]+", like="HTTP_X_REAL_IP"
)
RATELIMIT_IP_META_KEY = CLIENT_IP_HEADER

# Prometheus metrics (docs/operations.md). /metrics answers 404 unless the scraper sends
# METRICS_TOKEN as a bearer token or comes from METRICS_ALLOW_FROM (by the address above).
METRICS_TOKEN = env.string("METRICS_TOKEN")
METRICS_ALLOW_FROM = env.networks("METRICS_ALLOW_FROM")
# Every process of the service (gunicorn's workers, the Celery worker, commands) counts into
# files here, and a scrape adds them up. prometheus_client finds it in the environment.
PROMETHEUS_MULTIPROC_DIR = env.path("PROMETHEUS_MULTIPROC_DIR", VAR_DIR / "metrics")
try:
    PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
except OSError as exc:
    raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR cannot be created: {exc}") from None
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)
# host:port where a Celery worker serves its own /metrics, for a worker that does not share
# PROMETHEUS_MULTIPROC_DIR with the web server (a container of its own). Empty: off.
WORKER_METRICS_BIND = env.string("WORKER_METRICS_BIND", pattern=r".*:\d+", like="0.0.0.0:9808")

# Request ids: taken from X-Request-ID when a proxy sets one, else generated; in every log
# line and in the response.
LOG_REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
GENERATE_REQUEST_ID_IF_NOT_IN_HEADER = True
REQUEST_ID_RESPONSE_HEADER = "X-Request-ID"
NO_REQUEST_ID = "-"

# Errors by mail, when both ADMINS and an email server are configured.
ADMINS = [("Admin", address) for address in env.string_list("DJANGO_ADMINS", [])]
# EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS
email_settings = env.email("EMAIL_URL")
globals().update(email_settings)
SERVER_EMAIL = env.string("SERVER_EMAIL", "onetimeshare@localhost")
if ADMINS and email_settings:
    LOGGING["handlers"]["mail_admins"] = {
        "class": "apps.common.logging.AdminEmailHandler",
        "level": "ERROR",
        "filters": ["redact_tokens"],
    }
    LOGGING["loggers"]["django"]["handlers"].append("mail_admins")
