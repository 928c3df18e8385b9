"""Local Cinegraph stack: start, wait for and stop every service on free ports.

A library (used by tests/conftest.py) and a CLI (used by `make demo`):

    python scripts/stack.py demo       # services, migrate/import/train, workers, beat, consumer, web
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
import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_processes import (  # noqa: E402
    app_env,
    celery_beat,
    celery_ready,
    celery_worker,
    click_consumer,
    consumer_group_ready,
    http_ready,
    manage,
    require_command,
    require_module,
    web_server,
)
from local_services import (  # noqa: E402
    quietly,
    DynamoDB,
    Kafka,
    Process,
    ROOT,
    StackError,
    VAR,
    Valkey,
    ensure_clicklog_table,
    ensure_impressions_table,
    ensure_kafka_topic,
    kafka_ready,
    port_is_free,
    read_env_file,
    redis_ping,
    wait_until,
)

SERVICES_ENV = VAR / "demo-services.env"  # the running demo's service addresses

log = logging.getLogger("stack")

# --- the stack ------------------------------------------------------------------------


class Stack(contextlib.AbstractContextManager):
    """Started processes, stopped in reverse order on exit, Ctrl-C or SIGTERM."""

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    # Restarts of a process that died on its own: after `backoff_s` doubling per fast failure
    # (one within `fast_failure_s` of its start), up to `max_backoff_s`; after
    # `max_fast_failures` in a row the stack gives up, since something is broken, not flaky.
    backoff_s, max_backoff_s, fast_failure_s, max_fast_failures = 1.0, 30.0, 10.0, 5

    def __init__(self):
        self.processes: list[Process] = []
        self.restartable: dict[Process, _Restarts] = {}
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

    def start(self, proc: Process, *, restart: bool = False) -> Process:
        """Start `proc`; with `restart`, `watch` starts it again whenever it dies."""
        self.processes.append(proc)
        if restart:
            self.restartable[proc] = _Restarts()
        proc.start()
        if restart:
            self.restartable[proc].started_at = time.monotonic()
        return proc

    def stop(self) -> None:
        while self.processes:
            self.processes.pop().stop()

    def start_services(
        self, *, dynalite_path: Path = VAR / "dynalite", redis_url: str | None = None
    ) -> dict[str, str]:
        """Redis (reused when `redis_url` answers), Kafka, DynamoDB; topic and table made.
        Returns the environment that points the app at them."""
        if redis_url and quietly(redis_ping, redis_url):
            self.external.append(("redis", redis_url))
        else:
            redis_url = self.start(Valkey()).url
            self.processes[-1].wait_ready()
        kafka = self.start(Kafka())
        dynamo = self.start(DynamoDB(path=dynalite_path))
        kafka.wait_ready()
        ensure_kafka_topic(kafka.bootstrap)
        ensure_kafka_topic(kafka.bootstrap, "impressions")
        dynamo.wait_ready()
        ensure_clicklog_table(dynamo.endpoint)
        ensure_impressions_table(dynamo.endpoint)
        return {
            "KAFKA_BOOTSTRAP": kafka.bootstrap,
            "DYNAMODB_ENDPOINT": dynamo.endpoint,
            "REDIS_URL": redis_url,
        }

    def watch(self) -> None:
        """Block until we are interrupted, restarting what may restart (see `check`)."""
        while True:
            self.check()
            time.sleep(0.5)

    def check(self) -> None:
        """Restart a restartable child that died, once its backoff has passed; raise if any
        other child died, or a restartable one keeps failing fast."""
        now = time.monotonic()
        for proc in self.processes:
            code = proc.poll()
            if code is None:
                continue
            restarts = self.restartable.get(proc)
            if restarts is None:
                raise StackError(f"{proc.name} (pid {proc.pid}) exited with code {code}\n{proc.log_tail()}")
            if restarts.due_at is None:  # just found dead: schedule the restart
                fast = now - restarts.started_at < self.fast_failure_s
                restarts.fast_failures = restarts.fast_failures + 1 if fast else 0
                if restarts.fast_failures >= self.max_fast_failures:
                    raise StackError(f"{proc.name} died {restarts.fast_failures} times within "
                                     f"{self.fast_failure_s:.0f} s of starting; giving up\n{proc.log_tail()}")
                delay = min(self.backoff_s * 2 ** max(restarts.fast_failures - 1, 0), self.max_backoff_s)
                restarts.due_at = now + delay
                log.warning("%s (pid %s) exited with code %s; restarting in %.0f s", proc.name, proc.pid, code, delay)
            elif now >= restarts.due_at:
                proc.start()
                restarts.started_at, restarts.due_at = time.monotonic(), None

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


@dataclasses.dataclass
class _Restarts:
    started_at: float = 0.0
    fast_failures: int = 0
    due_at: float | None = None  # when a dead process is to be started again


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


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
    live_workers = int(os.environ.get("WORKERS") or 1)
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
        # Where tools (benchmarks.click_load, manage.py by hand) find the services.
        SERVICES_ENV.write_text("".join(f"{k}={v}\n" for k, v in services.items()))
        print(f"services up in {time.monotonic() - started:.1f} s", flush=True)
        migrate_s = manage(env, "migrate", "--noinput", ours=False)
        timings = {"migrate": migrate_s}
        timings["import"] = manage(
            env, "import_movielens", str(ROOT / "data" / "ml-latest-small")
        )
        timings["train"] = manage(env, "train", "--missing")
        print(
            "  " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()), flush=True
        )
        workers = [
            stack.start(celery_worker(env, index=i + 1), restart=True)
            for i in range(live_workers)
        ]
        workers.append(stack.start(celery_worker(env, queue="retrain"), restart=True))
        stack.start(celery_beat(env), restart=True)
        consumer = stack.start(click_consumer(env), restart=True)
        web = stack.start(web_server(env, port), restart=True)
        for worker in workers:
            wait_until(
                lambda: celery_ready(worker), timeout=90, what=worker.name, proc=worker
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
    ensure_kafka_topic(env["KAFKA_BOOTSTRAP"], env.get("KAFKA_IMPRESSIONS_TOPIC") or "impressions")
    endpoint = env.get("DYNAMODB_ENDPOINT") or None
    table = env.get("DYNAMODB_TABLE") or "clicklog"
    wait_until(
        lambda: ensure_clicklog_table(endpoint, table) in (True, False),
        timeout=120,
        what="dynamodb",
    )
    ensure_impressions_table(endpoint, env.get("DYNAMODB_IMPRESSIONS_TABLE") or "impressions")


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
