"""Fixtures for the worker tests."""

from __future__ import annotations

import pytest

from tests.workers.clicks import queued_ticks


@pytest.fixture
def ticks(live_queue_keys):
    """The live ticks this test sent that still wait in the broker; removed after the test."""
    from workers.tasks import broker

    yield lambda: queued_ticks(live_queue_keys)
    for tick in queued_ticks(live_queue_keys):
        broker().lrem("live", 0, tick["raw"])
