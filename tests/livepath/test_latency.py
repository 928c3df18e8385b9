"""Click → fresh-list latency: the pure percentile and window arithmetic, the bounded sorted set
in the real Redis, and the timings the live engine records against the real click log."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from eventstore import clicklog
from eventstore.clicklog import Event
from predictors import TS_FORMAT, cache, latency, visitor_state
from predictors.live import LiveEngine


@pytest.mark.parametrize("values", [[3.0], [1.0, 2.0], [5.0, 1.0, 4.0, 2.0, 3.0],
                                    [0.1, 0.1, 7.5, 0.2, 0.9, 1.3]])
@pytest.mark.parametrize("q", [0, 50, 95, 100])
def test_percentile_interpolates_like_numpy(values, q):
    assert latency.percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        latency.percentile([], 50)


def test_summary_counts_only_the_window():
    now = 10_000.0
    timings = [(now - 3601, 9.0), (now - 3600, 0.4), (now - 10, 0.1), (now - 5, 0.2), (now + 1, 0.3)]

    summary = latency.latency_summary(timings, now=now)

    # In the window: 0.4 0.1 0.2 0.3 -> sorted 0.1 0.2 0.3 0.4; p50 0.25, p95 0.3 + 0.85 x 0.1.
    assert (summary.count, summary.p50, summary.p95) == (4, pytest.approx(0.25), pytest.approx(0.385))
    assert latency.latency_summary(timings[:1], now=now) == latency.LatencySummary(0, None, None, 3600)


@pytest.fixture
def no_timings(services):
    cache.client().delete(latency.KEY)
    yield
    cache.client().delete(latency.KEY)


def test_the_set_keeps_the_last_hour_and_at_most_max_timings(no_timings, monkeypatch):
    now = time.time()
    latency.timings_record([1.0, 2.0], at=now - latency.WINDOW_S - 5)
    latency.timings_record([0.5, 0.5], at=now - 60)  # equal timings stay two members
    assert cache.client().zcard(latency.KEY) == 4  # an hour before this write's time is not over yet
    latency.timings_record([0.3], at=now - 1)
    assert cache.client().zcard(latency.KEY) == 3  # now it is: trimmed on this write
    assert latency.timings_read(now=now) == [(now - 60, 0.5), (now - 60, 0.5), (now - 1, 0.3)]

    monkeypatch.setattr(latency, "MAX_TIMINGS", 3)
    latency.timings_record([0.25, 0.75], at=now)

    assert sorted(s for _, s in latency.timings_read(now=now)) == [0.25, 0.3, 0.75]  # the oldest left first


# --- timings from the live path ----------------------------------------------------------


@pytest.fixture(scope="module")
def engine(trained_models):
    return LiveEngine(idle_s=3600)


def _click(visitor: str, movie_id: int, *, at: datetime | None = None) -> Event:
    ts = (at or datetime.now(UTC)).strftime(TS_FORMAT)
    event = Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=movie_id, kind="click", ts=ts)
    clicklog.event_put(event)
    return event


def _update(engine: LiveEngine, visitor: str):
    visitor_state.visitors_wait([visitor])
    [report] = engine.drain(clicklog.events_for)
    return report


def test_a_live_update_records_each_applied_clicks_wait(engine, clicklog_table, no_timings):
    visitor = f"v:{uuid.uuid4().hex}"
    started = time.time()
    _click(visitor, 1)
    _click(visitor, 260)

    report = _update(engine, visitor)

    elapsed = time.time() - started
    assert report.events == 2 and len(report.latency) == 2
    assert all(0 < s <= elapsed for s in report.latency)
    stored = latency.timings_read(now=time.time())
    assert sorted(s for _, s in stored) == pytest.approx(sorted(report.latency), abs=1e-6)
    summary, _ = latency.latency_last_hour()
    assert summary.count == 2
    assert summary.p50 == pytest.approx(latency.percentile(report.latency, 50), abs=1e-6)
    assert summary.p95 == pytest.approx(latency.percentile(report.latency, 95), abs=1e-6)

    assert _update(engine, visitor).latency == []  # nothing new applied: nothing timed


def test_a_replayed_log_is_not_timed_but_the_next_click_is(engine, clicklog_table, no_timings):
    visitor = f"v:{uuid.uuid4().hex}"
    _click(visitor, 1, at=datetime(2024, 1, 1, tzinfo=UTC))  # an old click, as a moved history has
    _update(engine, visitor)
    cache.client().delete(latency.KEY)
    visitor_state.visitor_forget(visitor)  # what a log-in does to the account's visitor

    replay = _update(engine, visitor)

    assert replay.events == 1 and replay.latency == []
    assert not cache.client().exists(visitor_state.replay_key(visitor))  # the mark went with the replay
    _click(visitor, 260)
    fresh = _update(engine, visitor)
    assert len(fresh.latency) == 1 and 0 < fresh.latency[0] < 60
    assert [s for _, s in latency.timings_read(now=time.time())] == pytest.approx(fresh.latency, abs=1e-6)
