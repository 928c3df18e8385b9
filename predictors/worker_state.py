"""The graph worker's state: the only mutable copy of the graph and the weights.

Exactly one process holds a `GraphWorker` (the Celery worker on queue `graph`, pool
solo). For each visitor it keeps a user node per model and the event ids already
applied, so an event delivered twice counts once. A visitor's history is always
replayed from the full event list (click/rate add a movie, remove takes it out), so
the graph converges to the click log whatever order notifications arrive in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch

from predictors import cache, registry
from predictors.recommend import GNN_MODELS
from pytorch_models.online import OnlineModel

log = logging.getLogger(__name__)

# Stored per visitor and model; pages ask for 20 after removing what the visitor has seen.
CACHED_ITEMS = 100


def effective_history(events: Iterable[Mapping]) -> list[int]:
    """Movie ids the visitor currently has, oldest first, from their ordered events."""
    history: dict[int, None] = {}
    for event in events:
        if event["kind"] == "remove":
            history.pop(event["movie_id"], None)
        else:
            history.setdefault(event["movie_id"], None)
    return list(history)


@dataclass
class _Visitor:
    node: int
    items: set[int] = field(default_factory=set)  # row indices currently linked to the node


@dataclass
class _LiveModel:
    online: OnlineModel
    published: registry.Published
    visitors: dict[str, _Visitor] = field(default_factory=dict)


class GraphWorker:
    def __init__(self, models: Iterable[str] = GNN_MODELS):
        self.model_names = tuple(models)
        self.live: dict[str, _LiveModel] = {}
        self.applied: dict[str, set[str]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Switch to newly published versions; visitors are re-applied lazily on their next event."""
        changed = False
        for name in self.model_names:
            published = registry.published(name)
            if published is None:
                self.live.pop(name, None)
                continue
            current = self.live.get(name)
            if current is None or current.published.version != published.version:
                folder = registry.model_dir() / name / published.version
                self.live[name] = _LiveModel(OnlineModel.from_checkpoint(folder), published)
                log.info("graph worker loaded %s %s", name, published.version)
                changed = True
        if changed:
            self.applied.clear()

    def apply(self, visitor: str, events: list[Mapping]) -> dict[str, float] | None:
        """Bring `visitor` up to date with `events`; returns seconds spent per model,
        or None when every event was already applied."""
        self.refresh()
        event_ids = {e["event_id"] for e in events}
        done = self.applied.setdefault(visitor, set())
        if event_ids <= done and event_ids:
            return None
        history = effective_history(events)
        timings = {}
        for name, live in self.live.items():
            started = time.perf_counter()
            self._apply_model(name, live, visitor, history, events[-1]["event_id"] if events else None)
            timings[name] = time.perf_counter() - started
        done |= event_ids
        return timings

    def _apply_model(
        self, name: str, live: _LiveModel, visitor: str, history: list[int], as_of_event: str | None
    ) -> None:
        rows = live.published.indices(history)
        state = live.visitors.get(visitor)
        if state is None and rows:
            state = live.visitors[visitor] = _Visitor(node=live.online.add_user())
        changed = False
        if state is not None:
            current = set(rows)
            added, removed = current - state.items, state.items - current
            if removed:
                live.online.remove_interactions(state.node, sorted(removed))
            if added:
                live.online.add_interactions(state.node, sorted(added))
            state.items = current
            changed = bool(added or removed)
        if not rows:
            cache.recommendations_forget(visitor, [name])
            return
        if changed:
            live.online.fine_tune(state.node)
        scores = live.online.scores(state.node).clone()
        scores[rows] = float("-inf")
        values, top = torch.topk(scores, min(CACHED_ITEMS, scores.numel() - len(rows)))
        items = [(int(live.published.movie_ids[r]), float(v)) for r, v in zip(top.tolist(), values.tolist())]
        cache.recommendations_set(
            name, visitor, model_version=live.published.version, items=items, as_of_event=as_of_event
        )
