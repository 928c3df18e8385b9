"""The live work queue in Redis: which visitors have news, and which worker is updating each.

The queue's keys start with settings.LIVE_KEY_PREFIX (`live`; each test has its own):
`<prefix>:waiting` (zset visitor → when it may be claimed) holds visitors with news;
`<prefix>:claimed` (zset visitor → lease expiry) those a worker is updating, and
`<prefix>:claim:<visitor>` the holder's token (a random id per claim, gone with the lease).
A claim moves a visitor from waiting to claimed only if nobody holds it, so a visitor is
updated by one worker at a time and in order; a worker that dies loses its lease and the
visitor returns to waiting at the next claim. A lease can also run out under a worker that is
only slow (DynamoDB retries), so claims are fenced: `claims_store` writes a batch in one
transaction that commits only for the visitors whose token is still the caller's (WATCH on the
token keys), and `visitors_release` removes only the caller's own claims. A visitor whose claim
was lost gets nothing from the slow worker; the new holder reads the log itself, so nothing is
lost, applied twice or rolled back.

Bounds. One waiting entry per visitor with news, one claimed entry and token per visitor a
worker holds (≤ predictors.live.MAX_BATCH per worker), each under 100 B; every entry leaves
when it is claimed, released or its lease runs out. A lost queue is rebuilt by
`workers.tasks.reconcile_visitors`.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.conf import settings
from redis.exceptions import WatchError

from livepath.store import client

log = logging.getLogger(__name__)

# A batch takes well under a second; a lease this long matters when a worker dies, or when a
# slow click log (3 tries with 1 s/2 s timeouts per read, 4 waves of 16 reads) holds a batch
# past it: then the claims fence the slow worker's writes (module docstring).
LEASE_S = 30

# KEYS: waiting, claimed. ARGV: now, lease expiry (s), limit, token, expiry (ms), token key prefix.
# The token keys are named inside the script (one per visitor): fine on one Redis server, not
# on a Redis Cluster.
_CLAIM = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, v in ipairs(expired) do
  redis.call('ZREM', KEYS[2], v)
  redis.call('DEL', ARGV[6] .. v)
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], v)
end
local out = {}
for _, v in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1],
                              'LIMIT', 0, 4 * tonumber(ARGV[3]))) do
  if #out >= tonumber(ARGV[3]) then break end
  if not redis.call('ZSCORE', KEYS[2], v) then
    redis.call('ZREM', KEYS[1], v)
    redis.call('ZADD', KEYS[2], ARGV[2], v)
    redis.call('SET', ARGV[6] .. v, ARGV[4])
    redis.call('PEXPIREAT', ARGV[6] .. v, ARGV[5])
    table.insert(out, v)
  end
end
return out
"""
# KEYS: claimed. ARGV: token, token key prefix, visitors...: drops only the claims `token` holds.
_RELEASE = """
for i = 3, #ARGV do
  local v = ARGV[i]
  if redis.call('GET', ARGV[2] .. v) == ARGV[1] then
    redis.call('DEL', ARGV[2] .. v)
    redis.call('ZREM', KEYS[1], v)
  end
end
"""


def queue_key(name: str) -> str:
    """`<LIVE_KEY_PREFIX>:<name>`: the live queue's keys (waiting, claimed, claim:<visitor>, tick:<n>,
    on:<model>:<version>)."""
    return f"{settings.LIVE_KEY_PREFIX}:{name}"


def waiting_key() -> str:
    return queue_key("waiting")


def claimed_key() -> str:
    return queue_key("claimed")


def claim_key(visitor: str) -> str:
    return queue_key(f"claim:{visitor}")


def visitors_wait(visitors: Iterable[str], *, delay_s: float = 0.0) -> None:
    """Mark visitors as having news, claimable after `delay_s` (a visitor already waiting
    keeps its place)."""
    visitors = list(visitors)
    if visitors:
        due = time.time() + delay_s
        client().zadd(waiting_key(), {v: due for v in visitors}, nx=True)


@dataclass(frozen=True)
class Claim:
    """Visitors one worker holds, and the token that proves it (random per claim)."""

    token: str
    visitors: list[str]


def visitors_claim(limit: int, lease_s: float = LEASE_S) -> Claim:
    """Up to `limit` waiting visitors that no worker holds, now held by the caller."""
    now, token = time.time(), secrets.token_hex(16)
    claimed = client().eval(_CLAIM, 2, waiting_key(), claimed_key(), now, now + lease_s, limit, token,
                            math.floor((now + lease_s) * 1000), claim_key(""))
    return Claim(token, [v.decode() for v in claimed])


def claims_store(claim: Claim, write: Callable[[object, list[str]], None]) -> list[str]:
    """Run `write(pipe, held)` in one transaction that commits only while the caller holds the
    claims of `held`: the visitors whose token is still `claim.token` when it commits. A claim
    taken over meanwhile (the lease ran out, another worker claimed) aborts it (WATCH), and
    `write` is called again with the visitors still held. `write` only queues commands on
    `pipe`. Returns the visitors written for."""
    keys = [claim_key(v) for v in claim.visitors]
    mine = claim.token.encode()
    with client().pipeline(transaction=True) as pipe:
        while True:  # an abort means a claim of this batch changed hands after the check
            try:
                held = []
                if keys:
                    pipe.watch(*keys)
                    held = [v for v, token in zip(claim.visitors, pipe.mget(keys), strict=True)
                            if token == mine]
                pipe.multi()
                write(pipe, held)
                pipe.execute()
                return held
            except WatchError:
                log.info("live batch: a claim changed hands while its writes were queued; checking again")


def visitors_release(claim: Claim) -> None:
    """Drop the claims `claim` still holds; one taken over by another worker stays theirs."""
    if claim.visitors:
        client().eval(_RELEASE, 1, claimed_key(), claim.token, claim_key(""), *claim.visitors)


def waiting_count() -> int:
    return client().zcard(waiting_key())
