"""The graph worker's state with real (briefly trained) models and the real Redis cache."""

from __future__ import annotations

import pytest

from predictors import cache
from predictors.recommend import GNN_MODELS, recommend
from predictors.worker_state import GraphWorker, effective_history

CLICKED = [1, 260, 1196]  # Toy Story, Star Wars IV, Star Wars V


def _events(movie_ids, kind="click", start=0):
    return [{"event_id": f"e{start + i}", "movie_id": m, "kind": kind} for i, m in enumerate(movie_ids)]


def test_effective_history_replays_adds_and_removals_in_order():
    events = _events([1, 2, 1]) + [{"event_id": "r", "movie_id": 1, "kind": "remove"}] + _events([3], start=9)
    assert effective_history(events) == [2, 3]
    assert effective_history([]) == []


@pytest.fixture(scope="module")
def worker(trained_models):
    return GraphWorker()


def test_apply_fills_the_cache_without_seen_movies_and_is_idempotent(worker):
    events = _events(CLICKED)

    timings = worker.apply("s:state-test", events)

    assert set(timings) == set(GNN_MODELS)
    for model in GNN_MODELS:
        cached = cache.recommendations_get(model, "s:state-test")
        movie_ids = [m for m, _ in cached["items"]]
        assert cached["as_of_event"] == "e2"
        assert len(movie_ids) == len(set(movie_ids)) >= 20
        assert not set(movie_ids) & set(CLICKED)
        scores = [s for _, s in cached["items"]]
        assert scores == sorted(scores, reverse=True)
    assert worker.apply("s:state-test", events) is None  # same event ids: nothing to do


def test_served_list_comes_from_the_cache_and_follows_a_removal(worker):
    events = _events(CLICKED)
    worker.apply("s:remove-test", events)
    fresh = recommend(visitor="s:remove-test", model="ngcf", k=20, history=CLICKED)
    assert fresh.source == "fresh" and not fresh.fallback

    events.append({"event_id": "gone", "movie_id": 260, "kind": "remove"})
    worker.apply("s:remove-test", events)

    assert cache.recommendations_get("ngcf", "s:remove-test")["as_of_event"] == "gone"
    after = recommend(visitor="s:remove-test", model="ngcf", k=20, history=[1, 1196])
    assert after.source == "fresh"
    assert after.items != fresh.items


def test_no_history_is_the_popular_list_and_says_so(trained_models):
    recs = recommend(visitor="s:nobody", model="pinsage", k=10, history=[])
    popular = recommend(visitor="s:nobody", model="popular", k=10, history=[])

    assert recs.fallback and recs.reason == "no_history" and recs.source == "popular"
    assert recs.items == popular.items and len(recs.items) == 10
    assert not popular.fallback


def test_history_without_cache_is_scored_from_published_tables(trained_models):
    recs = recommend(visitor="s:uncached", model="lightgcn", k=20, history=CLICKED)

    assert recs.source == "published" and recs.model_version == trained_models["lightgcn"]
    assert len(recs.items) == 20 and not {m for m, _ in recs.items} & set(CLICKED)
