"""PinSage's positive pairs drawn from chosen edges: the query is the edge's movie and the
positive another movie of the same user."""

import torch

from pytorch_models.data.graph import build_graph
from pytorch_models.models.pinsage.sampler import sample_positive_pairs


def test_positive_pairs_from_given_edges_walk_through_those_edges_users():
    # user 0: movies 0, 1; user 1: movies 1, 2, 3; user 2: movies 3, 4.
    train = torch.tensor([[0, 0], [0, 1], [1, 1], [1, 2], [1, 3], [2, 3], [2, 4]])
    g = build_graph(3, 5, train.numpy())
    edges = train[[0, 6]]  # user 0 - movie 0, user 2 - movie 4

    queries, pos = sample_positive_pairs(g, 200, torch.Generator().manual_seed(0), edges)

    # From (0, 0) the positive can only be movie 1; from (2, 4), movie 3: never through user 1.
    assert len(queries) > 50 and set(zip(queries.tolist(), pos.tolist(), strict=True)) == {(0, 1), (4, 3)}
