"""The web app's one door to the live path (`livepath`): it never writes the live path's keys
itself, and reads only the dashboard's latency timings.

After a history moves (a log-in, an event forwarded to the account its visitor id moved to),
the visitors involved are queued for the workers, and, when the moved events sort before their
watermarks, their live state is dropped first so the workers rebuild it from the log
(`visitors_changed`). The web app's other news for the workers goes through Kafka
(`eventstore.stream`).
"""

from __future__ import annotations

from collections.abc import Sequence

from livepath import latency
from livepath.queue import visitors_wait
from livepath.state import visitor_forget


def visitors_changed(visitors: Sequence[str], *, replay: bool) -> None:
    """The visitors' logs changed under them: queue them for the live workers. `replay`: the
    new events sort before their watermarks, so their live state is dropped first and the
    workers replay each whole log (`livepath.state.visitor_forget`). Queued in Redis, not only
    told through Kafka, so they are updated even if a notification is lost (the live sweep
    claims waiting visitors)."""
    if replay:
        for visitor in visitors:
            visitor_forget(visitor)
    visitors_wait(visitors)


def latency_last_hour() -> tuple[latency.LatencySummary, list[tuple[float, float]]]:
    """The click → fresh-list timings of the last hour, summarised, for the staff dashboard
    (`livepath.latency.latency_last_hour`; raises RedisError when Redis does not answer)."""
    return latency.latency_last_hour()
