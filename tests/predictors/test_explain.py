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
def test_every_item_is_explained_by_the_history_terms_that_set_it_apart(trained_models, model):
    recs = recommend(visitor=_visitor(), model=model, k=20, history=HISTORY)

    assert recs.source == "published" and set(recs.because) == {m for m, _ in recs.items}
    published = registry.published(model)
    table = published.checkpoint.item_embeddings.float()
    history = table[published.indices(HISTORY)]
    if model == "pinsage":
        history = torch.nn.functional.normalize(history, dim=1)
    page = [m for m, _ in recs.items]
    terms = table[published.indices(page)] @ history.T  # (page, history), each term times 5
    standing_out = (terms - terms.mean(0)).masked_fill(terms <= 0, float("-inf"))
    for movie_id, explaining in recs.because.items():
        assert 1 <= len(explaining) <= 2 and set(explaining) <= set(HISTORY)
        # The first named is the history movie whose positive term in this item's score stands
        # out most from that movie's mean term on the page; every one named is a positive term.
        row = page.index(movie_id)
        assert explaining[0] == HISTORY[int(standing_out[row].argmax())]
        assert all(terms[row, HISTORY.index(m)] > 0 for m in explaining)
    assert len({tuple(e) for e in recs.because.values()}) > 2  # not the same names everywhere


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
