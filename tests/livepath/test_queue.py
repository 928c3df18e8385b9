"""The live work queue in the real Redis: one worker holds a visitor at a time, a dead worker's
lease runs out, and a claim that changed hands fences the old holder's writes."""

from __future__ import annotations

import time
import uuid

from livepath import queue
from livepath.store import client


def _visitor() -> str:
    return f"v:{uuid.uuid4().hex}"


def test_a_visitor_is_claimed_by_one_worker_at_a_time(services):
    visitor = _visitor()
    queue.visitors_wait([visitor])
    first = queue.visitors_claim(10)
    assert first.visitors == [visitor]
    queue.visitors_wait([visitor])  # a new click while it is held
    assert queue.visitors_claim(10).visitors == []
    queue.visitors_release(first)
    second = queue.visitors_claim(10)
    assert second.visitors == [visitor] and second.token != first.token
    queue.visitors_release(second)
    assert client().exists(queue.claimed_key(), queue.claim_key(visitor)) == 0


def test_a_dead_workers_claim_returns_to_waiting_after_its_lease(services):
    visitor = _visitor()
    queue.visitors_wait([visitor])
    dead = queue.visitors_claim(10, lease_s=-1)  # lease already over
    assert dead.visitors == [visitor]

    taken = queue.visitors_claim(10)
    assert taken.visitors == [visitor]
    queue.visitors_release(taken)


def test_a_release_drops_only_the_callers_own_claims(services):
    visitor = _visitor()
    queue.visitors_wait([visitor])
    slow = queue.visitors_claim(10, lease_s=-1)
    newer = queue.visitors_claim(10)  # the lease ran out: another worker holds it now
    assert newer.visitors == [visitor]

    queue.visitors_release(slow)

    redis = client()
    assert redis.zscore(queue.claimed_key(), visitor) is not None
    assert redis.get(queue.claim_key(visitor)) == newer.token.encode()
    queue.visitors_wait([visitor])
    assert queue.visitors_claim(10).visitors == []  # still held: nobody else updates it
    queue.visitors_release(newer)
    assert redis.zscore(queue.claimed_key(), visitor) is None


def test_a_claim_taken_over_while_its_writes_are_queued_writes_nothing(services):
    visitor = _visitor()
    queue.visitors_wait([visitor])
    slow = queue.visitors_claim(10, lease_s=0.2)
    calls, takeover = [], []

    def write(pipe, held):
        calls.append(list(held))
        if len(calls) == 1:  # between the check and the commit, the lease ends and another worker claims
            time.sleep(0.3)
            takeover.append(queue.visitors_claim(10))
        for v in held:
            pipe.set(f"h2-test:{v}", slow.token)

    written = queue.claims_store(slow, write)

    assert takeover[0].visitors == [visitor]
    assert calls == [[visitor], []] and written == []  # the commit aborted; the retry found it taken
    assert client().get(f"h2-test:{visitor}") is None
    assert queue.claims_store(takeover[0], write) == [visitor]  # the holder writes
    client().delete(f"h2-test:{visitor}")
    queue.visitors_release(takeover[0])
