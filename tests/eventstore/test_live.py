"""The web app's door to the live path, against the real Redis: after a history moves, the
visitors are queued, and their live state is dropped only when the moved events need a replay."""

from __future__ import annotations

import uuid

from eventstore.live import visitors_changed
from livepath import queue
from livepath import state as live_state
from livepath.store import client


def _with_state() -> str:
    visitor = f"v:{uuid.uuid4().hex}"
    client().hset(live_state.key(visitor), "watermark", "2026-01-01T00:00:00.000000Z#e")
    return visitor


def test_changed_visitors_are_queued_and_keep_their_state_without_a_replay(services):
    visitor = _with_state()

    visitors_changed([visitor], replay=False)

    assert client().zscore(queue.waiting_key(), visitor) is not None
    assert live_state.states_get([visitor])[visitor].watermark is not None
    client().delete(live_state.key(visitor))


def test_a_replay_drops_the_live_state_and_marks_it(services):
    visitors = [_with_state(), _with_state()]

    visitors_changed(visitors, replay=True)

    states = live_state.states_get(visitors)
    assert all(states[v].watermark is None and states[v].replay for v in visitors)
    assert all(client().zscore(queue.waiting_key(), v) is not None for v in visitors)
    client().delete(*(live_state.replay_key(v) for v in visitors))
