"""Click → fresh-list latency: the pure percentile and window arithmetic, and the bounded sorted
set in the real Redis (the timings the live engine records: tests/predictors/test_live_latency.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from livepath import latency
from livepath.store import client


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
    client().delete(latency.KEY)
    yield
    client().delete(latency.KEY)


def test_the_set_keeps_the_last_hour_and_at_most_max_timings(no_timings, monkeypatch):
    now = time.time()
    latency.timings_record([1.0, 2.0], at=now - latency.WINDOW_S - 5)
    latency.timings_record([0.5, 0.5], at=now - 60)  # equal timings stay two members
    assert client().zcard(latency.KEY) == 4  # an hour before this write's time is not over yet
    latency.timings_record([0.3], at=now - 1)
    assert client().zcard(latency.KEY) == 3  # now it is: trimmed on this write
    assert latency.timings_read(now=now) == [(now - 60, 0.5), (now - 60, 0.5), (now - 1, 0.3)]

    monkeypatch.setattr(latency, "MAX_TIMINGS", 3)
    latency.timings_record([0.25, 0.75], at=now)

    assert sorted(s for _, s in latency.timings_read(now=now)) == [0.25, 0.3, 0.75]  # the oldest left first
