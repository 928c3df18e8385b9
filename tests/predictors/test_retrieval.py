"""Retrieval through the HNSW index (predictors.retrieval), forced on for ml-latest-small's 9,742
movies: the lists and "More like this" equal the exact scan's, seen movies stay out exactly,
and the index is a file of the version, mapped."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from predictors import registry, retrieval
from predictors.recommend import recommend, similar

EXACT, INDEXED = 10**9, 100  # ANN_MIN_ITEMS: never, and ml-latest-small's 9,742 movies


def _histories(model: str) -> list[list[int]]:
    movie_ids = registry.published(model).movie_ids
    rng = np.random.default_rng(7)
    return [[int(m) for m in rng.choice(movie_ids, size, replace=False)] for size in (1, 3, 12, 60, 250)]


@pytest.mark.parametrize("model", ["lightgcn", "ngcf", "pinsage"])
def test_indexed_lists_equal_the_exact_scan(trained_models, settings, model):
    for n, history in enumerate(_histories(model)):
        settings.ANN_MIN_ITEMS = EXACT
        exact = recommend(visitor=f"v:exact-{model}-{n}", model=model, k=20, history=history)
        settings.ANN_MIN_ITEMS = INDEXED

        indexed = recommend(visitor=f"v:ann-{model}-{n}", model=model, k=20, history=history)

        assert exact.source == indexed.source == "published"
        assert [m for m, _ in indexed.items] == [m for m, _ in exact.items]
        assert np.allclose([s for _, s in indexed.items], [s for _, s in exact.items], atol=1e-5)
        assert not {m for m, _ in indexed.items} & set(history)
    assert retrieval.index_path(registry.published(model).checkpoint.path, retrieval.RECOMMEND).exists()


@pytest.mark.parametrize("model", ["pinsage", "lightgcn"])
def test_more_like_this_through_the_index_equals_the_exact_neighbours(trained_models, settings, model):
    movie_ids = registry.published(model).movie_ids
    for movie_id in [int(m) for m in movie_ids[[0, 1, 100, 2000, 9000]]]:
        settings.ANN_MIN_ITEMS = EXACT
        exact = similar(movie_id=movie_id, k=12, model=model)
        settings.ANN_MIN_ITEMS = INDEXED

        indexed = similar(movie_id=movie_id, k=12, model=model)

        assert [m for m, _ in indexed] == [m for m, _ in exact] and movie_id not in dict(indexed)
        assert np.allclose([s for _, s in indexed], [s for _, s in exact], atol=1e-5)


def test_the_exclusion_is_exact_and_too_few_candidates_fall_back(trained_models, settings):
    settings.ANN_MIN_ITEMS = INDEXED
    published = registry.published("lightgcn")
    table = published.checkpoint.item_embeddings
    query = table[:5].float().mean(0)
    best = torch.topk(table.float() @ query, 40).indices.tolist()

    found = retrieval.top_k(published, retrieval.RECOMMEND, query, lambda rows: table[rows].float() @ query,
                            best[:30], 10)

    assert [row for row, _ in found] == best[30:40]  # the 30 best seen: the next 10, in order
    everything_but_5 = list(range(len(published.movie_ids) - 5))
    assert retrieval.top_k(published, retrieval.RECOMMEND, query, lambda rows: table[rows].float() @ query,
                           everything_but_5, 10) is None


def test_the_recommend_vectors_rank_as_the_model_scores():
    """[x, b, lift] · [q, 1, 0] = x · q + b, and every row has one norm (what HNSW needs)."""
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(50, 8, generator=generator) * torch.rand(50, 1, generator=generator)  # norms differ
    bias = torch.randn(50, generator=generator)
    query = torch.randn(8, generator=generator)

    rows = retrieval.index_vectors(table, bias, retrieval.RECOMMEND)
    scores = (rows @ retrieval.query_vector(query, retrieval.RECOMMEND)[0])

    assert np.allclose(scores, (table @ query + bias).numpy(), atol=1e-5)
    assert np.allclose(np.linalg.norm(rows, axis=1), np.linalg.norm(rows, axis=1).max(), atol=1e-5)
