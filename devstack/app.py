"""The app's own processes: web, live and retrain workers, beat, the consumer, and one-off
manage.py commands, each a `Process` with its readiness check. No Django import here."""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.process import LOG_DIR, Process, StackError, dev_env
from eventstore import CONSUMER_GROUP  # a name only: eventstore/__init__.py imports nothing


def app_env(services: Mapping[str, str]) -> dict[str, str]:
    """Environment for manage.py, Celery, the consumer and the web server."""
    env = {**dev_env(), **services}
    env.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def celery_worker(env: Mapping[str, str], *, queue: str = "live", index: int = 1,
                  log_dir: Path = LOG_DIR) -> Process:
    """One Celery worker process on `queue` (solo pool: one task at a time, torch owns
    the process); start several for more throughput, here or on other machines."""
    name = f"{queue}{index}"
    # A retrain trains for a minute or more on the cores the live path uses: at a lower
    # priority it takes what the live path leaves.
    nice = ["nice", "-n", "10"] if queue in ("retrain", "upkeep") else []
    # Before `ready.` it imports torch and loads every published model: allow for a busy machine.
    worker = Process(f"worker-{name}", [*nice, sys.executable, "-m", "celery", "-A", "webapp", "worker",
                                        "-Q", queue, "-n", f"{name}@%h", "--pool", "solo", "-l", "info"],
                     env=env, check=lambda: celery_ready(worker), ready_s=120, log_dir=log_dir)
    return worker


def celery_beat(env: Mapping[str, str], *, log_dir: Path = LOG_DIR) -> Process:
    """The scheduler: the periodic sweep of waiting visitors and the scheduled retrain."""
    schedule = Path(log_dir).parent / "celerybeat-schedule"
    return Process("beat", [sys.executable, "-m", "celery", "-A", "webapp", "beat", "-s", str(schedule),
                            "-l", "info"],
                   env=env, log_dir=log_dir)


def click_consumer(env: Mapping[str, str], *, log_dir: Path = LOG_DIR) -> Process:
    """`python -m workers.consumer`, ready once it has joined its group on env's Kafka."""
    return Process("consumer", [sys.executable, "-m", "workers.consumer"], env=env,
                   check=lambda: consumer_group_ready(env["KAFKA_BOOTSTRAP"]), ready_s=60, log_dir=log_dir)


# The web server is granian (HTTP in Rust, Django on WSGI). Against gunicorn (4 processes x 4
# threads, no access log) on the same code and cores it spent 1.6 against 3.5 ms of CPU per
# request on the papers page and 2.7 against 4.7 on the JSON API (benchmarks.pages): the
# server's own share of a small page was most of its cost.
# One process per core (at least two, so one serves while a dead one is started again): under
# its GIL a process runs one request at a time, so more processes than cores only split the
# cores, and a keep-alive connection stays with the process that accepted it, so a process
# that drew more connections serves each of them more slowly. At 16 connections on 2 cores, 4
# processes drew up to 7 connections in one (those waited 66 ms a request, the rest 24-35) and
# 2 processes split them 7/9 or 8/8: the pages' p95 went from 53-86 to 48-60 ms and their
# throughput up by a tenth (docs/benchmarks.md, "Fourth round"). Four threads per process
# overlap the waits (the database, Redis; a click's DynamoDB and Kafka writes); two gave a
# tenth less throughput, eight a longer tail (threads contend for the GIL in no fixed order).
# Each process holds about 580 MB (torch, the published models). A process that dies is
# started again (the fault tests kill them). No access log; Django still logs every 4xx and
# 5xx (django.request).
WEB_PROCESSES = max(2, os.cpu_count() or 2)
WEB_THREADS = 4


def web_server(env: Mapping[str, str], port: int, *, processes: int = WEB_PROCESSES,
               log_dir: Path = LOG_DIR) -> Process:
    """granian on 127.0.0.1:`port`, ready once `/` answers."""
    return Process("web", [sys.executable, "-m", "granian", "--interface", "wsgi", "webapp.wsgi:application",
                           "--host", "127.0.0.1", "--port", str(port), "--workers", str(processes),
                           "--blocking-threads", str(WEB_THREADS), "--respawn-failed-workers",
                           "--respawn-interval", "0.5"],
                   env=env, port=port, check=lambda: http_ready(f"http://127.0.0.1:{port}/"), ready_s=60,
                   log_dir=log_dir)


def trainer(env: Mapping[str, str], *, log_dir: Path = LOG_DIR) -> Process:
    """`manage.py train --missing` as a job: every model still without a version, one at a time,
    each published (and so served: the registry reads the newest folder) as soon as it is
    trained; at a lower priority, as the retrain worker, so pages keep their cores. Run again
    after a failure, it trains only what is still missing."""
    return Process("train", ["nice", "-n", "10", sys.executable, "manage.py", "train", "--missing"],
                   env=env, log_dir=log_dir)


def celery_ready(worker: Process) -> bool:
    """The worker's banner line `ready.` since its last launch (the log's last `===` header)."""
    return "ready." in worker.log_path.read_text(errors="replace").rsplit("\n=== ", 1)[-1]


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
        return True  # it answered; a 404/500 page is the app's business, not the stack's
    return True


def manage(env: Mapping[str, str], *args: str, log_dir: Path = LOG_DIR) -> float:
    """Run a manage.py command to completion, output to var/log/manage.log; seconds taken."""
    proc = Process("manage", [sys.executable, "manage.py", *args], env=env, log_dir=log_dir)
    start = time.monotonic()
    try:
        code = proc.launch().process.wait()
    finally:
        proc.stop()
    if code != 0:
        raise StackError(f"manage.py {' '.join(args)} failed (exit {code})\n{proc.log_tail()}")
    return time.monotonic() - start


def manage_together(env: Mapping[str, str], commands: Mapping[str, Sequence[str]], *,
                    log_dir: Path = LOG_DIR) -> float:
    """Run manage.py commands side by side to completion, each `name: args` with its output in
    var/log/<name>.log; seconds taken. Raises once all have ended if any failed."""
    procs = {name: Process(name, [sys.executable, "manage.py", *args], env=env, log_dir=log_dir)
             for name, args in commands.items()}
    start = time.monotonic()
    try:
        for proc in procs.values():
            proc.launch()
        codes = {name: proc.process.wait() for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.stop()
    failed = [f"manage.py {' '.join(commands[name])} failed (exit {code})\n{procs[name].log_tail()}"
              for name, code in codes.items() if code != 0]
    if failed:
        raise StackError("\n".join(failed))
    return time.monotonic() - start
