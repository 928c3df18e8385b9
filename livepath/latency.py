"""Click → fresh-recommendation latency, as the live workers measure it.

After a micro-batch's lists are written, `timings_record` stores, for every event the batch
applied, the time from the event's creation (its `ts`, taken by the web process before any
write) to the moment its visitor's fresh lists were in Redis: the request's writes, Kafka, the
consumer, the Celery tick, the click-log read and the fold-in, end to end. A replay of a whole
log (a history moved on log-in, see `livepath.state.visitor_forget`) is not timed: its events
are old clicks, not clicks waiting for a list.

`live:latency` is a sorted set scored by the write time (unix seconds); each member is
`<seconds>:<random>` (the random part keeps equal timings apart). Every write trims it to the
last WINDOW_S and to MAX_TIMINGS members, so its size is bounded whatever the traffic.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass

from livepath.store import client

KEY = "live:latency"
WINDOW_S = 3600  # the dashboard's "last hour"
# At this cap the set holds 2.5 MB of Redis (MEMORY USAGE) and the dashboard reads and
# summarises it in ~90 ms; a worker's write with its trims takes 0.1 ms for one event and
# 0.6 ms for 64 (local Redis). Past MAX_TIMINGS applied events an hour the window is the newest
# MAX_TIMINGS rather than the hour; p95 still rests on the 1,000 timings above it.
MAX_TIMINGS = 20_000


def timings_record(seconds: Sequence[float], *, at: float) -> None:
    """Store the timings of one batch written at `at` (unix seconds), and trim the set."""
    if not seconds:
        return
    pipe = client().pipeline(transaction=False)
    pipe.zadd(KEY, {f"{s:.6f}:{secrets.token_hex(4)}": at for s in seconds})
    pipe.zremrangebyscore(KEY, "-inf", f"({at - WINDOW_S}")
    pipe.zremrangebyrank(KEY, 0, -MAX_TIMINGS - 1)
    pipe.execute()


def timings_read(*, now: float) -> list[tuple[float, float]]:
    """(written at, seconds) of every timing in the WINDOW_S before `now`, oldest first."""
    raw = client().zrangebyscore(KEY, now - WINDOW_S, "+inf", withscores=True)
    return [(at, float(member.split(b":", 1)[0])) for member, at in raw]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolating linearly between the two nearest ranks
    (numpy's default), so p50 of an even count is the mean of the middle two."""
    if not values:
        raise ValueError("the percentile of no values is undefined")
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50: float | None  # seconds; None without timings
    p95: float | None
    window_s: float


def latency_summary(timings: Sequence[tuple[float, float]], *, now: float,
                    window_s: float = WINDOW_S) -> LatencySummary:
    """p50 and p95 of the timings written in the `window_s` before `now` (later ones too: a
    worker's clock may run ahead of the reader's)."""
    recent = [seconds for at, seconds in timings if at >= now - window_s]
    if not recent:
        return LatencySummary(0, None, None, window_s)
    return LatencySummary(len(recent), percentile(recent, 50), percentile(recent, 95), window_s)


def latency_last_hour() -> tuple[LatencySummary, list[tuple[float, float]]]:
    """The last hour's summary and its timings, read from Redis (raises RedisError when down)."""
    now = time.time()
    timings = timings_read(now=now)
    return latency_summary(timings, now=now), timings
