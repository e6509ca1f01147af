"""One settings module; everything comes from the environment (DIEUHANH_*) with embedded defaults.

DIEUHANH_HOME          folder for the embedded database and files (default ./var)
DIEUHANH_DATABASE_URL  default SQLite in DIEUHANH_HOME; a postgresql:// URL switches
DIEUHANH_ROOM_TILE_URL a map tile server for the room's map ({z}/{x}/{y}); none by default (offline)
DIEUHANH_WALL_ROTATE_SECONDS  the wall's seconds per view (30)
DIEUHANH_WALL_MAX_VIEWS      the wall's views of units over a threshold (10)
DIEUHANH_ANALYTICS_CACHE_ROWS analytics answers kept per process, in rows (200000), and 20 monthly rollup rows
                              per answer row (PostgreSQL); 0 turns both off
DIEUHANH_SECRET_KEY    generated into DIEUHANH_HOME on first run when unset
DIEUHANH_DEBUG         1 for development error pages
DIEUHANH_ALLOWED_HOSTS comma-separated, default localhost names
DIEUHANH_TRUSTED_PROXIES the proxies in front, comma-separated (X-Forwarded-For is read behind them)
DIEUHANH_NATS_URL, _NATS_REPLICAS, _LIVE, _LIVE_SUBJECT, _LIVE_COALESCE_SECONDS: the broker and live events
DIEUHANH_DB_POOL_SIZE, _DB_POOL_TIMEOUT, _WEB_CONCURRENCY: connections and requests per process
DIEUHANH_DATABASE_REPLICA_URL, _REPLICA_MAX_LAG: a read replica
DIEUHANH_SECURE        1 behind a TLS proxy: Secure cookies, HSTS, X-Forwarded-Proto trusted
DIEUHANH_LOG_LEVEL     WARNING by default; every log line is scrubbed of IDs and phone numbers
(README's Configuration table says what each one means.)
"""

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent
HOME = Path(os.environ.get("DIEUHANH_HOME", "var")).resolve()
# The home holds the database, the keys and exported files, all about people: its owner's alone.
HOME.mkdir(mode=0o700, parents=True, exist_ok=True)


def _kept_secret(variable: str, filename: str) -> str:
    """From the environment, or generated once into DIEUHANH_HOME with owner-only permissions."""
    if key := os.environ.get(variable):
        return key
    path = HOME / filename
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _kept_secret("DIEUHANH_SECRET_KEY", "secret_key")
# Person keys are HMAC-SHA256(PSEUDONYM_KEY, normalised ID). Its own key, so that rotating Django's
# secret never orphans the pseudonyms already stored; losing it makes them unlinkable (by design).
PSEUDONYM_KEY = _kept_secret("DIEUHANH_PSEUDONYM_KEY", "pseudonym_key").encode()
# Signs venue QR codes: its own key, so that printed codes outlive a rotation of SECRET_KEY.
QR_SIGNING_KEY = _kept_secret("DIEUHANH_QR_KEY", "qr_key").encode()
# Seals the identity vault (AES-256-GCM). Its own key, so that it can be kept apart from the pseudonym
# key; losing it makes the vault unreadable, the events stay. SHA-256 turns the kept text into the
# 32 bytes AES-256 needs.
VAULT_KEY = hashlib.sha256(_kept_secret("DIEUHANH_VAULT_KEY", "vault_key").encode()).digest()
# Days person-level events are kept, per kind ("checkin=30,health=30"); kinds not named are kept.
RETENTION_DAYS = {"checkin": 30, "health": 30, "travel": 30} | {
    kind: int(days)
    for kind, _, days in (
        item.partition("=") for item in os.environ.get("DIEUHANH_RETENTION", "").split(",") if item
    )
}
# Largest body of one POST /api/v1/events/{kind} (bytes); larger batches are refused with 413.
MAX_BATCH_BYTES = int(os.environ.get("DIEUHANH_MAX_BATCH_BYTES", 32 * 1024 * 1024))
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BATCH_BYTES + 1
# One server or several, comma-separated (a cluster: the client fails over between them).
NATS_URL = os.environ.get("DIEUHANH_NATS_URL", "nats://127.0.0.1:4222")
NATS_SERVERS = [url.strip() for url in NATS_URL.split(",") if url.strip()]
# Copies JetStream keeps of the events stream: 3 on a 3-node cluster, so that a node's loss loses nothing.
NATS_REPLICAS = int(os.environ.get("DIEUHANH_NATS_REPLICAS", 1))
# Live events (dieuhanh.live): "auto" goes through NATS core subjects when a server answers at start
# and stays in this process otherwise (logged once); "nats" insists on the broker (reconnecting);
# "local" never leaves the process (one process only: tests, a laptop).
LIVE_BROKER = os.environ.get("DIEUHANH_LIVE", "auto")
LIVE_SUBJECT = os.environ.get("DIEUHANH_LIVE_SUBJECT", "dieuhanh.live")
DEBUG = os.environ.get("DIEUHANH_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DIEUHANH_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")
# Addresses of the proxies in front (nginx, HAProxy), comma-separated: behind them the client's address is
# read from X-Forwarded-For, so that failed logins are counted per official's machine (accounts.lockout).
TRUSTED_PROXIES = [a.strip() for a in os.environ.get("DIEUHANH_TRUSTED_PROXIES", "").split(",") if a.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # serves the API docs' Swagger UI from its own static files, not a CDN
    "dieuhanh.units",
    "dieuhanh.accounts",
    "dieuhanh.warehouse",
    "dieuhanh.warehouse.enterprises",
    "dieuhanh.indicators",
    "dieuhanh.indicators.quality",
    "dieuhanh.indicators.approval",
    "dieuhanh.tracing",
    "dieuhanh.directives",
    "dieuhanh.feedback",
    "dieuhanh.reports",
    "dieuhanh.commandroom",
]

MIDDLEWARE = [
    "dieuhanh.db.BusyMiddleware",  # first, so that it sees every exception
    "django.middleware.security.SecurityMiddleware",
    "dieuhanh.csp.SecurityPolicyMiddleware",  # Content-Security-Policy, Permissions-Policy on HTML pages
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dieuhanh.accounts.language.LanguageMiddleware",  # Vietnamese unless the user chose (not the browser)
    "dieuhanh.replica.PinMiddleware",  # a user's reads after their own write: the primary's
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "dieuhanh.accounts.middleware.AreaGuardMiddleware",
    "dieuhanh.errors.DomainErrorMiddleware",  # a page's refusal: its status, in the reader's language
]

ROOT_URLCONF = "dieuhanh.urls"
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
                "dieuhanh.commandroom.context.roles",
            ],
        },
    },
]
WSGI_APPLICATION = "dieuhanh.wsgi.application"
ASGI_APPLICATION = "dieuhanh.asgi.application"


# Database connections per web or worker process (PostgreSQL): a bounded pool (psycopg_pool through
# Django's OPTIONS["pool"]), and a bounded number of requests in Django at once to match (dieuhanh.asgi).
# A request that waits DB_POOL_TIMEOUT seconds for either is answered 503 with Retry-After.
DB_POOL_SIZE = int(os.environ.get("DIEUHANH_DB_POOL_SIZE", 8))
DB_POOL_TIMEOUT = float(os.environ.get("DIEUHANH_DB_POOL_TIMEOUT", 5))
WEB_CONCURRENCY = int(os.environ.get("DIEUHANH_WEB_CONCURRENCY", DB_POOL_SIZE))
# A streaming replica for the reads of the room, unit pages, analytics and reports (dieuhanh.replica);
# one lagging more than REPLICA_MAX_LAG seconds, or down, is passed over for the primary.
REPLICA_URL = os.environ.get("DIEUHANH_DATABASE_REPLICA_URL", "")
REPLICA_MAX_LAG = float(os.environ.get("DIEUHANH_REPLICA_MAX_LAG", 10))


def _database(url: str | None = None) -> dict[str, Any]:
    url = url or os.environ.get("DIEUHANH_DATABASE_URL") or f"sqlite:///{HOME / 'dieuhanh.sqlite3'}"
    db: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=0))
    if db["ENGINE"].endswith("postgresql") and DB_POOL_SIZE > 0:
        # Each thread used to open its own session and keep it until garbage collection (CONN_MAX_AGE),
        # which filled max_connections under load: a pool bounds them and hands them between threads.
        db["OPTIONS"] = {
            "pool": {"min_size": 1, "max_size": DB_POOL_SIZE, "timeout": DB_POOL_TIMEOUT, "max_idle": 60}
        }
    if db["ENGINE"].endswith("sqlite3"):
        # SQLite would create the file world-readable (0644 under the usual umask): made here first,
        # owner-only, and its -wal and -shm files take the database's permissions.
        path = Path(db["NAME"])
        if db["NAME"] not in ("", ":memory:") and path.parent.is_dir() and not path.exists():
            path.touch(mode=0o600)
        # WAL lets the web process read while a loader or worker writes.
        db["OPTIONS"] = {
            # A 256 MB page cache: event indexes (random person keys) outgrow SQLite's 2 MB default
            # quickly, and each miss on insert is a disk read.
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                "PRAGMA cache_size=-262144; PRAGMA temp_store=MEMORY;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        db["TEST"] = {"NAME": os.environ.get("DIEUHANH_TEST_SQLITE_NAME") or None}
    return db


DATABASES = {"default": _database()}
if REPLICA_URL:
    DATABASES["replica"] = _database(REPLICA_URL) | {"TEST": {"MIRROR": "default"}}
    DATABASE_ROUTERS = ["dieuhanh.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"  # each role lands on its own page (commandroom.views.home)
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "vi"
LANGUAGES = [("vi", "Tiếng Việt"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Ho_Chi_Minh"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = HOME / "static"
STATIC_ROOT.mkdir(exist_ok=True)
# Stored files (attachments, photos, made reports) are in one place, the default storage. Several web
# machines must share it as they share the database: DIEUHANH_FILES names the shared folder (docs/deploy.md).
MEDIA_ROOT = Path(os.environ.get("DIEUHANH_FILES") or HOME / "media").resolve()
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Attachments and other stored files: the owner's alone, as the database is.
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Behind a TLS proxy (docs/deploy.md), DIEUHANH_SECURE=1: cookies only over HTTPS, browsers told to use
# HTTPS for a year, and the proxy's X-Forwarded-Proto believed. Off by default, because `make demo`
# serves plain HTTP, and the header must not be believed from a client talking to us directly.
SECURE = os.environ.get("DIEUHANH_SECURE", "") == "1"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE
SECURE_HSTS_SECONDS = 365 * 24 * 3600 if SECURE else 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if SECURE else None

# One logging configuration for every process: Django reads it, and `dieuhanh serve` hands it to uvicorn.
# Every handler masks citizen IDs and phone numbers (dieuhanh.logscrub): a 404's path may hold one.
LOG_LEVEL = os.environ.get("DIEUHANH_LOG_LEVEL", "WARNING").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"scrub": {"()": "dieuhanh.logscrub.ScrubFilter"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
        # The names uvicorn's own configuration gives them (uvicorn.Config may set their colours by name).
        "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"},
        "access": {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["scrub"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["scrub"],
        },
        "uvicorn": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["scrub"]},
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "access",
            "stream": "ext://sys.stdout",
            "filters": ["scrub"],
        },
    },
    "loggers": {
        # Django's defaults give these two handlers of their own (unscrubbed, and mail to ADMINS with the
        # whole request): replaced, so that django.request's 4xx lines reach only the root's.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["uvicorn"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": LOG_LEVEL},
        "uvicorn.access": {"handlers": ["access"], "level": LOG_LEVEL, "propagate": False},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# Follow-up of directives and their notifications (directives.followup, .channels, .live;
# docs/directives.md). The schedule's overrides, minutes, as JSON: {"urgent": {"ack_reminders": [15]}}.
FOLLOWUP: dict[str, Any] = json.loads(os.environ.get("DIEUHANH_FOLLOWUP") or "{}")
EMAIL_HOST = os.environ.get("DIEUHANH_EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("DIEUHANH_EMAIL_PORT", 25))
EMAIL_HOST_USER = os.environ.get("DIEUHANH_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("DIEUHANH_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("DIEUHANH_EMAIL_TLS", "") == "1"
EMAIL_TIMEOUT = 20
DEFAULT_FROM_EMAIL = os.environ.get("DIEUHANH_EMAIL_FROM", "dieuhanh@localhost")
SMS_URL = os.environ.get("DIEUHANH_SMS_URL", "")  # an HTTP gateway taking JSON; empty: no SMS
SMS_TOKEN = os.environ.get("DIEUHANH_SMS_TOKEN", "")
SMS_TIMEOUT = float(os.environ.get("DIEUHANH_SMS_TIMEOUT", 10))
# unit → phone numbers: a callable or its dotted path. Nothing in the database holds numbers yet.
SMS_RECIPIENTS = os.environ.get("DIEUHANH_SMS_RECIPIENTS", "dieuhanh.directives.channels.no_phone_numbers")
# In-app always; e-mail and SMS once their server is set, so an unset one never fills the queue.
NOTIFY_CHANNELS = ["in_app"] + (["email"] if EMAIL_HOST else []) + (["sms"] if SMS_URL else [])
# Sends a minute per channel ("sms=60,email=300"): a gateway's contract, a mail server's patience.
NOTIFY_PER_MINUTE = {"in_app": 6000, "email": 300, "sms": 60} | {
    name: int(n)
    for name, _, n in (
        item.partition("=") for item in os.environ.get("DIEUHANH_NOTIFY_PER_MINUTE", "").split(",") if item
    )
}
# The room's map draws the units on a plain background (offline, no third party); a tile server's URL
# template ({z}/{x}/{y}) adds a base map, e.g. an agency's own tile server.
ROOM_TILE_URL = os.environ.get("DIEUHANH_ROOM_TILE_URL", "")
# The wall (/wall/) turns from one view to the next every this many seconds (?seconds= on its address
# overrides it, 5 at least), through the caller's unit and at most WALL_MAX_VIEWS units over a threshold.
WALL_ROTATE_SECONDS = int(os.environ.get("DIEUHANH_WALL_ROTATE_SECONDS", 30))
# Analytics' answer cache (indicators.analytics.AnswerCache): about 1 kB a row.
ANALYTICS_CACHE_ROWS = int(os.environ.get("DIEUHANH_ANALYTICS_CACHE_ROWS", 200_000))
WALL_MAX_VIEWS = int(os.environ.get("DIEUHANH_WALL_MAX_VIEWS", 10))
LIVE_HEARTBEAT_SECONDS = 15.0  # a comment on quiet event streams, before proxies time them out
# A screen refreshes at most once per this many seconds, however many events arrive (room.js), and the
# room's shared parts are cached per area for as long, recomputed once per change (commandroom.room).
LIVE_COALESCE_SECONDS = float(os.environ.get("DIEUHANH_LIVE_COALESCE_SECONDS", 2))
