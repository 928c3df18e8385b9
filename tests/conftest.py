"""Session fixtures: the REAL services (tansu, dynalite, Redis) on free ports.

Every test session starts its own Kafka (in memory) and DynamoDB (LevelDB in a temp dir)
and points `django.conf.settings` and `os.environ` at them before any test runs, so no
test can reach a developer's own services by accident. Redis is a private server too,
unless TEST_REDIS_URL names one (a database the session flushes at its start: name one of
your own only if you mean it). The database is DATABASE_URL's (pytest-django
creates `test_<name>` there); where that is MySQL on this machine and nothing lets its user in,
a private MariaDB on a free port takes its place for the session (a bare machine: `make test`
needs nothing running).

The Celery worker and the Kafka consumer run as subprocesses, started only when a test asks
for `live_celery_worker` / `click_consumer`. Those processes read the test database through
their own connection: tests using them need `transactional_db` (data committed), not `db`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

from devstack import app
from devstack.process import StackError, free_port, quietly
from devstack.services import (
    DynamoDB,
    Kafka,
    MariaDB,
    RedisServer,
    aws_kwargs,
    ensure_clicklog_table,
    ensure_impressions_table,
    mysql_ping,
    redis_ping,
)
from devstack.supervisor import Stack

ROOT = Path(__file__).resolve().parent.parent

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
MOVIELENS = ROOT / "data" / "ml-latest-small"


@pytest.fixture(scope="session")
def service_stack(tmp_path_factory):
    """The running processes of this session, stopped in reverse order at the end."""
    with Stack() as running:
        yield running


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def redis_url(service_stack, log_dir, request) -> str:
    import redis

    if TEST_REDIS_URL and quietly(redis_ping, TEST_REDIS_URL):
        redis.Redis.from_url(TEST_REDIS_URL).flushdb()
        return TEST_REDIS_URL
    server = service_stack.start(RedisServer(log_dir=log_dir))
    if TEST_REDIS_URL:
        _note(request, f"redis: nothing answered at TEST_REDIS_URL {TEST_REDIS_URL}; "
                       f"the tests used their own on {server.address}")
    return server.url


@pytest.fixture(scope="session")
def kafka_bootstrap(service_stack, log_dir) -> str:
    return service_stack.start(Kafka(log_dir=log_dir)).bootstrap  # clicks and impressions made


@pytest.fixture(scope="session")
def dynamodb_endpoint(service_stack, log_dir, tmp_path_factory) -> str:
    return service_stack.start(DynamoDB(path=tmp_path_factory.mktemp("dynalite"), log_dir=log_dir)).endpoint


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """Where this session's models live (never var/models)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def page_data_cache_cleared():
    """Each test starts with an empty per-process cache (genres, movie rows, reviews, the
    running experiment): what one test wrote must not be served to the next."""
    from movie.catalogue.selectors import page_data_clear

    page_data_clear()


# Fixtures that start app processes (workers, the consumer, the fault rig) all take this one.
APP_PROCESSES = "app_process_env"


@pytest.fixture(autouse=True)
def live_queue_keys(request, services):
    """Each test starts with an empty live queue of its own (livepath.queue), so an
    exact-claim assertion holds whatever ran before. A test in-process gets its own key prefix;
    one with app processes shares theirs (the default, `live`: they are started per module or
    session with the environment), emptied before and after it. Visitor states are not queue
    keys: each test makes its own visitors; the queue's index of the visitors on each version
    (livepath.state) is, so a version one test publishes re-queues only that test's visitors."""
    if services is None:  # tests/pytorch_models: no services, no live queue
        yield None
        return
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(services["REDIS_URL"])
    shared = APP_PROCESSES in request.fixturenames
    saved = settings.LIVE_KEY_PREFIX
    prefix = saved if shared else f"test-{os.urandom(6).hex()}"
    patterns = [f"{prefix}:{name}" for name in ("waiting", "claimed", "claim:*", "tick:*", "on:*")]

    def clear() -> None:
        for pattern in patterns:
            keys = list(client.scan_iter(match=pattern, count=1000))
            if keys:
                client.delete(*keys)

    settings.LIVE_KEY_PREFIX = prefix
    if shared:
        clear()
    yield prefix
    clear()
    settings.LIVE_KEY_PREFIX = saved
    client.close()


@pytest.fixture(scope="session", autouse=True)
def services(redis_url, kafka_bootstrap, dynamodb_endpoint, model_dir):
    """Point settings and the environment (inherited by subprocesses) at this session's
    services. Autouse: costs ~1 s per session, and keeps tests off real services."""
    from django.conf import settings

    values = {
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "DYNAMODB_ENDPOINT": dynamodb_endpoint,
        "REDIS_URL": redis_url,
        "BROKER_REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "MODEL_DIR": model_dir,
    }
    saved = {name: getattr(settings, name, None) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
    env = {
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "DYNAMODB_ENDPOINT": dynamodb_endpoint,
        "REDIS_URL": redis_url,
        "MODEL_DIR": str(model_dir),
    }
    saved_env = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    _point_celery_at(redis_url)
    yield values
    for name, value in saved.items():
        setattr(settings, name, value)
    for name, value in saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _point_celery_at(redis_url: str) -> None:
    """The Celery app may have read its config already; send tasks to the test Redis."""
    try:
        from webapp.celery import app
    except ImportError:
        return
    app.conf.broker_url = redis_url


def _fresh_table(services, setting: str, ensure) -> str:
    """The table the setting names, created once and emptied before each test that asks for it."""
    from django.conf import settings

    table = getattr(settings, setting)
    ensure(services["DYNAMODB_ENDPOINT"], table)
    _empty_table(services["DYNAMODB_ENDPOINT"], table)
    return table


@pytest.fixture
def clicklog_table(services) -> str:
    return _fresh_table(services, "DYNAMODB_TABLE", ensure_clicklog_table)


@pytest.fixture
def impressions_table(services) -> str:
    return _fresh_table(services, "DYNAMODB_IMPRESSIONS_TABLE", ensure_impressions_table)


def _empty_table(endpoint: str, table: str) -> None:
    import boto3

    resource = boto3.resource("dynamodb", endpoint_url=endpoint, **aws_kwargs())
    handle = resource.Table(table)
    scan = {"ProjectionExpression": "visitor, sk"}
    with handle.batch_writer() as batch:
        while True:
            page = handle.scan(**scan)
            for item in page["Items"]:
                batch.delete_item(Key={"visitor": item["visitor"], "sk": item["sk"]})
            if "LastEvaluatedKey" not in page:
                break
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- the app's processes, started lazily ----------------------------------------------


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, service_stack, log_dir,
                                 request):
    """A SQLite test database is a file, not memory, so the worker subprocess sees it. A MySQL
    one on this machine that does not answer (a bare machine) is a private MariaDB instead."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        db.setdefault("TEST", {})
        db["TEST"].setdefault("NAME", str(Path(settings.VAR_DIR) / "test-db.sqlite3"))
    elif db["ENGINE"] == "django.db.backends.mysql" and db["HOST"] in LOOPBACK and not quietly(
            lambda: mysql_ping(host=db["HOST"] or "localhost", port=int(db["PORT"] or 3306),
                               user=db["USER"] or "root", password=db["PASSWORD"] or "")):
        server = _private_mariadb(service_stack, log_dir)
        _note(request, f"database: no MariaDB let {db['USER'] or 'root'} in at {db['HOST'] or 'localhost'}:"
                       f"{db['PORT'] or 3306}; the tests used their own on {server.address} "
                       f"({server.path}, removed)")
        # The same dict Django's connection reads: it connects to the private server from now on.
        db.update(HOST="127.0.0.1", PORT=server.port, USER="root", PASSWORD="")


LOOPBACK = ("", "localhost", "127.0.0.1", "::1")  # a server elsewhere is never replaced by ours
SERVICE_NOTES = pytest.StashKey[list[str]]()


def _private_mariadb(stack: Stack, log_dir: Path) -> MariaDB:
    """mariadbd on a free port, data in a temp folder (about 120 MB) removed after it stops."""
    path = Path(tempfile.mkdtemp(prefix="cinegraph-mariadb-"))
    stack.exits.callback(shutil.rmtree, path, ignore_errors=True)  # runs after the server's stop
    try:
        return stack.start(MariaDB(path=path, log_dir=log_dir))
    except StackError as exc:
        pytest.fail(str(exc))


def _note(request, line: str) -> None:
    request.config.stash.setdefault(SERVICE_NOTES, []).append(line)


def pytest_configure(config):
    # WhiteNoise warns at each start that STATIC_ROOT is missing: collectstatic fills it for the
    # image and `make demo`, never for the tests, whose pages only name static files (the
    # browser tests' live_server serves them from the apps' folders).
    config.addinivalue_line("filterwarnings", "ignore:No directory at:UserWarning:django.core.handlers.base")


def pytest_terminal_summary(terminalreporter, config):
    """Say so when the tests ran against a Redis or MariaDB of their own."""
    for line in config.stash.get(SERVICE_NOTES, []):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def test_database_url(django_db_setup, django_db_blocker) -> str:
    """DATABASE_URL of the test database pytest-django created (for subprocesses)."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    scheme, port = {
        "django.db.backends.mysql": ("mysql", 3306),
        "django.db.backends.postgresql": ("postgres", 5432),
    }[db["ENGINE"]]
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"{scheme}://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or port}/{db['NAME']}"


@pytest.fixture(scope="session")
def app_process_env(services, test_database_url) -> dict[str, str]:
    return app.app_env({**os.environ, "DATABASE_URL": test_database_url})


@pytest.fixture(scope="module")
def live_workers(service_stack, app_process_env, log_dir):
    """Start live worker processes (`start(index)`), each waited on until `ready.`; all are
    stopped when the module ends, so a test may kill and restart its own."""
    started = []

    def start(index: int = 1):
        try:
            worker = app.celery_worker(app_process_env, index=index, log_dir=log_dir).launch()
        except StackError as exc:
            pytest.fail(str(exc))
        started.append(worker)
        return worker.wait_ready()  # its banner says `ready.`

    yield start
    for worker in reversed(started):
        worker.stop()


@pytest.fixture(scope="module")
def live_celery_worker(live_workers):
    """One live worker (queue `live`, solo pool) for this module's tests."""
    return live_workers(1)


@pytest.fixture(scope="session")
def click_consumer(service_stack, app_process_env, kafka_bootstrap, log_dir):
    """`python -m workers.consumer` as a subprocess; waits until it has joined its group."""
    try:
        consumer = service_stack.start(app.click_consumer(app_process_env, log_dir=log_dir), wait=False)
    except StackError as exc:
        pytest.fail(str(exc))
    return consumer.wait_ready()  # it has joined its group on `kafka_bootstrap`


# Tiny trainings keep the suite fast; the pipeline tests need trained weights, not good ones.
TEST_EPOCHS = {"popular": 0, "lightgcn": 2, "ngcf": 2, "pinsage": 1, "graphfilter": 0, "sasrec": 2}


@pytest.fixture(scope="session")
def trained_models(model_dir):
    """Every model trained briefly on ml-latest-small and published under `model_dir`.

    Trained from the CSV files rather than the database, so tests that count rows in the
    catalogue are not disturbed; `manage.py train` itself is tested in tests/movie/catalogue.
    """
    import numpy as np
    import torch

    from predictors import registry
    from predictors.training import TrainingData
    from predictors.versions import version_make
    from pytorch_models.data.movielens import movie_tags, movies_read, release_detect, tags_read
    from pytorch_models.data.movielens_ratings import ratings_chunks

    release = release_detect(MOVIELENS)
    movies = list(movies_read(release))
    tags = movie_tags(tags_read(release))
    chunks = list(ratings_chunks(release))
    training_data = TrainingData(
        movie_ids=[m.movie_id for m in movies],
        titles=[m.title for m in movies],
        genres=[list(m.genres) for m in movies],
        years=[m.year for m in movies],
        pairs=np.column_stack([np.concatenate([c.users for c in chunks]),
                               np.concatenate([c.movies for c in chunks])]).tolist(),
        tags=[[tag for tag, _ in tags.get(m.movie_id, [])] for m in movies],
        stamps=np.concatenate([c.stamps for c in chunks]),
    )
    # Small sparse products: 2 threads on a busy 2-core box ran ~10x slower than 1.
    torch.set_num_threads(1)
    for model, epochs in TEST_EPOCHS.items():
        if registry.latest_version(model) is None:
            version_make(model=model, training_data=training_data, epochs=epochs)
    return {model: registry.latest_version(model) for model in TEST_EPOCHS}


@pytest.fixture
def catalogue_imported(transactional_db):
    """ml-latest-small in the test database, committed (for the server and worker processes)."""
    from django.core.management import call_command

    call_command("import_movielens", str(MOVIELENS), verbosity=0)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Chromium from apt (`/usr/bin/chromium`); Playwright's own download is not used."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does), "
                    "or set CHROMIUM_PATH")
    return CHROMIUM


@pytest.fixture
def unused_tcp_port() -> int:
    """A loopback port nothing listens on (for tests of a service being down)."""
    return free_port()
