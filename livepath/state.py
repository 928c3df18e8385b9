"""Live visitors' state and work queue in Redis, so any worker on any machine can serve any visitor.

`live:visitor:<visitor>` (a hash, expires after STATE_TTL_S without a click):
    watermark   sort key (`<ts>#<event_id>`) of the newest applied event
    recent      JSON list of the sort keys applied within GRACE_S of the watermark
    history     JSON list of movie ids, oldest first: the newest VISITOR_HISTORY_MAX only
    applied     how many events have been applied (each exactly once)
    p:<model>:<version>   float32 bytes of the visitor's parameters for that version
    r:<model>:<version>   fine-tuning rounds those parameters have had

`live:replay:<visitor>` (set by `visitor_forget`, gone when the replay is stored) says the
next update replays the whole log: old clicks, which `predictors.latency` does not time.

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

Bounds. This is evictable cache: a lost state costs fine-tuning rounds, never events (the next
update replays the log), and a lost queue is rebuilt by `workers.tasks.reconcile_visitors`.
- A visitor's hash: history ≤ VISITOR_HISTORY_MAX movie ids (≤ 8 B each as JSON: 4 KB at
  500); parameters for the live GNNs, 3 × dim × 4 B (768 B at dim 64, 3 KB at 256); `recent`,
  the sort keys of the last GRACE_S: ≤ 120 at the click rate limit × 66 B ≈ 8 KB. Measured
  (MEMORY USAGE ... SAMPLES 0, Redis 7): 2.1 KB for 20 movies at dim 64, 14 KB at the worst
  (500 movies, 120 recent keys), 17 KB so at dim 256. It expires STATE_TTL_S after its last write.
- The queue: one waiting entry per visitor with news, one claimed entry and token per visitor
  a worker holds (≤ MAX_BATCH per worker), each under 100 B; every entry leaves when it is
  claimed, released or its lease runs out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import torch
from django.conf import settings
from redis.exceptions import WatchError

from predictors import TS_FORMAT
from predictors.cache import TTL_S as LIST_TTL_S
from predictors.cache import client

log = logging.getLogger(__name__)

# The recommendation lists' TTL (predictors.cache): a visitor away this long comes back to
# lists and parameters re-derived from its log, both at once (30 days held 4x the visitors
# in Redis for the rare visitor who returns after a week).
STATE_TTL_S = LIST_TTL_S
# Events are read again from this far behind the watermark, so one written late (a slow
# request whose timestamp was taken before a newer event's) is still applied, once.
GRACE_S = 60
# A batch takes well under a second; a lease this long matters when a worker dies, or when a
# slow click log (3 tries with 1 s/2 s timeouts per read, 4 waves of 16 reads) holds a batch
# past it: then the claims fence the slow worker's writes (module docstring).
LEASE_S = 30
# A replay follows its mark within seconds; a mark whose replay never came (the visitor id
# was given up) should not linger.
REPLAY_MARK_S = 24 * 3600

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
    """`<LIVE_KEY_PREFIX>:<name>`: the live queue's keys (waiting, claimed, claim:<visitor>, tick:<n>)."""
    return f"{settings.LIVE_KEY_PREFIX}:{name}"


def waiting_key() -> str:
    return queue_key("waiting")


def claimed_key() -> str:
    return queue_key("claimed")


def claim_key(visitor: str) -> str:
    return queue_key(f"claim:{visitor}")


def key(visitor: str) -> str:
    return f"live:visitor:{visitor}"


def replay_key(visitor: str) -> str:
    return f"live:replay:{visitor}"


def visitor_digest(visitor: str) -> str:
    """How a published version names a visitor it trained on (never the visitor id itself)."""
    return hashlib.sha256(visitor.encode()).hexdigest()[:24]


@dataclass
class VisitorState:
    watermark: str | None = None
    recent: list[str] = field(default_factory=list)
    history: list[int] = field(default_factory=list)
    applied: int = 0
    params: dict[str, torch.Tensor] = field(default_factory=dict)  # "<model>:<version>" -> (d,)
    rounds: dict[str, int] = field(default_factory=dict)
    replay: bool = False  # forgotten on purpose: the events about to be applied are old ones

    @property
    def last_event(self) -> str | None:
        return self.watermark.split("#", 1)[1] if self.watermark else None

    def since(self) -> str | None:
        """Read events with sort keys after this (None: the whole log)."""
        if self.watermark is None:
            return None
        ts = datetime.strptime(self.watermark.split("#", 1)[0], TS_FORMAT)
        return (ts - timedelta(seconds=GRACE_S)).strftime(TS_FORMAT)

    def new_events(self, events: Sequence) -> list:
        """The events (with `.sort_key`) not applied yet, oldest first."""
        since, done = self.since(), set(self.recent)
        fresh = [e for e in events if e.sort_key not in done and (since is None or e.sort_key > since)]
        return sorted(fresh, key=lambda e: e.sort_key)

    def mark_applied(self, events: Sequence) -> None:
        keys = [e.sort_key for e in events]
        self.watermark = max([self.watermark or "", *keys]) or None
        self.applied += len(keys)
        since = self.since() or ""
        self.recent = sorted(k for k in {*self.recent, *keys} if k > since)

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> VisitorState:
        fields = {k.decode(): v for k, v in raw.items()}
        state = cls(
            watermark=fields["watermark"].decode() if fields.get("watermark") else None,
            recent=json.loads(fields.get("recent", b"[]")),
            history=json.loads(fields.get("history", b"[]")),
            applied=int(fields.get("applied", 0)),
        )
        for name, value in fields.items():
            if name.startswith("p:"):
                state.params[name[2:]] = torch.frombuffer(bytearray(value), dtype=torch.float32)
            elif name.startswith("r:"):
                state.rounds[name[2:]] = int(value)
        return state

    def to_redis(self) -> dict[str, bytes | str | int]:
        fields = {
            "watermark": self.watermark or "",
            "recent": json.dumps(self.recent),
            "history": json.dumps(self.history),
            "applied": self.applied,
        }
        for name, value in self.params.items():
            fields[f"p:{name}"] = value.to(torch.float32).contiguous().numpy().tobytes()
            fields[f"r:{name}"] = self.rounds.get(name, 0)
        return fields


def states_get(visitors: Sequence[str]) -> dict[str, VisitorState]:
    pipe = client().pipeline(transaction=False)
    for visitor in visitors:
        pipe.hgetall(key(visitor))
        pipe.exists(replay_key(visitor))
    answers = pipe.execute()
    states = {}
    for visitor, raw, replay in zip(visitors, answers[::2], answers[1::2], strict=True):
        states[visitor] = VisitorState.from_redis(raw)
        states[visitor].replay = bool(replay)
    return states


def states_put(pipe, states: dict[str, VisitorState]) -> None:
    """Queue the states on `pipe` (the caller's transaction, so they land with the caches)."""
    for visitor, state in states.items():
        # Drops parameters of versions no longer live, and the replay mark: the replay is stored.
        pipe.delete(key(visitor), replay_key(visitor))
        pipe.hset(key(visitor), mapping=state.to_redis())
        pipe.expire(key(visitor), STATE_TTL_S)


# A visitor whose list is from an older version is re-derived at most this often on request.
REFRESH_S = 10


def refresh_due(visitor: str) -> bool:
    """True at most once per REFRESH_S for `visitor`: time to ask the workers for a refresh."""
    return bool(client().set(f"live:refresh:{visitor}", 1, nx=True, ex=REFRESH_S))


def visitor_forget(visitor: str) -> None:
    """Drop the visitor's live state: its next update replays its whole log, under a mark
    that keeps the replayed clicks out of the latency timings. A claim on the visitor is
    revoked with it (its token and its lease), so a batch already running cannot write its
    older state back over the replay (`claims_store` finds the token gone), and the visitor
    can be claimed again at once."""
    pipe = client().pipeline(transaction=True)
    pipe.delete(key(visitor), claim_key(visitor))
    pipe.zrem(claimed_key(), visitor)
    pipe.set(replay_key(visitor), 1, ex=REPLAY_MARK_S)
    pipe.execute()


def visitors_wait(visitors: Iterable[str], *, delay_s: float = 0.0) -> None:
    """Mark visitors as having news, claimable after `delay_s` (a visitor already waiting
    keeps its place)."""
    visitors = list(visitors)
    if visitors:
        due = time.time() + delay_s
        client().zadd(waiting_key(), {v: due for v in visitors}, nx=True)


def visitors_behind(newest: dict[str, str]) -> list[str]:
    """Of visitors → the timestamp of their newest event (`<ts>` of a sort key), those whose
    live state has not applied it: none at all (Redis lost it) or an older watermark."""
    visitors = list(newest)
    pipe = client().pipeline(transaction=False)
    for visitor in visitors:
        pipe.hget(key(visitor), "watermark")
    behind = []
    for visitor, watermark in zip(visitors, pipe.execute(), strict=True):
        if not watermark or watermark.decode().split("#", 1)[0] < newest[visitor]:
            behind.append(visitor)
    return behind


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
