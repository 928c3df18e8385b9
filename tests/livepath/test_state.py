"""Visitors' live state in the real Redis: forgetting a visitor fences a running batch, and the
index of the visitors on each version hands each of them out once."""

from __future__ import annotations

import uuid

import torch

from livepath import queue
from livepath import state as live_state
from livepath.store import client


def _visitor() -> str:
    return f"v:{uuid.uuid4().hex}"


def test_forgetting_a_visitor_revokes_a_running_batchs_claim(services):
    """A log-in moves a history and forgets the account's state while a batch may hold it: that
    batch must not write its older state back over the replay, and the replay can start at once."""
    visitor = _visitor()
    queue.visitors_wait([visitor])
    running = queue.visitors_claim(10)
    assert running.visitors == [visitor]

    live_state.visitor_forget(visitor)

    assert queue.claims_store(running, lambda pipe, held: None) == []  # fenced: writes nothing
    queue.visitors_wait([visitor])
    replay = queue.visitors_claim(10)
    assert replay.visitors == [visitor]  # claimable again without waiting for the old lease
    queue.visitors_release(running)  # the old holder's release leaves the new claim alone
    assert client().get(queue.claim_key(visitor)) == replay.token.encode()
    queue.visitors_release(replay)


def _store(states: dict[str, live_state.VisitorState]) -> None:
    pipe = client().pipeline(transaction=True)
    live_state.states_put(pipe, states)
    pipe.execute()


def test_the_visitors_on_a_version_are_handed_out_once_while_they_hold_it(services):
    on_old, moved_on, expired = _visitor(), _visitor(), _visitor()
    _store({v: live_state.VisitorState(history=[1], params={"lightgcn:v1": torch.ones(4)})
            for v in (on_old, moved_on, expired)})
    _store({moved_on: live_state.VisitorState(history=[1], params={"lightgcn:v2": torch.ones(4)})})  # a click
    client().delete(live_state.key(expired))
    assert 0 < client().ttl(live_state.version_key("lightgcn:v1")) <= live_state.state_ttl_s()

    first, second = live_state.visitors_on("lightgcn:v1", 2), live_state.visitors_on("lightgcn:v1", 2)

    assert first[0] + second[0] == 3  # each taken once, whichever worker asks
    assert first[1] + second[1] == [on_old]  # the only one whose state is still on v1
    assert live_state.visitors_on("lightgcn:v1", 2) == (0, [])
    assert not client().exists(live_state.version_key("lightgcn:v1"))
    assert client().zrange(live_state.version_key("lightgcn:v2"), 0, -1) == [moved_on.encode()]
    client().delete(live_state.key(on_old), live_state.key(moved_on))
