"""Live visitors' state in Redis, so any worker on any machine can serve any visitor.

`live:visitor:<visitor>` (a hash, expires after LIVE_STATE_TTL_S without a click):
    watermark   sort key (`<ts>#<event_id>`) of the newest applied event
    recent      JSON list of the sort keys applied within the grace window of the watermark
                (predictors.GRACE_S; which events are new is the engine's rule: predictors.watermark)
    history     JSON list of movie ids, oldest first: the newest VISITOR_HISTORY_MAX only
    dismissed   JSON list of the movie ids it said "Not interested" to, oldest first: as many at most
    applied     how many events have been applied (each exactly once)
    p:<model>:<version>   float32 bytes of the visitor's parameters for that version
    r:<model>:<version>   fine-tuning rounds those parameters have had

`live:replay:<visitor>` (set by `visitor_forget`, gone when the replay is stored) says the
next update replays the whole log: old clicks, which `livepath.latency` does not time.

`<prefix>:on:<model>:<version>` (zset visitor → when its state was last stored with parameters
of that version; the queue's prefix, `livepath.queue`) names the visitors to re-derive when
that version is replaced (`visitors_on`).

Bounds. This is evictable cache: a lost state costs fine-tuning rounds, never events (the next
update replays the log), and a lost index only leaves its visitors to re-derive at their next
click.
- A visitor's hash: history ≤ VISITOR_HISTORY_MAX movie ids (≤ 8 B each as JSON: 4 KB at
  500), as many dismissed ones at most (a visitor rarely dismisses more than a few);
  parameters for the live GNNs, 3 × dim × 4 B (768 B at dim 64, 3 KB at 256); `recent`,
  the sort keys of the last GRACE_S: ≤ 120 at the click rate limit × 66 B ≈ 8 KB. Measured
  (MEMORY USAGE ... SAMPLES 0, Redis 7): 2.1 KB for 20 movies at dim 64, 14 KB at the worst
  (500 movies, 120 recent keys), 17 KB so at dim 256. It expires LIVE_STATE_TTL_S (settings)
  after its last write.
- A version's index: one member per visitor stored with that version's parameters in the last
  LIVE_STATE_TTL_S, so no more members than there are live states; 145 B a member (MEMORY USAGE,
  Redis 7, 10,000 visitor ids), so 0.4 KB a visitor for the three live models beside its
  2-17 KB of state. Every store trims it to that window and sets it to expire LIVE_STATE_TTL_S
  after; the re-derivation of a replaced version empties it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from django.conf import settings

from livepath.queue import claim_key, claimed_key, queue_key
from livepath.store import client


def state_ttl_s() -> int:
    """How long a state outlives its last write (settings.LIVE_STATE_TTL_S, 7 days); the
    recommendation lists have the same TTL (predictors.cache)."""
    return settings.LIVE_STATE_TTL_S


# A replay follows its mark within seconds; a mark whose replay never came (the visitor id
# was given up) should not linger.
REPLAY_MARK_S = 24 * 3600


def key(visitor: str) -> str:
    return f"live:visitor:{visitor}"


def replay_key(visitor: str) -> str:
    return f"live:replay:{visitor}"


def version_key(params_key: str) -> str:
    """The index of the visitors holding parameters of `params_key` (`<model>:<version>`)."""
    return queue_key(f"on:{params_key}")


@dataclass
class VisitorState:
    watermark: str | None = None
    recent: list[str] = field(default_factory=list)
    history: list[int] = field(default_factory=list)
    dismissed: list[int] = field(default_factory=list)
    applied: int = 0
    params: dict[str, torch.Tensor] = field(default_factory=dict)  # "<model>:<version>" -> (d,)
    rounds: dict[str, int] = field(default_factory=dict)
    replay: bool = False  # forgotten on purpose: the events about to be applied are old ones

    @property
    def last_event(self) -> str | None:
        return self.watermark.split("#", 1)[1] if self.watermark else None

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> VisitorState:
        fields = {k.decode(): v for k, v in raw.items()}
        state = cls(
            watermark=fields["watermark"].decode() if fields.get("watermark") else None,
            recent=json.loads(fields.get("recent", b"[]")),
            history=json.loads(fields.get("history", b"[]")),
            dismissed=json.loads(fields.get("dismissed", b"[]")),
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
            "dismissed": json.dumps(self.dismissed),
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
    """Queue the states on `pipe` (the caller's transaction, so they land with the caches), and
    each visitor in the index of every version it holds parameters of."""
    now, ttl_s = time.time(), state_ttl_s()
    on: dict[str, dict[str, float]] = {}
    for visitor, state in states.items():
        # Drops parameters of versions no longer live, and the replay mark: the replay is stored.
        pipe.delete(key(visitor), replay_key(visitor))
        pipe.hset(key(visitor), mapping=state.to_redis())
        pipe.expire(key(visitor), ttl_s)
        for params_key in state.params:
            on.setdefault(version_key(params_key), {})[visitor] = now
    for index, members in on.items():
        pipe.zadd(index, members)
        pipe.zremrangebyscore(index, "-inf", f"({now - ttl_s}")
        pipe.expire(index, ttl_s)


def visitors_on(params_key: str, limit: int) -> tuple[int, list[str]]:
    """Take up to `limit` visitors out of `params_key`'s index (a replaced version's): (how many
    were taken, those whose state still holds its parameters). Taking is atomic, so workers
    that share the work each get their own visitors; 0 taken: the index is empty."""
    taken = [v.decode() for v, _ in client().zpopmin(version_key(params_key), limit)]
    if not taken:
        return 0, []
    pipe = client().pipeline(transaction=False)
    for visitor in taken:
        pipe.hexists(key(visitor), f"p:{params_key}")
    return len(taken), [v for v, holds in zip(taken, pipe.execute(), strict=True) if holds]


def replays_drop(pipe, visitors: Sequence[str]) -> None:
    """Queue on `pipe` the end of the visitors' replay marks: ids left with nothing to replay
    (their history moved to an account)."""
    if visitors:
        pipe.delete(*(replay_key(v) for v in visitors))


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
