"""The recommendation cache in Redis: `recs:<model>:<visitor>` → JSON.

Value: `{"model_version": ..., "items": [[movie_id, score], ...], "at": unix seconds,
"as_of_event": id of the newest event it reflects}`.
The live workers write it after each fine-tune; web processes only read it.
"""

from __future__ import annotations

import json
import time

from livepath.state import state_ttl_s
from livepath.store import client

# A list expires with the live state it is derived from (settings.LIVE_STATE_TTL_S, a week): a
# visitor who comes back later is scored from the published tables. Bound: one list per
# fine-tuned model (3) per visitor active within that TTL, each predictors.live's CACHED_ITEMS =
# 100 pairs: 3.1 KB (MEMORY USAGE, Redis 7), so about 9.4 KB a visitor. An evictable cache.


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
    (redis or client()).set(key(model, visitor), json.dumps(value), ex=state_ttl_s())


def recommendations_forget(visitor: str, models, redis=None) -> None:
    (redis or client()).delete(*(key(model, visitor) for model in models))
