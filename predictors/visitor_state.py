"""Live visitors' state and work queue in Redis, so any worker on any machine can serve any visitor.

`live:visitor:<visitor>` (a hash, expires after STATE_TTL_S without a click):
    watermark   sort key (`<ts>#<event_id>`) of the newest applied event
    recent      JSON list of the sort keys applied within GRACE_S of the watermark
    history     JSON list of movie ids, oldest first
    applied     how many events have been applied (each exactly once)
    p:<model>:<version>   float32 bytes of the visitor's parameters for that version
    r:<model>:<version>   fine-tuning rounds those parameters have had

`live:replay:<visitor>` (set by `visitor_forget`, gone when the replay is stored) says the
next update replays the whole log: old clicks, which `predictors.latency` does not time.

`live:waiting` (zset visitor → when it may be claimed) holds visitors with news;
`live:claimed` (zset visitor → lease expiry) those a worker is updating. A claim moves a
visitor from waiting to claimed only if nobody holds it, so a visitor is updated by one
worker at a time and in order; a worker that dies loses its lease and the visitor returns to
waiting at the next claim.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import torch

from predictors.cache import client

WAITING, CLAIMED = "live:waiting", "live:claimed"
STATE_TTL_S = 30 * 24 * 3600
# Events are read again from this far behind the watermark, so one written late (a slow
# request whose timestamp was taken before a newer event's) is still applied, once.
GRACE_S = 60
# A batch takes well under a second; a lease this long only matters when a worker dies.
LEASE_S = 30
# A replay follows its mark within seconds; a mark whose replay never came (the visitor id
# was given up) should not linger.
REPLAY_MARK_S = 24 * 3600

_CLAIM = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, v in ipairs(expired) do
  redis.call('ZREM', KEYS[2], v)
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], v)
end
local out = {}
for _, v in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 4 * tonumber(ARGV[3]))) do
  if #out >= tonumber(ARGV[3]) then break end
  if not redis.call('ZSCORE', KEYS[2], v) then
    redis.call('ZREM', KEYS[1], v)
    redis.call('ZADD', KEYS[2], ARGV[2], v)
    table.insert(out, v)
  end
end
return out
"""


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
        ts = datetime.strptime(self.watermark.split("#", 1)[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        return (ts - timedelta(seconds=GRACE_S)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

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
    def from_redis(cls, raw: dict[bytes, bytes]) -> "VisitorState":
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
    for visitor, raw, replay in zip(visitors, answers[::2], answers[1::2]):
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
    that keeps the replayed clicks out of the latency timings."""
    pipe = client().pipeline(transaction=True)
    pipe.delete(key(visitor))
    pipe.set(replay_key(visitor), 1, ex=REPLAY_MARK_S)
    pipe.execute()


def visitors_wait(visitors: Iterable[str], *, delay_s: float = 0.0) -> None:
    """Mark visitors as having news, claimable after `delay_s` (a visitor already waiting
    keeps its place)."""
    visitors = list(visitors)
    if visitors:
        due = time.time() + delay_s
        client().zadd(WAITING, {v: due for v in visitors}, nx=True)


def visitors_behind(newest: dict[str, str]) -> list[str]:
    """Of visitors → the timestamp of their newest event (`<ts>` of a sort key), those whose
    live state has not applied it: none at all (Redis lost it) or an older watermark."""
    visitors = list(newest)
    pipe = client().pipeline(transaction=False)
    for visitor in visitors:
        pipe.hget(key(visitor), "watermark")
    behind = []
    for visitor, watermark in zip(visitors, pipe.execute()):
        if not watermark or watermark.decode().split("#", 1)[0] < newest[visitor]:
            behind.append(visitor)
    return behind


def visitors_claim(limit: int, lease_s: float = LEASE_S) -> list[str]:
    """Up to `limit` waiting visitors that no worker holds, now held by the caller."""
    now = time.time()
    claimed = client().eval(_CLAIM, 2, WAITING, CLAIMED, now, now + lease_s, limit)
    return [v.decode() for v in claimed]


def visitors_release(visitors: Sequence[str]) -> None:
    if visitors:
        client().zrem(CLAIMED, *visitors)


def waiting_count() -> int:
    return client().zcard(WAITING)
