"""Celery tasks: `live` folds waiting visitors' clicks into the models, `retrain` publishes
new versions. Both queues can have any number of worker processes on any machine."""

from __future__ import annotations

import dataclasses
import functools

import redis
import torch
from botocore.exceptions import BotoCoreError
from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from movie.clicklog import events_for
from movie.selectors import training_snapshot, visitor_interactions
from predictors.live import LiveEngine
from predictors.recommend import MODELS
from predictors.retrain import retrain


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


@shared_task(
    autoretry_for=(BotoCoreError, redis.ConnectionError),
    retry_backoff=0.2,
    retry_backoff_max=5,
    max_retries=5,
    acks_late=True,
)
def update_waiting_visitors() -> int:
    """Fold in every waiting visitor this worker can claim, a micro-batch at a time."""
    return sum(report.updated for report in live_engine().drain(events_for))


@shared_task(acks_late=True)
def retrain_models(epochs: int | None = None) -> dict:
    """Retrain every model on the ratings plus every visitor's clicks; publish those not worse."""
    catalogue, visitor_pairs = training_snapshot(), visitor_interactions()
    return {model: dataclasses.asdict(retrain(model=model, catalogue=catalogue, visitor_pairs=visitor_pairs,
                                              epochs=epochs)) for model in MODELS}
