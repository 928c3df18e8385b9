"""The recommendation cache in Redis: `recs:<model>:<visitor>` → JSON.

Value: `{"model_version": ..., "items": [[movie_id, score], ...], "at": unix seconds,
"as_of_event": id of the newest event it reflects}`.
The live workers write it after each fine-tune; web processes only read it.
"""

from __future__ import annotations

import functools
import json
import time

import redis
from django.conf import settings

# A visitor who has not come back in a week gets recomputed from the published tables. Bound:
# one list per fine-tuned model (3) per visitor active within TTL_S, each predictors.live's
# CACHED_ITEMS = 100 pairs: 3.1 KB (MEMORY USAGE, Redis 7), so about 9.4 KB a visitor. An
# evictable cache (the live state has the same TTL: predictors.visitor_state).
TTL_S = 7 * 24 * 3600


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)


def key(model: str, visitor: str) -> str:
    return f"recs:{model}:{visitor}"


def recommendations_get(model: str, visitor: str) -> dict | None:
    raw = client().get(key(model, visitor))
    return json.loads(raw) if raw else None


def recommendations_set(
    model: str, visitor: str, *, model_version: str, items: list[tuple[int, float]], as_of_event: str,
    redis=None,
) -> None:
    """Store a visitor's list; `redis`: a pipeline to queue the write on (default: now)."""
    value = {
        "model_version": model_version,
        "items": [[int(m), float(s)] for m, s in items],
        "at": time.time(),
        "as_of_event": as_of_event,
    }
    (redis or client()).set(key(model, visitor), json.dumps(value), ex=TTL_S)


def recommendations_forget(visitor: str, models, redis=None) -> None:
    (redis or client()).delete(*(key(model, visitor) for model in models))
