"""Cinegraph settings: the one module that reads the environment.

python-dotenv loads `.env.dev` here and only here, when the file is there; values already
in the environment win. The Docker image leaves the file out (.dockerignore), so production
never reads the dev defaults, not even for a variable it does not set.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from dotenv import load_dotenv

from pytorch_models.models.names import SERVED_MODELS

BASE_DIR = Path(__file__).resolve().parent.parent
DEV_ENV_FILE = BASE_DIR / ".env.dev"
if DEV_ENV_FILE.exists():
    load_dotenv(DEV_ENV_FILE, override=False)


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def _local_secret_key(path: Path) -> str:
    """This checkout's own secret key: read, or made once (mode 0600). Written under a name of
    this process's and linked into place, so processes starting together all read the winner."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        mine = path.with_name(f".{path.name}.{os.getpid()}")
        with os.fdopen(os.open(mine, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(secrets.token_urlsafe(50))
        try:
            os.link(mine, path)
        except FileExistsError:
            pass  # another process made it first
        finally:
            mine.unlink()
    return path.read_text().strip()


VAR_DIR = Path(_env("CINEGRAPH_VAR_DIR", str(BASE_DIR / "var")))
# A dev checkout (one with .env.dev: `make demo`, manage.py, the tests) that sets no
# DJANGO_SECRET_KEY signs with a secret generated once into var/secret-key, so no secret is in
# the repository. The image has no .env.dev: production must set DJANGO_SECRET_KEY.
SECRET_KEY = _env("DJANGO_SECRET_KEY") or (_local_secret_key(VAR_DIR / "secret-key") if DEV_ENV_FILE.exists()
                                           else "")
if not SECRET_KEY:
    raise RuntimeError("DJANGO_SECRET_KEY is not set: 50 random characters or more "
                       "(docker-compose.yml says how)")
# Debugging is opt-in everywhere, `make demo` included (DJANGO_DEBUG=1 make demo): the debug
# page shows settings and tracebacks to whoever reaches the site.
DEBUG = _env("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = [h for h in _env("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]

# Each process's own memory: small reads every page makes and that change rarely (genres,
# paper reviews, the running experiment, a catalogue page's count and movie ids), kept for
# seconds (movie.catalogue.selectors says how long).
# Nothing here has to agree between processes, so no shared cache, and nothing to fail.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Sessions in the database, as Django keeps them, read with one statement (movie/tracking/sessions.py).
SESSION_ENGINE = "movie.tracking.sessions"

# HTTPS. Production is served over https only, with TLS ended by a reverse proxy in front of
# granian (docker-compose.yml): on whenever DEBUG is off, unless DJANGO_HTTPS=0 says the site
# is plain http: `make demo` and the tests (.env.dev) on loopback.
HTTPS = _env("DJANGO_HTTPS", "0" if DEBUG else "1") == "1"
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
# Browsers remember HSTS for this long: a deployment unsure of https everywhere starts with a
# small DJANGO_HSTS_SECONDS (say 3600) and raises it; preload lists ask for a year.
SECURE_HSTS_SECONDS = int(_env("DJANGO_HSTS_SECONDS", str(365 * 24 * 3600))) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env("DJANGO_HSTS_INCLUDE_SUBDOMAINS", "1") == "1"
SECURE_HSTS_PRELOAD = _env("DJANGO_HSTS_PRELOAD", "1") == "1"
# Behind the proxy every request reaches granian as http; the proxy says which scheme the
# browser used. Trust that header only when a proxy that sets it (and drops the browser's)
# is the only way in, which is what DJANGO_BEHIND_TLS_PROXY=1 declares.
if _env("DJANGO_BEHIND_TLS_PROXY", "0") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # The web app: its shell (base template, static files, the historical migrations), then one
    # app per concern.
    "movie",
    "movie.catalogue",
    "movie.tracking",
    "movie.experiments",
]

MIDDLEWARE = [
    "webapp.middleware.QueryStringCheckMiddleware",  # first: a query string it refuses is a 400 in both modes
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "movie.tracking.ratelimit.RateLimitMiddleware",
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
                "movie.context_processors.links",
            ],
        },
    },
]

# An empty DATABASE_URL means a SQLite file: what `make demo` uses on a bare machine.
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
# A session lasts two weeks from its last change (Django's default); beat deletes expired ones
# every SESSIONS_CLEAR_S, so the table holds about SESSION_COOKIE_AGE of sessions.
SESSION_COOKIE_AGE = int(_env("SESSION_COOKIE_AGE", str(14 * 24 * 3600)))
SESSIONS_CLEAR_S = float(_env("SESSIONS_CLEAR_S", str(24 * 3600)))
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalogue"
LOGOUT_REDIRECT_URL = "catalogue"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves STATIC_ROOT, which the image and `make demo` fill with collectstatic; with
# DEBUG on it serves the apps' static folders directly, re-read on each request.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- The click pipeline -------------------------------------------------------
REDIS_URL = _env("REDIS_URL", "redis://127.0.0.1:6379/0")
# Celery's broker and the rate limiter: keys that must never be evicted. The same server as
# REDIS_URL unless BROKER_REDIS_URL names another (docs: "Bounds").
BROKER_REDIS_URL = _env("BROKER_REDIS_URL") or REDIS_URL
KAFKA_BOOTSTRAP = _env("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
KAFKA_TOPIC = _env("KAFKA_TOPIC", "clicks")
DYNAMODB_ENDPOINT = _env("DYNAMODB_ENDPOINT") or None
DYNAMODB_TABLE = _env("DYNAMODB_TABLE", "clicklog")
# Impressions (lists shown, movie.tracking.impressions) have their own table and topic: the live workers
# read `clicklog` and consume `clicks` only, so an impression can never become training data.
DYNAMODB_IMPRESSIONS_TABLE = _env("DYNAMODB_IMPRESSIONS_TABLE", "impressions")
KAFKA_IMPRESSIONS_TOPIC = _env("KAFKA_IMPRESSIONS_TOPIC", "impressions")
# Retention, in days after an item's own time: each click-log and impression item carries
# `expires` and is deleted after it (eventstore.expiry): by the tables' TTL on AWS, by the
# expiry sweep below on dynalite and DynamoDB Local, which have no TTL. A click older than its
# retention leaves the log, so a live state rebuilt from the log leaves it out, and the history
# and impression tables (MySQL) drop their rows past the same retentions (workers.tasks
# .mirrors_expire). Impressions serve the experiment reports. Days, fractions allowed (the soak
# benchmark keeps 10 minutes).
CLICKLOG_RETENTION_DAYS = float(_env("CLICKLOG_RETENTION_DAYS", "365"))
IMPRESSIONS_RETENTION_DAYS = float(_env("IMPRESSIONS_RETENTION_DAYS", "90"))
# The expiry sweep: every EXPIRY_SWEEP_S beat has the upkeep worker read EXPIRY_SWEEP_ITEMS
# items of each table, where the last run stopped, and delete the expired ones: 5.8 million
# items a day per table at these values, more than `make demo` writes (the soak benchmark's
# 50 clicks/s is 4.3 million). On dynalite here a run read 20,000 items in 0.25 s, and with
# half of them expired took 14 s (1.3 ms a conditional delete). On by default only where
# DYNAMODB_ENDPOINT names a stand-in; AWS's TTL costs nothing.
EXPIRY_SWEEP = _env("DYNAMODB_EXPIRY_SWEEP", "1" if DYNAMODB_ENDPOINT else "0") == "1"
EXPIRY_SWEEP_S = float(_env("EXPIRY_SWEEP_S", "300"))
EXPIRY_SWEEP_ITEMS = int(_env("EXPIRY_SWEEP_ITEMS", "20000"))
AWS_REGION = _env("AWS_DEFAULT_REGION", "us-east-1")
# Fault tests only (benchmarks/faults.py): "<stage>:<movie id>" ends the web process at that
# stage of recording that movie's events (movie.tracking.events). Empty everywhere else.
FAULT_CRASH = _env("CINEGRAPH_FAULT_CRASH")

MODEL_DIR = Path(_env("MODEL_DIR", str(VAR_DIR / "models")))
if not MODEL_DIR.is_absolute():
    MODEL_DIR = BASE_DIR / MODEL_DIR
# Versions kept per model (predictors.registry.versions_prune, after every publish and every
# scheduled retrain): the newest MODEL_VERSIONS_KEPT (the live one and the ones before it, to
# go back to by hand), and any superseded less than MODEL_VERSION_GRACE_S ago, for a worker or
# web process that resolved it just before and is still loading it (seconds; a retrain's warm
# start reads the live version within a minute of resolving it). On ml-latest-small a version
# takes 19 MB (LightGCN, PinSage), 26 MB (NGCF), 32 MB (graph filter: 24 MB of it the 610
# eigenvectors it is served from), 4 MB (popular): 100 MB for the five, so ~300 MB kept. Above
# ANN_MIN_ITEMS a dot-product model's version adds its two indexes, ~0.8 KB a movie each.
MODEL_VERSIONS_KEPT = int(_env("MODEL_VERSIONS_KEPT", "3"))
MODEL_VERSION_GRACE_S = float(_env("MODEL_VERSION_GRACE_S", "600"))
RECOMMENDATION_MODELS = SERVED_MODELS
# Catalogue size from which LightGCN, NGCF and PinSage lists and "More like this" take their
# candidates from an HNSW index (predictors.retrieval) instead of scoring every movie. Below it
# the exact scan is exact and, on benchmarks/ann_recall.py's catalogues, no dearer than an index
# that finds 0.99 of the top 20 (docs/benchmarks.md: at 250,000 movies none did under 9 ms,
# the scan took 14 ms): MovieLens-25M's 62,000 movies cost 1.4-3 ms a list.
ANN_MIN_ITEMS = int(_env("ANN_MIN_ITEMS", "300000"))
# A visitor away this long comes back to lists and parameters re-derived from its log, both at
# once (livepath.state, predictors.cache). Bound: one state and its lists per visitor id active
# within it; 30 days held 4x the visitors in Redis for the rare visitor who returns after a week.
LIVE_STATE_TTL_S = int(float(_env("LIVE_STATE_TTL_S", str(7 * 24 * 3600))))
# The most movies of a visitor's history the live models and the pages use: the newest
# VISITOR_HISTORY_MAX; older ones fall out of the live model and the page says so.
VISITOR_HISTORY_MAX = int(_env("VISITOR_HISTORY_MAX", "500"))
RECOMMENDATIONS_K = 20
# How much one visitor, and one client address, can weigh in a scheduled retrain's training
# data (movie.tracking.selectors.visitor_interactions): a visitor's newest RETRAIN_VISITOR_MAX movies
# (at most VISITOR_HISTORY_MAX; 500 is a MovieLens user at the 92nd percentile of
# ml-latest-small), and RETRAIN_CLIENT_MAX (visitor, movie) pairs per client, spread over its
# visitors. The live path still folds in every visitor's history: these bound only what one
# address can teach the shared model (a click farm), at the cost of what visitors behind one
# shared address (an office, carrier NAT) add to it: at 20, a household of four adds each one's
# five newest movies, and a farm of 300 visitors clicking a target and a farmed movie adds 20
# one-movie users, which link nothing. Uncapped, that farm made the farmed movie the target's
# most similar after one retrain (tests/workers/test_retrain.py). 0 turns the client cap off.
RETRAIN_VISITOR_MAX = min(int(_env("RETRAIN_VISITOR_MAX", str(VISITOR_HISTORY_MAX))), VISITOR_HISTORY_MAX)
RETRAIN_CLIENT_MAX = int(_env("RETRAIN_CLIENT_MAX", "20"))
# What a scheduled retrain may spend (predictors.retrain.RetrainBudget) on each model trained in
# batches (LightGCN, NGCF, PinSage; the graph filter and popular fit in closed form, in seconds,
# and are not budgeted).
# RETRAIN_BUDGET_S: seconds of training each, from the start of its run; it stops at the first
# batch boundary after them (or at the end of its RETRAIN_EPOCHS, if sooner), then evaluates and
# meets the gate. 0: no limit. 120 s: three of them and their evaluations fit in RETRAIN_EVERY's
# 900 s, and on ml-latest-small they end on their epochs first but for NGCF's slowest runs (10
# epochs of 7.5-25 s, predictors.versions); at 1M ratings, where an epoch of all 800k pairs took
# LightGCN 91 s (issue 24), it ends a retrain of 100k pairs after about 11 of its 15 epochs.
# Their batches: every pair new since the live version, and a seeded replay sample of the old
# ones, RETRAIN_REPLAY_FRACTION of them and at most RETRAIN_REPLAY_MAX. With the defaults a site
# below 1M train pairs (ml-latest-small: 80k) replays them all, which is the retrain whose
# quality the gate was set on; above, a uniform 1M (489 batches of 2,048), so the new pairs
# are every epoch's and the epochs stop growing with the history. 1M is about what LightGCN
# steps over in the 120 s at 25M ratings with the sampled step of 2026-12-07: there, a small
# sample replayed over and over lowers its recall@20 (.0722 to .0718 with 100k five times over,
# to .0716 with 500k 2.6 times over), and 1M 1.4 times over gave .0721, NGCF .0158 against
# .0137 (benchmarks.retrain_scale, one run each; docs/benchmarks.md). A quarter was tried in the
# worker tests: their briefly trained NGCF fell 2.9% below its reference in two such epochs and
# the gate refused it, so a share below all waits for a measurement (make demo).
# RETRAIN_THREADS: the cores a retrain keeps busy (torch's and DGL's threads; above 1, PinSage
# also samples in a process of its own): 1 leaves the web server the other core of a two-core
# machine. Torch's own default is a thread per core.
RETRAIN_BUDGET_S = float(_env("RETRAIN_BUDGET_S", "120"))
RETRAIN_REPLAY_FRACTION = float(_env("RETRAIN_REPLAY_FRACTION", "1"))
RETRAIN_REPLAY_MAX = int(_env("RETRAIN_REPLAY_MAX", "1000000"))
RETRAIN_THREADS = int(_env("RETRAIN_THREADS", "1"))
if (RETRAIN_BUDGET_S < 0 or not 0 < RETRAIN_REPLAY_FRACTION <= 1 or RETRAIN_REPLAY_MAX < 1
        or RETRAIN_THREADS < 1):
    raise RuntimeError("RETRAIN_BUDGET_S must be ≥ 0 (0: no limit), RETRAIN_REPLAY_FRACTION in (0, 1], "
                       "RETRAIN_REPLAY_MAX and RETRAIN_THREADS ≥ 1")

# Rate limits, (count, window seconds), per client address as movie.tracking.ratelimit names it (through
# TRUSTED_PROXIES below; IPv6 by /64) and per visitor or username. .env.dev raises the address
# limits: there one address stands for every client (benchmarks.click_load: 200 visitors,
# 100 clicks/s from 127.0.0.1).
_LOGINS = int(_env("RATE_LIMIT_LOGINS_PER_5_MINUTES", "10"))
RATE_LIMITS = {
    # Clicks, ratings and impressions per visitor, and per address: 1,200 a minute is ten
    # visitors at their own limit behind one NAT, and caps a client that opens a session per
    # request (60 sessions a minute with 120 clicks each would be 7,200 a minute, growing).
    "event": (int(_env("RATE_LIMIT_EVENTS_PER_MINUTE", "120")), 60),
    "event_address": (int(_env("RATE_LIMIT_EVENTS_PER_ADDRESS_PER_MINUTE", "1200")), 60),
    # New sessions per address: a client that drops its cookie makes one per request.
    "session": (int(_env("RATE_LIMIT_SESSIONS_PER_MINUTE", "60")), 60),
    # Log-in tries (each costs 0.3 s of PBKDF2): per address and username (one client guessing
    # one password); per address (spraying one password over many accounts: 30 in 5 minutes
    # keep one client to 3% of a core); per username from anywhere (guessing from many
    # addresses: it takes five at their own limit to reach); and per browser that logged in to
    # that account before, which counts there instead of on the username, so a locked username
    # does not lock out its owner.
    "login": (_LOGINS, 300),
    "login_address": (int(_env("RATE_LIMIT_LOGINS_PER_ADDRESS_PER_5_MINUTES", "30")), 300),
    "login_username": (int(_env("RATE_LIMIT_LOGINS_PER_USERNAME_PER_5_MINUTES", "50")), 300),
    "login_device": (_LOGINS, 300),
    # Sign-ups per address: each costs a PBKDF2 and tells whether a username is taken.
    "signup": (int(_env("RATE_LIMIT_SIGNUPS_PER_HOUR", "20")), 3600),
}
# How many reverse proxies in front of the app append the address they received from to
# X-Forwarded-For (docker-compose.yml: one, the TLS proxy). 0: the client is REMOTE_ADDR. Set it
# only where the app is reachable through those proxies alone, or a client could name its own
# address.
TRUSTED_PROXIES = int(_env("DJANGO_TRUSTED_PROXIES", "0"))
if TRUSTED_PROXIES < 0:
    raise RuntimeError("DJANGO_TRUSTED_PROXIES must be 0 or more: the number of proxies in front of the app")

# The live path: idle visitors leave a worker's visitor graph after this long (their state
# stays in Redis); RETRAIN_EVERY seconds between scheduled retrains, 0 = never.
LIVE_VISITOR_IDLE_S = float(_env("LIVE_VISITOR_IDLE_S", "600"))
RETRAIN_EVERY = float(_env("RETRAIN_EVERY", "0"))
# The first part of the live queue's Redis keys (livepath.queue): the web processes,
# the consumer and the live workers of one site share it; each test gets its own.
LIVE_KEY_PREFIX = _env("LIVE_KEY_PREFIX", "live")

CELERY_BROKER_URL = BROKER_REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = "live"
CELERY_TASK_ROUTES = {"workers.tasks.retrain_models": {"queue": "retrain"}}
# Waiting visitors are also picked up every 30 s, after a worker died holding some.
# Visitors whose live state is behind their history (Redis restarted) are found every 30 s too.
CELERY_BEAT_SCHEDULE = {
    "live-sweep": {"task": "workers.tasks.update_waiting_visitors", "schedule": 30.0},
    "live-reconcile": {"task": "workers.tasks.reconcile_visitors",
                       "schedule": float(_env("LIVE_RECONCILE_S", "30"))},
}
if RETRAIN_EVERY > 0:
    CELERY_BEAT_SCHEDULE["retrain"] = {"task": "workers.tasks.retrain_models", "schedule": RETRAIN_EVERY}
# Upkeep on a queue and worker of its own (workers.tasks, `upkeep`): expired sessions leave the
# database once a day (Django's clearsessions); expired history and impression rows, and expired
# DynamoDB items where no TTL deletes them, every EXPIRY_SWEEP_S.
CELERY_BEAT_SCHEDULE["clear-sessions"] = {"task": "workers.tasks.sessions_clear",
                                          "schedule": SESSIONS_CLEAR_S}
CELERY_BEAT_SCHEDULE["expire-mirrors"] = {"task": "workers.tasks.mirrors_expire", "schedule": EXPIRY_SWEEP_S}
if EXPIRY_SWEEP:
    CELERY_BEAT_SCHEDULE["expired-items"] = {"task": "workers.tasks.expired_items_delete",
                                             "schedule": EXPIRY_SWEEP_S}
# Each scheduled task expires unstarted when the next one is due: while no worker takes a queue
# (or all are busy) beat's messages wait in the broker, and a worker that comes back drops the
# stale ones unrun instead of running the backlog one after another. Ticks the app sends
# itself are capped and expire too (workers.tasks.live_tick); retrains also run one at a time.
for _entry in CELERY_BEAT_SCHEDULE.values():
    _entry["options"] = {"expires": _entry["schedule"]}
# A task is acknowledged when it ends, not when it starts; one whose pool process dies is put
# back at once (reject on worker lost: prefork pools), one whose whole worker died (our solo
# pools) when its visibility_timeout below runs out.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis hands a task that is still unacknowledged after visibility_timeout to another worker,
# and the setting is broker-wide: both queues share it. A live tick drains micro-batches of
# well under a second, but a retrain trains three models for minutes on ml-latest-small and
# up to an hour each on a Gowalla-sized graph (docs/benchmarks.md): 6 h covers that twice, so
# a running retrain is never started a second time. Neither queue needs a quicker redelivery:
# a tick carries no visitor ids (the visitors wait in Redis and beat's 30 s sweep sends fresh
# ticks), and a retrain whose worker died is followed by the next scheduled one.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6 * 3600}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": _env("LOG_LEVEL", "INFO")},
    "loggers": {"kafka": {"level": "WARNING"}, "botocore": {"level": "WARNING"}},
}
