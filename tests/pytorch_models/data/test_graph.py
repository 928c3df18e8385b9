import numpy as np
import torch

from pytorch_models.data.graph import MOVIE, USER, WATCHED, WATCHED_BY, build_graph, normalized_adjacency


def test_build_graph_types_and_counts():
    pairs = np.array([[0, 1], [1, 1], [1, 2]])
    g = build_graph(2, 4, pairs)
    assert set(g.ntypes) == {USER, MOVIE} and set(g.etypes) == {WATCHED, WATCHED_BY}
    assert g.num_nodes(MOVIE) == 4 and g.num_edges(WATCHED) == 3 and g.num_edges(WATCHED_BY) == 3
    assert g.successors(1, etype=WATCHED).tolist() == [1, 2]


def test_normalized_adjacency_matches_dense_formula():
    pairs = np.array([[0, 0], [0, 1], [1, 1], [2, 0]])
    n_users, n_items = 3, 2
    dense = torch.zeros(5, 5)
    for u, i in pairs:
        dense[u, n_users + i] = dense[n_users + i, u] = 1
    d = dense.sum(1).pow(-0.5)
    expected = d[:, None] * dense * d[None, :]
    got = normalized_adjacency(n_users, n_items, pairs)
    assert got.layout == torch.sparse_csr
    assert torch.allclose(got.to_dense(), expected)
    assert torch.allclose(got.to_dense(), got.to_dense().T)
