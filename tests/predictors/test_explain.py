""""Because you watched …" from the briefly trained models: explanations come from the
visitor's history, for lists scored on request and for the workers' fresh lists alike."""

from __future__ import annotations

import uuid

import pytest
import torch

from predictors import cache, registry
from predictors.explain import because
from predictors.recommend import recommend
from pytorch_models.models.names import FINE_TUNED_LIVE

HISTORY = [1, 260, 1196, 2571, 318]  # Toy Story, Star Wars IV and V, The Matrix, Shawshank


def _visitor() -> str:
    return f"v:{uuid.uuid4().hex}"


@pytest.mark.parametrize("model", FINE_TUNED_LIVE)
def test_every_item_is_explained_by_its_largest_history_terms(trained_models, model):
    recs = recommend(visitor=_visitor(), model=model, k=20, history=HISTORY)

    assert recs.source == "published" and set(recs.because) == {m for m, _ in recs.items}
    published = registry.published(model)
    table = published.checkpoint.item_embeddings.float()
    for movie_id, explaining in recs.because.items():
        assert 1 <= len(explaining) <= 2 and set(explaining) <= set(HISTORY)
        # The first named is the history movie whose term in this item's score is largest.
        history = table[published.indices(HISTORY)]
        if model == "pinsage":
            history = torch.nn.functional.normalize(history, dim=1)
        terms = history @ table[published.index_of[movie_id]]
        assert explaining[0] == HISTORY[int(terms.argmax())]


@pytest.mark.parametrize("model", FINE_TUNED_LIVE)
def test_a_fresh_list_is_explained_from_the_current_history(trained_models, model):
    """A worker's list may predate a removal; its explanation uses the history as it is now."""
    visitor, published = _visitor(), registry.published(model)
    worker_list = recommend(visitor=_visitor(), model=model, k=40, history=HISTORY).items
    cache.recommendations_set(model, visitor, model_version=published.version, items=worker_list,
                              as_of_event="e1")
    history = [m for m in HISTORY if m != 260]

    recs = recommend(visitor=visitor, model=model, k=20, history=history)

    assert recs.source == "fresh" and set(recs.because) == {m for m, _ in recs.items}
    assert all(explaining and set(explaining) <= set(history) for explaining in recs.because.values())


def test_popular_lists_carry_no_explanation(trained_models):
    assert recommend(visitor=_visitor(), model="popular", k=20, history=HISTORY).because == {}
    assert recommend(visitor=_visitor(), model="ngcf", k=20, history=[]).because == {}


def test_movies_the_version_does_not_know_are_left_out(trained_models):
    published = registry.published("lightgcn")
    unknown = max(published.index_of) + 1

    assert because(published, history=[unknown], items=[1]) == {}
    assert set(because(published, history=[unknown, 260], items=[1, unknown])) == {1}
