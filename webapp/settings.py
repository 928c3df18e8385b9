"""Cinegraph settings: the one module that reads the environment.

python-dotenv loads `.env.dev` here and only here; values already in the
environment win, so production never reads the dev defaults.
"""

import os
from pathlib import Path

import dj_database_url
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env.dev", override=False)


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


SECRET_KEY = _env("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY is not set (see .env.dev for the dev default)")
DEBUG = _env("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = [h for h in _env("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "movie",
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
    "movie.ratelimit.RateLimitMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# An empty DATABASE_URL means a SQLite file: what `make demo` uses on a bare machine.
VAR_DIR = Path(_env("CINEGRAPH_VAR_DIR", str(BASE_DIR / "var")))
DATABASES = {
    "default": dj_database_url.parse(
        _env("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}", conn_max_age=60
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several web processes write clicks at once: WAL lets reads go on during a write, and
    # writers queue for the lock (IMMEDIATE, up to 20 s) instead of failing "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    DATABASES["default"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalogue"
LOGOUT_REDIRECT_URL = "catalogue"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# In development WhiteNoise serves the apps' static folders directly (no collectstatic);
# production images run collectstatic and serve STATIC_ROOT.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- The click pipeline -------------------------------------------------------
REDIS_URL = _env("REDIS_URL", "redis://127.0.0.1:6379/0")
KAFKA_BOOTSTRAP = _env("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
KAFKA_TOPIC = _env("KAFKA_TOPIC", "clicks")
DYNAMODB_ENDPOINT = _env("DYNAMODB_ENDPOINT") or None
DYNAMODB_TABLE = _env("DYNAMODB_TABLE", "clicklog")
AWS_REGION = _env("AWS_DEFAULT_REGION", "us-east-1")

MODEL_DIR = Path(_env("CINEGRAPH_MODEL_DIR", str(VAR_DIR / "models")))
if not MODEL_DIR.is_absolute():
    MODEL_DIR = BASE_DIR / MODEL_DIR
RECOMMENDATION_MODELS = ("pinsage", "ngcf", "lightgcn", "popular")
RECOMMENDATIONS_K = 20

# Rate limits, (count, window seconds): clicks and ratings per visitor, new sessions per client
# address (a client that drops its cookie makes one per request), log-in tries per address and
# username. .env.dev raises the session limit: benchmarks.click_load opens 200 from one address.
RATE_LIMITS = {
    "event": (int(_env("RATE_LIMIT_EVENTS_PER_MINUTE", "120")), 60),
    "session": (int(_env("RATE_LIMIT_SESSIONS_PER_MINUTE", "60")), 60),
    "login": (int(_env("RATE_LIMIT_LOGINS_PER_5_MINUTES", "10")), 300),
}

# The live path: idle visitors leave a worker's visitor graph after this long (their state
# stays in Redis); RETRAIN_EVERY seconds between scheduled retrains, 0 = never.
LIVE_VISITOR_IDLE_S = float(_env("LIVE_VISITOR_IDLE_S", "600"))
RETRAIN_EVERY = float(_env("RETRAIN_EVERY", "0"))

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "live"
CELERY_TASK_ROUTES = {"workers.tasks.retrain_models": {"queue": "retrain"}}
# Waiting visitors are also picked up every 30 s, after a worker died holding some.
CELERY_BEAT_SCHEDULE = {"live-sweep": {"task": "workers.tasks.update_waiting_visitors", "schedule": 30.0}}
if RETRAIN_EVERY > 0:
    CELERY_BEAT_SCHEDULE["retrain"] = {"task": "workers.tasks.retrain_models", "schedule": RETRAIN_EVERY}
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": _env("LOG_LEVEL", "INFO")},
    "loggers": {"kafka": {"level": "WARNING"}, "botocore": {"level": "WARNING"}},
}
