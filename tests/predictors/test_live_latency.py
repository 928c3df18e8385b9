"""The timings the live engine records against the real click log and Redis (livepath.latency
stores them: tests/livepath/test_latency.py)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from eventstore import clicklog
from eventstore.clicklog import Event
from livepath import latency, queue
from livepath import state as live_state
from livepath.store import client
from predictors import TS_FORMAT
from predictors.live import LiveEngine


@pytest.fixture
def no_timings(services):
    client().delete(latency.KEY)
    yield
    client().delete(latency.KEY)


@pytest.fixture(scope="module")
def engine(trained_models):
    return LiveEngine(idle_s=3600)


def _click(visitor: str, movie_id: int, *, at: datetime | None = None) -> Event:
    ts = (at or datetime.now(UTC)).strftime(TS_FORMAT)
    event = Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=movie_id, kind="click", ts=ts)
    clicklog.event_put(event)
    return event


def _update(engine: LiveEngine, visitor: str):
    queue.visitors_wait([visitor])
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
    client().delete(latency.KEY)
    live_state.visitor_forget(visitor)  # what a log-in does to the account's visitor

    replay = _update(engine, visitor)

    assert replay.events == 1 and replay.latency == []
    assert not client().exists(live_state.replay_key(visitor))  # the mark went with the replay
    _click(visitor, 260)
    fresh = _update(engine, visitor)
    assert len(fresh.latency) == 1 and 0 < fresh.latency[0] < 60
    assert [s for _, s in latency.timings_read(now=time.time())] == pytest.approx(fresh.latency, abs=1e-6)
