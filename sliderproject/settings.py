"""Settings for Slider Sync.

Everything is read from the environment (or an optional `.env` file next to manage.py) through one
`environ.Env`. With no environment at all you get a development setup: DEBUG on, SQLite in
`var/db.sqlite3`, in-process broadcasting. See docs/configuration.md for every variable.
"""

from __future__ import annotations

from pathlib import Path

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

# Django's generic classes (ModelAdmin, ModelForm...) accept type parameters at runtime, as
# sliders/admin.py gives them for mypy; this adds `__class_getitem__` and changes nothing else.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

# Development by default (manage.py, runserver, tests). The deployment entry point,
# `uvicorn sliderproject.asgi:application`, defaults to DEBUG off (see asgi.py).
DEBUG = env.bool("DEBUG", default=env.bool("SLIDER_SYNC_DEFAULT_DEBUG", default=True))

# Published, so only for a development server nobody else can reach (runserver warns otherwise).
DEVELOPMENT_SECRET_KEY = "development-only-secret-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and strips it from clients).
if env.bool("BEHIND_HTTPS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# HTTPS hardening: on by default in production, each switchable for a plain-HTTP LAN.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# /healthz and /metrics answer plain HTTP, so a load balancer or Prometheus can reach a backend
# directly (metrics are for METRICS_ALLOWED_IPS only).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]

INSTALLED_APPS = [
    # `sliders` comes first so that its `runserver` (which serves the whole ASGI app, socket
    # included) wins over the ones in servestatic and django.contrib.staticfiles.
    "sliders",
    "servestatic",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # the HTTP API's docs page (Swagger UI) is served from its static files
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Django's database sessions, refusing cookies with keys the database cannot look up.
SESSION_ENGINE = "sliders.sessions"

ROOT_URLCONF = "sliderproject.urls"

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
                "sliders.context_processors.realtime",
            ],
        },
    },
]

ASGI_APPLICATION = "sliderproject.asgi.application"

# Database: SQLite by default, anything django-environ understands via DATABASE_URL.
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
# Requests close their connection when they finish (no persistent connections). The realtime
# server's two database threads each keep one connection for the life of the process and
# replace it only once it is broken (see sliders.db): socket handlers never see Django's
# request_finished cleanup.
DATABASES["default"]["CONN_MAX_AGE"] = 0
# How long a query may wait (for a lock, a connection, an answer) before the set is refused with
# `unavailable`: a stuck transaction elsewhere must not stall every socket of the process.
DATABASE_TIMEOUT = env.float("DATABASE_TIMEOUT", default=5.0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # Take the write lock when a transaction starts, so two writers queue instead of
            # failing halfway with "database is locked".
            "transaction_mode": "IMMEDIATE",
            "timeout": DATABASE_TIMEOUT,
            # WAL lets pages read while a set commits; NORMAL sync survives a killed process.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _timeout_ms = int(DATABASE_TIMEOUT * 1000)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "connect_timeout": max(1, round(DATABASE_TIMEOUT)),
            "options": f"-c lock_timeout={_timeout_ms} -c statement_timeout={2 * _timeout_ms}",
        }
    )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve straight from the apps' static folders, so `uvicorn sliderproject.asgi:application` works
# without a collectstatic step.
SERVESTATIC_USE_FINDERS = True
SERVESTATIC_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "sliders:index"
LOGOUT_REDIRECT_URL = "sliders:index"

# --- Realtime (python-socketio) --------------------------------------------------------------
# Redis for broadcasting across processes (scale-out); unset = one process, in-memory.
REDIS_URL = env.str("REDIS_URL", default="")
# Prefix of every Redis key and channel we use, so several sites can share one Redis.
REDIS_PREFIX = env.str("REDIS_PREFIX", default="slidersync")
# Seconds after which a process that stopped sending heartbeats no longer counts in presence.
PRESENCE_PROCESS_TTL = env.float("PRESENCE_PROCESS_TTL", default=15.0)
# Transports the browser may use: "websocket,polling" (default) or "websocket" for deployments
# without sticky sessions.
SOCKETIO_TRANSPORTS = env.list("SOCKETIO_TRANSPORTS", default=["websocket", "polling"])
# Largest message a client may send, in bytes (python-socketio's default is 1 MB).
SOCKETIO_MAX_MESSAGE_BYTES = env.int("SOCKETIO_MAX_MESSAGE_BYTES", default=16 * 1024)
# Bytes of outgoing packets one connection may have waiting (a long-polling client that stopped
# polling, a websocket that does not read): past it the connection is closed.
SOCKETIO_MAX_QUEUED_BYTES = env.int("SOCKETIO_MAX_QUEUED_BYTES", default=1024 * 1024)
# Engine.IO heartbeats, in whole seconds: the server pings every interval, and a connection that
# has sent nothing for interval + timeout is closed (python-engineio's defaults). Whole seconds,
# because python-engineio tells clients int(interval) * 1000 ms: 0.5 would become 0.
SOCKETIO_PING_INTERVAL = env.int("SOCKETIO_PING_INTERVAL", default=25)
SOCKETIO_PING_TIMEOUT = env.int("SOCKETIO_PING_TIMEOUT", default=20)
# A live slider:set (one with `made_at`) that arrives more than this many seconds later than its
# connection's sets usually do was held up, and applies only over the version it was based on
# (docs/protocol.md).
LIVE_SET_MAX_DELAY: float = env.float("LIVE_SET_MAX_DELAY", default=1.0)
# Per-connection token bucket for slider:set: sustained rate per second and burst size.
SLIDER_SET_RATE = env.float("SLIDER_SET_RATE", default=60.0)
SLIDER_SET_BURST = env.int("SLIDER_SET_BURST", default=120)
# Presence (`board:presence`) is coalesced: at most one emit per board per this many seconds.
PRESENCE_INTERVAL = env.float("PRESENCE_INTERVAL", default=0.25)
# A hand on a slider (someone dragging it) goes away this long after the page last said so.
GRAB_TIMEOUT = env.float("GRAB_TIMEOUT", default=6.0)
DEFAULT_BOARD_SLUG = "main"
# Sets from one connection to one slider within this many seconds form one audit entry.
AUDIT_MERGE_SECONDS = env.float("AUDIT_MERGE_SECONDS", default=3.0)
# Socket connections allowed from one client address per process. An audience behind one NAT
# address (a conference room of 500 on the venue's Wi-Fi, some with two devices) is one address;
# a connection costs about 45 KB (docs/security.md has the trade-off).
SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS = env.int("SOCKETIO_MAX_CONNECTIONS_PER_ADDRESS", default=1000)
# Client addresses or networks that may read /metrics (board slugs and activity are in there).
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])

# --- Bridges (OSC, MQTT, ...: sliders/bridges/) ---------------------------------------------------
# Without REDIS_URL the web process runs the bridges (with it, `manage.py run_bridges` does).
# Off for a process that must not send although it has no Redis: a second process on the same
# database (both would send every change), the test suite's servers.
BRIDGES_IN_PROCESS = env.bool("BRIDGES_IN_PROCESS", default=True)
# The address the OSC listening ports (Board.osc_port) bind to: every interface by default, so
# desks on the network reach them; 127.0.0.1 keeps them to this machine.
OSC_LISTEN_HOST = env.str("OSC_LISTEN_HOST", default="0.0.0.0")
# Seconds between two cheap checks of the bridge settings (a reload when they changed without a
# notice, e.g. from a shell without Redis; admin edits reload at once).
BRIDGES_CHECK_INTERVAL = env.float("BRIDGES_CHECK_INTERVAL", default=5.0)
# Seconds of silence after which an MQTT broker and the bridges consider each other gone: the
# broker then publishes the bridges' last will ("offline") about 1.5 times this after a
# bridge process vanished without closing its connection (a power cut; a killed process's
# connection is closed by its kernel, and the will goes out at once).
MQTT_KEEPALIVE = env.int("MQTT_KEEPALIVE", default=30)
# Webhooks (sliders/bridges/webhooks.py): seconds a POST may take in all; attempts per event
# before giving up; the first wait between attempts (doubling), and the longest (a receiver's
# Retry-After too is honoured up to it); events other than values waiting per webhook; attempts
# kept per webhook in the delivery log; and whether to refuse receivers at private, loopback
# and link-local addresses (docs/security.md: off by default, as staff may mean a LAN service).
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
WEBHOOK_ATTEMPTS = env.int("WEBHOOK_ATTEMPTS", default=5)
WEBHOOK_RETRY_FIRST = env.float("WEBHOOK_RETRY_FIRST", default=1.0)
WEBHOOK_RETRY_MAX = env.float("WEBHOOK_RETRY_MAX", default=60.0)
WEBHOOK_QUEUE_SIZE = env.int("WEBHOOK_QUEUE_SIZE", default=100)
WEBHOOK_LOG_SIZE = env.int("WEBHOOK_LOG_SIZE", default=50)
WEBHOOK_BLOCK_PRIVATE_ADDRESSES = env.bool("WEBHOOK_BLOCK_PRIVATE_ADDRESSES", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "sliders": {"level": env.str("LOG_LEVEL", default="INFO")},
    },
}
