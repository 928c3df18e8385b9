"""Ticks and retrains that cannot pile up: at most two of the app's own ticks wait in the
broker, each expiring unstarted; a retrain runs one at a time. Against the real broker Redis."""

from __future__ import annotations

import time
from datetime import datetime

import dgl.utils
import pytest
import torch
from django.conf import settings

from workers import tasks


class _IdleEngine:
    def drain(self, read_events):
        return []


def test_at_most_two_ticks_wait_and_each_expires_unstarted(ticks):
    sent_at = time.time()
    assert tasks.live_tick(2) == 2
    assert tasks.live_tick(2) == 0  # both slots hold a waiting tick
    assert tasks.live_tick() == 0

    waiting = ticks()
    assert len(waiting) == 2
    for tick in waiting:
        left = datetime.fromisoformat(tick["headers"]["expires"]).timestamp() - sent_at
        assert 0 < left <= tasks.TICK_EXPIRES_S + 1  # a worker drops it unrun after that
        assert 0 < tasks.broker().ttl(tick["kwargs"]["slot"]) <= tasks.TICK_EXPIRES_S  # its slot too


def test_a_tick_frees_its_slot_as_it_starts(ticks, monkeypatch):
    monkeypatch.setattr(tasks, "live_engine", lambda: _IdleEngine())
    monkeypatch.setattr(tasks, "TICK_SLOTS", 1)
    assert tasks.live_tick() == 1
    [first] = ticks()
    assert tasks.live_tick() == 0

    assert tasks.update_waiting_visitors.apply(kwargs=first["kwargs"]).successful()

    assert tasks.live_tick() == 1  # a click from now on wakes a worker of its own
    [second] = [t for t in ticks() if t["kwargs"]["tick"] != first["kwargs"]["tick"]]
    tasks.update_waiting_visitors.apply(kwargs=first["kwargs"])  # a retry of the first tick
    assert tasks.broker().get(second["kwargs"]["slot"]) == second["kwargs"]["tick"].encode()  # still held


def test_a_retrain_skips_while_another_one_runs(services):
    running = tasks.broker().lock(tasks.RETRAIN_LOCK, timeout=60, blocking=False)
    assert running.acquire()
    try:
        started = time.monotonic()
        assert tasks.retrain_models(epochs=1) == {}  # skipped at once: nothing trained or published
        assert time.monotonic() - started < 1
        assert running.owned()  # and the running one's lock is untouched
    finally:
        running.release()


def test_one_at_a_time_releases_its_lock_when_the_body_ends_or_raises(services):
    lock, inner = "cinegraph:test:once", []

    @tasks.one_at_a_time(lock, hold_s=60)
    def body(fail: bool = False):
        inner.append(body())  # a second run while this one holds the lock
        if fail:
            raise RuntimeError("training failed")
        return {"done": True}

    assert body() == {"done": True}
    assert inner == [{}]  # the second run skipped
    assert tasks.broker().exists(lock) == 0
    with pytest.raises(RuntimeError):
        body(fail=True)
    assert tasks.broker().exists(lock) == 0
    assert body() == {"done": True}  # free again after a failure


def test_a_retrain_trains_with_its_threads_and_gives_the_process_its_own_back():
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # torch's default on a two-core machine: a thread per core
    try:
        with tasks.threads_at_most(settings.RETRAIN_THREADS):
            inside = torch.get_num_threads(), dgl.utils.get_num_threads()
        assert inside == (1, 1) and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_every_scheduled_task_expires_when_the_next_one_is_due():
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["options"]["expires"] == entry["schedule"], name
