"""Celery tasks: `live` folds waiting visitors' clicks into the models, `retrain` publishes
new versions. Both queues can have any number of worker processes on any machine."""

from __future__ import annotations

import dataclasses
import functools
from datetime import datetime, timedelta, timezone

import redis
import torch
from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from eventstore.clicklog import events_for
from movie.selectors import training_snapshot, visitor_interactions, visitors_recent
from predictors.live import LiveEngine
from predictors.recommend import MODELS
from predictors.retrain import retrain
from predictors.visitor_state import visitors_behind, visitors_wait


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
    update_waiting_visitors.delay()  # visitors a dead worker held come back after their lease


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


# A tick carries no visitor ids: visitors wait in Redis (live:waiting, or live:claimed until
# their 30 s lease runs out) for the next click's tick or beat's sweep every 30 s, and no click
# is lost (the click log keeps it, the watermark applies it once). A micro-batch that raised is
# put back in live:waiting before its claim is released (LiveEngine.drain).
@shared_task(
    autoretry_for=(TransientError,),
    retry_backoff=0.2,
    retry_backoff_max=5,
    max_retries=5,
    acks_late=True,
)
@retry_transient
def update_waiting_visitors() -> int:
    """Fold in every waiting visitor this worker can claim, a micro-batch at a time."""
    return sum(report.updated for report in live_engine().drain(_read_log))


def _read_log(visitor: str, after: str | None):
    """The visitor's log after `after`, pending items too: the engine waits for young ones."""
    return events_for(visitor, after, pending=True)


@shared_task(acks_late=True)
def retrain_models(epochs: int | None = None) -> dict:
    """Retrain every model on the ratings plus every visitor's clicks; publish those not worse."""
    training_data, visitor_pairs = training_snapshot(), visitor_interactions()
    return {model: dataclasses.asdict(retrain(model=model, training_data=training_data, visitor_pairs=visitor_pairs,
                                              epochs=epochs)) for model in MODELS}


# How far back the sweep looks for visitors whose live state is behind their history.
RECONCILE_WINDOW_S = 15 * 60


@shared_task(acks_late=True)
def reconcile_visitors(window_s: float = RECONCILE_WINDOW_S) -> int:
    """Mark waiting every visitor whose history (the mirror, last `window_s`) is ahead of its
    live state. What it repairs: a Redis that lost its queue and states (a restart) after the
    consumer had committed the clicks' offsets. Returns how many were behind."""
    since = datetime.now(timezone.utc) - timedelta(seconds=window_s)
    behind = visitors_behind(visitors_recent(since))
    if behind:
        visitors_wait(behind)
        update_waiting_visitors.delay()
    return len(behind)
