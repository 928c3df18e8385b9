"""The fault rig of `benchmarks.faults` and tests/test_faults.py: private Kafka, DynamoDB and
Redis and the app's processes, each restartable on its port, and the faults injected into them."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

from devstack import app
from devstack.process import free_port
from devstack.services import DynamoDB, Kafka, RedisServer, ensure_clicklog_table


class Rig:
    """Private Kafka, DynamoDB and Redis, plus the app's web, live worker, consumer and beat,
    each restartable on the same port; the database is the caller's (`env["DATABASE_URL"]`)."""

    def __init__(self, env: dict[str, str], *, log_dir: Path, model_dir: Path):
        self.log_dir, self.tmp = Path(log_dir), Path(tempfile.mkdtemp(prefix="faults-"))
        self.redis = RedisServer(log_dir=log_dir)
        self.kafka = Kafka(log_dir=log_dir)
        self.dynamodb = DynamoDB(path=self.tmp / "dynalite", log_dir=log_dir)
        self.web_port = free_port()
        self.env = app.app_env({
            **env,
            "REDIS_URL": self.redis.url, "BROKER_REDIS_URL": self.redis.url,
            "KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "DYNAMODB_ENDPOINT": self.dynamodb.endpoint, "MODEL_DIR": str(model_dir),
            "LIVE_RECONCILE_S": "5", "RETRAIN_EVERY": "0",
            "RATE_LIMIT_SESSIONS_PER_MINUTE": "100000", "RATE_LIMIT_EVENTS_PER_MINUTE": "100000",
        })
        self.web = self.worker = self.consumer = self.beat = None
        # What the last fault did that anyone could see (each fault's own effect): a process
        # replaced (its PID), a Redis that came back empty (its run id, the keys it held).
        self.felt: dict = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def __enter__(self) -> Rig:
        for service in (self.redis, self.kafka, self.dynamodb):
            service.launch()
        self.redis.wait_ready()
        self.kafka.wait_ready()  # and its topics made
        self.dynamodb.wait_ready()
        ensure_clicklog_table(self.dynamodb.endpoint, "clicklog")
        self.start_worker()
        self.start_consumer()
        self.beat = app.celery_beat(self.env, log_dir=self.log_dir).start()
        self.start_web()
        return self

    def __exit__(self, *exc) -> None:
        for proc in (self.web, self.beat, self.consumer, self.worker, self.dynamodb, self.kafka, self.redis):
            if proc is not None:
                proc.stop()

    def start_web(self, crash: str = "") -> None:
        if self.web is not None:
            self.web.stop()
        env = {**self.env, "CINEGRAPH_FAULT_CRASH": crash}
        self.web = app.web_server(env, self.web_port, log_dir=self.log_dir).start()  # until `/` answers

    def start_worker(self) -> None:
        self.worker = app.celery_worker(self.env, log_dir=self.log_dir).start()  # until it is `ready.`

    def start_consumer(self) -> None:
        self.consumer = app.click_consumer(self.env, log_dir=self.log_dir).start()  # until it joins its group

    def _kill(self, proc) -> None:
        """SIGKILL to its own session (only what it started), noting its PID and that it is gone."""
        pid = proc.pid
        proc.kill()
        self.felt.update(killed_pid=pid, killed_gone=not _alive(pid))

    def _restart(self, proc, down_s: float) -> None:
        self._kill(proc)
        time.sleep(down_s)
        proc.start()  # until it is ready
        self.felt["new_pid"] = proc.pid

    # The faults, each injected while the visitors click, and healed before it returns.
    def kafka_pause(self) -> None:
        os.kill(self.kafka.pid, signal.SIGSTOP)
        time.sleep(3)
        os.kill(self.kafka.pid, signal.SIGCONT)

    def kafka_restart(self) -> None:
        self._restart(self.kafka, 1)  # in-memory: topics and offsets are gone; `start` makes the topics

    def worker_kill(self) -> None:
        time.sleep(0.5)
        self._kill(self.worker)
        self.start_worker()
        self.felt["new_pid"] = self.worker.pid

    def consumer_kill(self) -> None:
        self._kill(self.consumer)
        self.start_consumer()
        self.felt["new_pid"] = self.consumer.pid

    def redis_restart(self) -> None:
        before = _redis_info(self.redis.url)
        self._restart(self.redis, 1)  # no persistence: queue, claims, states and caches are gone
        after = _redis_info(self.redis.url)  # read at once: the app refills it within moments
        self.felt.update(run_id_changed=before["run_id"] != after["run_id"], keys_before=before["keys"],
                         keys_after=after["keys"])

    def dynamodb_stop(self) -> None:
        self._restart(self.dynamodb, 3)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _redis_info(url: str) -> dict:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        return {"run_id": client.info("server")["run_id"], "keys": client.dbsize()}
    finally:
        client.close()
