"""The live path: fold visitors' new events into the published models, a micro-batch at a time.

A worker claims every waiting visitor it can (up to MAX_BATCH), reads each one's state from
Redis and only the events after its watermark from the click log, and for each model folds
the whole batch in at once against the version's frozen item tables (`pytorch_models.serving.fold_in`).
The visitors' new parameters, watermarks and top-k lists land in Redis in one transaction
that commits only for the visitors the worker still holds (`livepath.queue.claims_store`: a
batch slower than its lease writes nothing for a visitor another worker took over, which reads
the log itself), then the claims are released. The worker keeps nothing a visitor needs between
clicks except PinSage's visitor graph, which it rebuilds from Redis when a visitor comes back.
The live models fold in a visitor's newest settings.VISITOR_HISTORY_MAX movies only: older
ones fall out of its live state (`history_after`).

A newly published version is noticed here (`LiveEngine.refresh`), and the visitors whose live
state is on the version it replaced are queued again, a batch at a time whenever the worker
finds no visitor waiting (`_requeue_replaced`), so their lists move to the new version without
a click, and a click never waits behind more than one batch of them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import dgl
import torch
from django.conf import settings
from redis.exceptions import RedisError

from livepath import latency
from livepath.queue import LEASE_S, Claim, claims_store, visitors_claim, visitors_release, visitors_wait
from livepath.state import VisitorState, replays_drop, states_get, states_put, visitors_on
from predictors import TS_FORMAT, cache, registry
from predictors.visitor_digest import visitor_digest
from predictors.watermark import events_applied, events_new, events_since
from pytorch_models.data.graph import build_graph
from pytorch_models.models.names import FINE_TUNED_LIVE
from pytorch_models.serving.fold_in import (
    EmbeddingFoldIn,
    PinSageFoldIn,
    fold_in_for,
    fold_in_round,
)
from pytorch_models.serving.visitor_graph import VisitorGraph

log = logging.getLogger(__name__)

CACHED_ITEMS = 100  # stored per visitor and model; pages ask for 20 after removing the seen
MAX_BATCH = 64  # visitors per micro-batch
READ_THREADS = 16  # click-log queries in flight per batch (I/O bound)


class Event(Protocol):
    event_id: str
    movie_id: int
    kind: str  # click | rate | dismiss | remove
    ts: str
    pending: bool  # written, not confirmed yet (movie.tracking.events): never applied

    @property
    def sort_key(self) -> str: ...


ReadEvents = Callable[[str, str | None], Sequence[Event]]  # (visitor, after sort key) -> events, pending too
# A pending item is confirmed a few milliseconds after its notification is sent; a visitor
# whose log holds one this young is looked at again after RECHECK_S. Older ones are left by
# requests that died, and are never applied.
PENDING_YOUNG_S = 5.0
RECHECK_S = 0.05


def _stamp(unix_s: float) -> str:
    """A unix time as the click log writes timestamps (sortable text)."""
    return datetime.fromtimestamp(unix_s, UTC).strftime(TS_FORMAT)


def _unix(stamp: str) -> float:
    return datetime.strptime(stamp, TS_FORMAT).replace(tzinfo=UTC).timestamp()


ADDING_KINDS = ("click", "rate")  # the kinds that put a movie in the history (eventstore.clicklog's)
DISMISS = "dismiss"


def history_after(history: Sequence[int], events: Sequence[Event], *, limit: int | None = None,
                  kinds: Sequence[str] = ADDING_KINDS) -> list[int]:
    """Movie ids the visitor has after `events`, oldest first: a click or rating makes its movie
    the newest (again, if it was there), a removal or a dismissal drops it; then only the
    newest `limit`. With `kinds` = (DISMISS,), the movies it dismissed: a dismissal makes its
    movie the newest, a click, rating or removal drops it (its latest event decides)."""
    result = dict.fromkeys(history)
    for event in events:
        result.pop(event.movie_id, None)
        if event.kind in kinds:
            result[event.movie_id] = None
    movies = list(result)
    return movies if limit is None else movies[max(0, len(movies) - limit):]


@dataclass
class LiveModel:
    """One model's live version: frozen tables, and for PinSage the graphs its walks use."""

    name: str
    published: registry.Published
    fold_in: EmbeddingFoldIn | PinSageFoldIn
    known_users: dict[str, int]  # visitor digest -> user row, for visitors the version trained on
    base: dgl.DGLGraph | None = None  # PinSage: the version's training graph, frozen
    graph: VisitorGraph | None = None  # PinSage: the live visitors' nodes and edges

    @property
    def params_key(self) -> str:
        return f"{self.name}:{self.published.version}"

    @property
    def dim(self) -> int:
        """Width of a visitor's parameters (the model's embedding size)."""
        return self.published.checkpoint.config["dim"]

    @classmethod
    def load(cls, name: str, published: registry.Published) -> LiveModel:
        checkpoint = published.checkpoint
        live = cls(name, published, fold_in_for(checkpoint), checkpoint.visitors())
        if name == "pinsage":
            snapshot = checkpoint.graph()
            live.base = build_graph(snapshot.n_users, snapshot.n_items, snapshot.train_edges)
            live.graph = VisitorGraph(snapshot.n_items)
        return live


@dataclass
class BatchReport:
    visitors: int = 0
    updated: int = 0
    events: int = 0
    recheck: list[str] = field(default_factory=list)  # visitors with a young pending item
    lost: list[str] = field(default_factory=list)  # claims taken over before the write: nothing written
    seconds: dict[str, float] = field(default_factory=dict)
    latency: list[float] = field(default_factory=list)  # per applied event: created -> lists written


class LiveEngine:
    def __init__(self, models: Sequence[str] = FINE_TUNED_LIVE, *, idle_s: float = 600.0):
        self.model_names = tuple(models)
        self.idle_s = idle_s
        self.live: dict[str, LiveModel] = {}
        # "<model>:<version>" of versions this engine replaced whose visitors may still be on them
        self.replaced: list[str] = []
        self.generator = torch.Generator().manual_seed(0)
        self.pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="clicklog")
        self.refresh()

    def refresh(self) -> None:
        """Switch to newly published versions; the visitors on a replaced one are queued again
        (`_requeue_replaced`). Every worker that notices does the same, sharing the visitors;
        one that starts after a publish knows no replaced version, and a visitor none queues
        (every worker restarted) re-derives at its next click (`update`: `outdated`)."""
        for name in self.model_names:
            published = registry.published(name)
            current = self.live.get(name)
            if published is None:
                self.live.pop(name, None)
            elif current is None or current.published.version != published.version:
                self.live[name] = LiveModel.load(name, published)
                log.info("live model %s %s loaded", name, published.version)
                if current is not None:
                    self.replaced.append(current.params_key)

    def _requeue_replaced(self) -> bool:
        """Queue the next batch of visitors whose live state holds parameters of a replaced
        version; False once none is left. Bound: MAX_BATCH visitors at a time, asked for only
        when this worker found nobody waiting, so a click waits behind one batch of them at
        most (its fold-in: under 1 ms a visitor for the three models on ml-latest-small,
        benchmarks.live_cost, so about 64 ms, plus its click-log reads), and only visitors with
        live state on that version (`livepath.state.visitors_on`: at most the live states,
        which expire) are re-derived; the others get the new version at their next click."""
        while self.replaced:
            taken, holding = visitors_on(self.replaced[0], MAX_BATCH)
            if not taken:
                self.replaced.pop(0)
                continue
            visitors_wait(holding)
            return True
        return False

    def drain(self, read_events: ReadEvents, *, limit: int = MAX_BATCH,
              lease_s: float = LEASE_S) -> list[BatchReport]:
        """Update waiting visitors, a claimed micro-batch at a time, until none is claimable and
        no visitor is left on a replaced version."""
        self.refresh()  # a tick with nobody waiting still notices a new version
        reports, recheck_until = [], 0.0
        while True:
            claim = visitors_claim(limit, lease_s)
            if not claim.visitors:
                if time.monotonic() > recheck_until:
                    if self._requeue_replaced():
                        continue
                    return reports
                time.sleep(RECHECK_S)  # a visitor put back to wait for its pending item
                continue
            try:
                report = self.update(claim, read_events)
                visitors_wait(report.recheck, delay_s=RECHECK_S)
            except Exception:
                visitors_wait(claim.visitors)  # back in the queue for the retry or the sweep
                raise
            finally:
                visitors_release(claim)
            if report.lost:
                log.warning("live batch: %d visitor(s) taken over after the lease ran out, left to their new "
                            "worker", len(report.lost))
            log.info("live batch: %d visitors, %d updated, %d events, %s", report.visitors, report.updated,
                     report.events, {k: round(v, 4) for k, v in report.seconds.items()})
            reports.append(report)
            if report.recheck:
                recheck_until = time.monotonic() + 2 * RECHECK_S

    def update(self, claim: Claim, read_events: ReadEvents) -> BatchReport:
        """Apply each claimed visitor's unapplied events (each exactly once), fold the batch in,
        and store it for the visitors the claim still holds."""
        started = time.perf_counter()
        self.refresh()
        visitors = claim.visitors
        report = BatchReport(visitors=len(visitors))
        states = states_get(visitors)
        logs = dict(zip(visitors, self.pool.map(lambda v: read_events(v, events_since(states[v])), visitors),
                        strict=True))
        report.seconds["read"] = time.perf_counter() - started
        changed: dict[str, VisitorState] = {}
        applied: dict[str, int] = {}
        # The timestamps of the applied events that are clicks waiting for a list.
        created: dict[str, list[str]] = {}
        recheck = []
        # Ids whose whole history moved away (a log-in, `eventstore.live.visitors_changed`):
        # their cached lists go now rather than LIVE_STATE_TTL_S later, one id left behind per log-in.
        moved_away = []
        young = _stamp(time.time() - PENDING_YOUNG_S)
        for visitor in visitors:
            if any(e.pending and e.ts > young for e in logs[visitor]):
                recheck.append(visitor)
            confirmed = [e for e in logs[visitor] if not e.pending]
            state = states[visitor]
            new = events_new(state, confirmed)
            outdated = any(live.params_key not in state.params for live in self.live.values())
            if new or (outdated and state.history):
                state.history = history_after(state.history, new, limit=settings.VISITOR_HISTORY_MAX)
                state.dismissed = history_after(state.dismissed, new, limit=settings.VISITOR_HISTORY_MAX,
                                                kinds=(DISMISS,))
                events_applied(state, new)
                changed[visitor], applied[visitor] = state, len(new)
                if not state.replay:
                    created[visitor] = [e.ts for e in new]
            elif state.replay and not logs[visitor]:
                moved_away.append(visitor)
        lists: dict[str, dict[str, list[tuple[int, float]] | None]] = {}
        for name, live in self.live.items():
            t0 = time.perf_counter()
            lists[name] = self._fold_in(live, changed)
            report.seconds[name] = time.perf_counter() - t0
        live_keys = {live.params_key for live in self.live.values()}
        for state in changed.values():  # parameters of versions no longer live are dropped
            state.params = {k: v for k, v in state.params.items() if k in live_keys}

        def write(pipe, held: list[str]) -> None:
            for visitor in (v for v in held if v in changed):
                for name, live in self.live.items():
                    items = lists[name][visitor]
                    if items is None:
                        cache.recommendations_forget(visitor, [name], redis=pipe)
                    else:
                        cache.recommendations_set(name, visitor, model_version=live.published.version,
                                                  items=items, as_of_event=changed[visitor].last_event,
                                                  redis=pipe)
            states_put(pipe, {v: changed[v] for v in held if v in changed})
            gone = [v for v in held if v in moved_away]
            for visitor in gone:
                cache.recommendations_forget(visitor, list(self.live), redis=pipe)
            replays_drop(pipe, gone)

        held = set(claims_store(claim, write))
        report.lost = [v for v in visitors if v not in held]
        report.recheck = [v for v in recheck if v in held]  # the new holder looks again itself
        report.updated = sum(v in held for v in changed)
        report.events = sum(n for v, n in applied.items() if v in held)
        self._record_latency([ts for v in visitors if v in held for ts in created.get(v, [])], report)
        for live in self.live.values():
            if live.graph is not None:
                live.graph.evict_idle(time.time() - self.idle_s)
        report.seconds["total"] = time.perf_counter() - started
        return report

    @staticmethod
    def _record_latency(created: list[str], report: BatchReport) -> None:
        """Record how long each applied event waited for its lists, now that they are written.
        A timing lost to a Redis failure is only logged: the lists are in place, and failing
        the batch would run it again for nothing."""
        written = time.time()
        report.latency = [written - _unix(ts) for ts in created]
        try:
            latency.timings_record(report.latency, at=written)
        except RedisError:
            log.warning("live batch: %d latency timings not recorded", len(created), exc_info=True)

    def _fold(self, live: LiveModel, graph: VisitorGraph | None, rows: dict[str, list[int]],
              offsets: torch.Tensor, user_rows: list[int], dismissed: list[list[int]] | None = None):
        """Fine-tune a micro-batch (visitor -> item rows; `dismissed`: each one's dismissed item
        rows, negatives never listed) and rank: (offsets, top values, top rows)."""
        offsets, batch, visits = fold_in_round(live.fold_in, rows, offsets, user_rows=user_rows, graph=graph,
                                               base=live.base, now=time.time(), generator=self.generator,
                                               dismissed=dismissed)
        values, top = live.fold_in.top_unseen(offsets, batch, visits, CACHED_ITEMS)
        return offsets, values, top

    def warm_up(self) -> None:
        """Fold a full synthetic micro-batch into every model and keep nothing: the first real
        visitors then pay no one-off allocations (about 95 MB and most of a second, measured
        with benchmarks/live_memory.py on ml-latest-small)."""
        for live in self.live.values():
            rows = {f"warm-up-{i}": list(range(i, i + 5)) for i in range(MAX_BATCH)}
            scratch = None if live.graph is None else VisitorGraph(live.graph.n_items)
            self._fold(live, scratch, rows, torch.zeros(len(rows), live.dim), [-1] * len(rows))

    def _fold_in(self, live: LiveModel,
                 states: dict[str, VisitorState]) -> dict[str, list[tuple[int, float]] | None]:
        """Fine-tune the visitors' parameters for `live` (in `states`); returns each visitor's
        list, None for a visitor with no movie the version knows (its list is dropped)."""
        rows = {v: live.published.indices(s.history) for v, s in states.items()}
        lists: dict[str, list[tuple[int, float]] | None] = {v: None for v, r in rows.items() if not r}
        visitors = [v for v, r in rows.items() if r]
        if not visitors:
            return lists
        key = live.params_key
        offsets, values, top = self._fold(
            live, live.graph, {v: rows[v] for v in visitors},
            torch.stack([states[v].params.get(key, torch.zeros(live.dim)) for v in visitors]),
            [live.known_users.get(visitor_digest(v), -1) for v in visitors],
            [live.published.indices(states[v].dismissed) for v in visitors],
        )
        movie_ids = live.published.movie_ids
        for i, visitor in enumerate(visitors):
            state = states[visitor]
            state.params[key] = offsets[i]
            state.rounds[key] = state.rounds.get(key, 0) + 1
            lists[visitor] = [(int(movie_ids[r]), float(s))
                              for r, s in zip(top[i].tolist(), values[i].tolist(), strict=True)]
        return lists
