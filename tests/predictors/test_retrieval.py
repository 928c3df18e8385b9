"""Retrieval through the HNSW index (predictors.retrieval): on a small catalogue the indexed top-k
is the exact top-k, seen movies stay out exactly and a short candidate set falls back; forced on
for ml-latest-small's 9,742 movies, the lists and "More like this" are the exact scan's, and the
index is a file of the version."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch

from predictors import registry, retrieval
from predictors.recommend import recommend, similar

EXACT, INDEXED = 10**9, 100  # ANN_MIN_ITEMS: never, and ml-latest-small's 9,742 movies


@pytest.fixture(scope="module")
def small_catalogue(tmp_path_factory):
    """2,000 movies in 40 clusters, norms spread 10x, with a bias (PinSage's scores), and its
    list index written and mapped back as a version's is."""
    generator = torch.Generator().manual_seed(3)
    centres = torch.randn(40, 32, generator=generator)
    cluster = torch.randint(0, 40, (2000,), generator=generator)
    spread = 0.7 * torch.randn(2000, 32, generator=generator)
    table = torch.nn.functional.normalize(centres[cluster] + spread, dim=1)
    table = table * torch.exp(0.6 * torch.randn(2000, 1, generator=generator))
    bias = 0.2 * torch.randn(2000, generator=generator)
    faiss.omp_set_num_threads(1)  # one thread links the graph the same way every run
    path = retrieval.index_write(tmp_path_factory.mktemp("version"), retrieval.RECOMMEND, table, bias)
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    return table, bias, cluster, retrieval.Retriever(index, retrieval.RECOMMEND)


def _exact(table, bias, query, seen, k):
    scores = table @ query + bias
    scores[seen] = float("-inf")
    values, rows = torch.topk(scores, k)
    return rows.tolist(), values


def test_on_a_small_catalogue_the_indexed_top_k_is_the_exact_top_k(small_catalogue):
    table, bias, cluster, retriever = small_catalogue
    rng = np.random.default_rng(0)
    for _ in range(40):
        members = np.flatnonzero(cluster.numpy() == rng.integers(40))
        seen = rng.choice(members, int(rng.integers(1, 30)), replace=False).tolist()
        query = table[seen].mean(0)

        found = retriever.top_k(query, lambda rows, q=query: table[rows] @ q + bias[rows], seen, 20)

        rows, values = _exact(table, bias, query, seen, 20)
        assert [row for row, _ in found] == rows and not set(rows) & set(seen)
        assert torch.allclose(torch.tensor([score for _, score in found]), values, atol=1e-5)


def test_the_exclusion_is_exact_and_too_few_candidates_fall_back(small_catalogue):
    table, bias, _, retriever = small_catalogue
    query = table[:5].mean(0)
    best, _ = _exact(table, bias, query, [], 40)

    found = retriever.top_k(query, lambda rows: table[rows] @ query + bias[rows], best[:30], 10)

    assert [row for row, _ in found] == best[30:40]  # the 30 best seen: the next 10, in order
    all_but_5 = list(range(1995))
    assert retriever.top_k(query, lambda rows: table[rows] @ query + bias[rows], all_but_5, 10) is None


def test_the_index_vectors_rank_as_the_model_scores():
    """[x, b] · [q, 1] = x · q + b; the unit rows' products are the cosines."""
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(50, 8, generator=generator) * torch.rand(50, 1, generator=generator)  # norms differ
    bias = torch.randn(50, generator=generator)
    query = torch.randn(8, generator=generator)

    rows = retrieval.index_vectors(table, bias, retrieval.RECOMMEND)
    scores = (rows @ retrieval.query_vector(query, retrieval.RECOMMEND)[0])

    assert np.allclose(scores, (table @ query + bias).numpy(), atol=1e-5)
    unit = retrieval.index_vectors(table, None, retrieval.SIMILAR)
    cosines = unit @ retrieval.query_vector(table[3], retrieval.SIMILAR)[0]
    assert np.allclose(cosines, torch.nn.functional.cosine_similarity(table, table[3:4]).numpy(), atol=1e-5)


def _histories(model: str) -> list[list[int]]:
    movie_ids = registry.published(model).movie_ids
    rng = np.random.default_rng(7)
    return [[int(m) for m in rng.choice(movie_ids, size, replace=False)] for size in (1, 3, 12, 60, 250)]


@pytest.mark.parametrize("model", ["lightgcn", "ngcf", "pinsage"])
def test_indexed_lists_are_the_exact_scans(trained_models, settings, model):
    """The trained tables of the test suite (a few epochs): at most one of a list's 20 movies
    differs (measured: 2 of 800 for LightGCN, none for NGCF and PinSage), and what is listed
    has its exact score."""
    found = 0
    for n, history in enumerate(_histories(model)):
        settings.ANN_MIN_ITEMS = EXACT
        exact = dict(recommend(visitor=f"v:exact-{model}-{n}", model=model, k=20, history=history).items)
        settings.ANN_MIN_ITEMS = INDEXED

        indexed = recommend(visitor=f"v:ann-{model}-{n}", model=model, k=20, history=history)

        assert indexed.source == "published" and len(indexed.items) == 20
        assert not {m for m, _ in indexed.items} & set(history)
        shared = [(m, s) for m, s in indexed.items if m in exact]
        assert len(shared) >= 19
        assert np.allclose([s for _, s in shared], [exact[m] for m, _ in shared], atol=1e-5)
        found += len(shared)
    assert found >= 99  # of 100
    assert retrieval.index_path(registry.published(model).checkpoint.path, retrieval.RECOMMEND).exists()


@pytest.mark.parametrize("model", ["pinsage", "lightgcn"])
def test_more_like_this_through_the_index_equals_the_exact_neighbours(trained_models, settings, model,
                                                                     monkeypatch):
    from predictors import recommend as serving

    monkeypatch.setattr(serving, "_neighbours", lambda published: None)  # PinSage's table aside
    movie_ids = registry.published(model).movie_ids
    for movie_id in [int(m) for m in movie_ids[[0, 1, 100, 2000, 9000]]]:
        settings.ANN_MIN_ITEMS = EXACT
        exact = similar(movie_id=movie_id, k=12, model=model)
        settings.ANN_MIN_ITEMS = INDEXED

        indexed = similar(movie_id=movie_id, k=12, model=model)

        assert [m for m, _ in indexed] == [m for m, _ in exact] and movie_id not in dict(indexed)
        assert np.allclose([s for _, s in indexed], [s for _, s in exact], atol=1e-5)


def test_a_process_maps_the_index_file_rather_than_reading_it(trained_models, settings):
    """Like the tables (tests/pytorch_models/test_shared_tables.py), the index is pages of its
    file: every web process that searches it shares them."""
    settings.ANN_MIN_ITEMS = INDEXED
    published = registry.published("lightgcn")
    path = retrieval.index_path(published.checkpoint.path, retrieval.SIMILAR)

    retrieval.retriever_for(published, retrieval.SIMILAR)

    mapped, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5:
                inside = len(parts) >= 6 and parts[5] == str(path)
            elif inside and parts[0] == "Size:":
                mapped += int(parts[1]) * 1024
    assert mapped >= path.stat().st_size
