"""Celery tasks on queue `graph`: the one consumer of model state."""

from __future__ import annotations

import functools
import logging

import redis
import torch
from botocore.exceptions import BotoCoreError
from celery import shared_task
from celery.signals import worker_ready

from movie.clicklog import events_for
from predictors.worker_state import GraphWorker

log = logging.getLogger(__name__)


@functools.cache
def graph_worker() -> GraphWorker:
    return GraphWorker()


# One fine-tune is a few small sparse products: with 2 threads on a 2-core box shared with
# the web server they ran ~10x slower than with 1 (ml-latest-small propagation, 21 ms vs 1.9 ms).
FINE_TUNE_THREADS = 1


@worker_ready.connect
def _load_models(**_kwargs) -> None:
    # Load the graph and weights before the first visitor waits for them.
    torch.set_num_threads(FINE_TUNE_THREADS)
    graph_worker()


@shared_task(
    autoretry_for=(BotoCoreError, redis.ConnectionError),
    retry_backoff=0.2,
    retry_backoff_max=5,
    max_retries=5,
    acks_late=True,
)
def update_visitor(visitor: str) -> dict | None:
    """Apply `visitor`'s new events to the graph, fine-tune, refresh their cached top-k."""
    timings = graph_worker().apply(visitor, [e.as_dict() for e in events_for(visitor)])
    log.info("updated %s: %s", visitor, timings)
    return timings
