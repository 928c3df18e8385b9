"""Celery tasks: `live` folds waiting visitors' clicks into the models, `retrain` publishes
new versions. Both queues can have any number of worker processes on any machine."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import secrets
from datetime import UTC, datetime, timedelta

import dgl.utils
import redis
import torch
from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.core.management import call_command

from eventstore import expiry
from eventstore.clicklog import events_for
from livepath.queue import queue_key, visitors_wait
from livepath.state import visitors_behind
from movie.catalogue.selectors import training_snapshot
from movie.tracking.selectors import visitor_interactions, visitors_recent
from movie.tracking.services import history_expire, impressions_expire
from predictors.live import LiveEngine
from predictors.retrain import RetrainBudget, snapshot_shared
from predictors.versions import version_make
from pytorch_models.models.names import GRADIENT_TRAINED_MODELS, SEQUENCE_MODELS, SERVED_MODELS
from pytorch_models.training import distributed

log = logging.getLogger(__name__)

# A fold-in is a few small products: with 2 threads on a 2-core box shared with the web
# server they ran ~10x slower than with 1 (ml-latest-small propagation, 21 ms vs 1.9 ms).
FOLD_IN_THREADS = 1


@functools.cache
def live_engine() -> LiveEngine:
    return LiveEngine(idle_s=settings.LIVE_VISITOR_IDLE_S)


@worker_ready.connect
def _start_live(sender, **_kwargs) -> None:
    if "live" not in {queue.name for queue in sender.task_consumer.queues}:
        return
    torch.set_num_threads(FOLD_IN_THREADS)
    live_engine().warm_up()  # load the models and their scratch memory before a visitor waits
    live_tick()  # visitors a dead worker held come back after their lease


# DynamoDB's answers that say "slow down" or "try again", as opposed to a request that can
# never succeed (validation, missing table, access denied).
RETRYABLE_AWS_CODES = frozenset({
    "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
    "InternalServerError", "ServiceUnavailable",
})


class TransientError(Exception):
    """A failure worth retrying (`is_transient`), raised from the original so Celery retries it."""


def is_transient(exc: BaseException) -> bool:
    """Network trouble with DynamoDB or Redis, or DynamoDB throttling: gone after a short wait."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") in RETRYABLE_AWS_CODES
    return isinstance(exc, (BotoCoreError, redis.ConnectionError, redis.TimeoutError))


def retry_transient(task_body):
    """Celery retries by exception class only; a ClientError is transient or not by its code."""
    @functools.wraps(task_body)
    def run(*args, **kwargs):
        try:
            return task_body(*args, **kwargs)
        except Exception as exc:
            if is_transient(exc):
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            raise
    return run


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def broker() -> redis.Redis:
    """The broker's Redis, never evicted: the tick slots and the retrain lock describe its messages."""
    return _redis(settings.BROKER_REDIS_URL)


# The app's own ticks (the consumer's, the reconcile sweep's, a starting worker's) wait in the
# broker TICK_SLOTS at a time at most, and expire unstarted after TICK_EXPIRES_S (beat's sweep
# expires after its own 30 s period: settings). A tick carries no visitors: one that starts
# drains every visitor waiting by then, so more waiting ticks would only wake more idle workers,
# and one that waited this long found every worker busy draining (they take its visitors) or
# none running (the sweep sends a fresh one). Uncapped, the consumer sent two per polled batch,
# up to 10 a second, piling up in the broker while no live worker ran.
TICK_SLOTS = 2
TICK_EXPIRES_S = 10
_FREE_SLOT = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end"


def live_tick(ticks: int = 1) -> int:
    """Send up to `ticks` live ticks, each only into a free slot (`<LIVE_KEY_PREFIX>:tick:<n>`,
    held until the tick starts or expires); returns how many were sent."""
    sent = 0
    for slot in (queue_key(f"tick:{n}") for n in range(TICK_SLOTS)):
        if sent == ticks:
            break
        tick = secrets.token_hex(8)
        if not broker().set(slot, tick, nx=True, ex=TICK_EXPIRES_S):
            continue
        try:
            update_waiting_visitors.apply_async(kwargs={"slot": slot, "tick": tick}, expires=TICK_EXPIRES_S)
        except Exception:
            broker().eval(_FREE_SLOT, 1, slot, tick)
            raise
        sent += 1
    return sent


# A tick carries no visitor ids: visitors wait in Redis (<prefix>:waiting, or :claimed until
# their 30 s lease runs out) for the next click's tick or beat's sweep every 30 s, and no click
# is lost (the click log keeps it, the watermark applies it once). A micro-batch that raised is
# put back in waiting before its claims are released (LiveEngine.drain).
@shared_task(
    autoretry_for=(TransientError,),
    retry_backoff=0.2,
    retry_backoff_max=5,
    max_retries=5,
    acks_late=True,
)
@retry_transient
def update_waiting_visitors(slot: str | None = None, tick: str | None = None) -> int:
    """Fold in every waiting visitor this worker can claim, a micro-batch at a time. A tick
    from `live_tick` first frees its slot (`slot` if it still holds `tick`: a retry finds it
    taken by a newer tick), so a click from now on sends a tick of its own."""
    if slot:
        broker().eval(_FREE_SLOT, 1, slot, tick or "")
    return sum(report.updated for report in live_engine().drain(_read_log))


def _read_log(visitor: str, after: str | None):
    """The visitor's log after `after`, pending items too: the engine waits for young ones."""
    return events_for(visitor, after, pending=True)


# A retrain holds this lock while it runs, so a second one (a beat message that waited behind a
# long retrain, one started by hand) skips instead of training beside it. It outlives the
# longest retrain (up to an hour a model on Gowalla, docs/benchmarks.md) like the broker's
# visibility_timeout, after which Celery would hand the message out again; released at the end.
RETRAIN_LOCK = "cinegraph:retrain:running"
RETRAIN_LOCK_S = 6 * 3600


def one_at_a_time(name: str, *, hold_s: float):
    """Run the decorated task body only while it holds lock `name` (the broker's Redis, a token
    per run, held at most `hold_s`, released when the body ends); a run that finds the lock
    held logs so and returns {} at once."""
    def decorate(body):
        @functools.wraps(body)
        def run(*args, **kwargs):
            lock = broker().lock(name, timeout=hold_s, blocking=False)
            if not lock.acquire():
                log.info("%s skipped: another run holds %s", body.__name__, name)
                return {}
            try:
                return body(*args, **kwargs)
            finally:
                try:
                    lock.release()
                except redis.exceptions.LockError:
                    log.warning("%s ran past its lock's %d s: another run may have started", body.__name__,
                                math.ceil(hold_s))
        return run
    return decorate


@contextlib.contextmanager
def threads_at_most(n: int):
    """Run the block with `n` torch and DGL threads, then put back what was there. Torch's
    default is a thread per core: a retrain would take every core the web server has."""
    before = torch.get_num_threads(), dgl.utils.get_num_threads()
    torch.set_num_threads(n)
    dgl.utils.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        dgl.utils.set_num_threads(before[1])


@shared_task(acks_late=True)
@one_at_a_time(RETRAIN_LOCK, hold_s=RETRAIN_LOCK_S)
def retrain_models(epochs: int | None = None, models: list[str] | None = None) -> dict:
    """Retrain each model (default: every one) on the ratings plus the visitors' clicks (their
    dismissals as negatives), capped per visitor and per client, within the settings' budget
    (`predictors.retrain.RetrainBudget`: seconds per model, new pairs plus a replay sample,
    RETRAIN_THREADS cores); publish those
    whose data changed and that pass the gate. After a publish a live tick wakes a live worker,
    which loads the new versions and re-derives the visitors on the replaced ones
    (predictors.live.LiveEngine.refresh) without waiting for a click or beat's sweep."""
    return retrain_run(models, epochs)


def retrain_run(models: list[str] | None = None, epochs: int | None = None) -> dict:
    """The retrain's body (`retrain_models`; `workers.retrain` runs it on one process or as each
    rank of a torchrun): the snapshot (rank 0's, on every rank), each model's version, a live
    tick after a publish. Under torchrun the closed-form models are fitted by rank 0 alone,
    and rank 0 publishes; the other ranks' results say so."""
    budget = RetrainBudget.from_settings()
    primary = distributed.current().primary
    models = models or SERVED_MODELS
    training_data, visitor_pairs, dismissals = snapshot_shared(
        training_snapshot(stamps=any(m in SEQUENCE_MODELS for m in models)) if primary else None,
        visitor_interactions() if primary else None,
        visitor_interactions(dismissed=True) if primary else None)
    results = {}
    with threads_at_most(budget.threads):
        for model in models:
            if not primary and model not in GRADIENT_TRAINED_MODELS:
                results[model] = {"model": model, "published": False, "reason": "fitted by rank 0"}
                continue
            made = version_make(model=model, training_data=training_data, visitor_pairs=visitor_pairs,
                                dismissals=dismissals, epochs=epochs, warm_start=True, gated=True,
                                budget=budget)
            results[model] = made.summary()
    if any(result["published"] for result in results.values()):
        live_tick()
    return results


# How far back the sweep looks for visitors whose live state is behind their history.
RECONCILE_WINDOW_S = 15 * 60


@shared_task(acks_late=True)
def reconcile_visitors(window_s: float = RECONCILE_WINDOW_S) -> int:
    """Mark waiting every visitor whose history (the mirror, last `window_s`) is ahead of its
    live state. What it repairs: a Redis that lost its queue and states (a restart) after the
    consumer had committed the clicks' offsets. Returns how many were behind."""
    since = datetime.now(UTC) - timedelta(seconds=window_s)
    behind = visitors_behind(visitors_recent(since))
    if behind:
        visitors_wait(behind)
        live_tick()
    return len(behind)


# Upkeep (beat, webapp/settings.py) has a queue and a worker of its own: seconds of work that
# must hold up neither a live worker's ticks nor wait behind a retrain. On the retrain worker it
# starved: under the soak's load a retrain took 20 minutes, and every upkeep task beat sent
# meanwhile expired unstarted, so history rows, sessions and click-log items grew (benchmarks.soak).
UPKEEP_QUEUE = "upkeep"


@shared_task(queue=UPKEEP_QUEUE, acks_late=True)
def sessions_clear() -> None:
    """Delete the expired sessions (Django's clearsessions, daily): the table then holds the
    sessions of the last SESSION_COOKIE_AGE (two weeks) only."""
    call_command("clearsessions")


@shared_task(queue=UPKEEP_QUEUE, acks_late=True)
def expired_items_delete() -> dict[str, list[int]]:
    """Delete click-log and impression items past their retention where no TTL does
    (eventstore.expiry): table -> [items read, deleted]."""
    return {table: list(counts) for table, counts in expiry.tables_sweep().items()}


@shared_task(queue=UPKEEP_QUEUE, acks_late=True)
def mirrors_expire() -> dict[str, int]:
    """Delete history rows past the click log's retention or past a visitor's history cap, and
    impression rows past theirs (movie.tracking.services): table -> rows deleted this run."""
    return {
        "history": history_expire(retention_days=settings.CLICKLOG_RETENTION_DAYS,
                                  per_visitor=settings.VISITOR_HISTORY_MAX),
        "impressions": impressions_expire(retention_days=settings.IMPRESSIONS_RETENTION_DAYS),
    }
