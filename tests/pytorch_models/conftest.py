"""Tiny random two-community graphs shared by the model tests (no Django needed)."""

import numpy as np
import pytest

import pytorch_models  # noqa: F401  (sets DGLBACKEND before dgl loads)
from pytorch_models.data.interactions import Interactions, movielens_item_features


@pytest.fixture(scope="session")
def services():
    """Overrides tests/conftest.py's autouse `services`: these tests are pure PyTorch/DGL and
    must run without Django settings, Kafka, DynamoDB or Redis."""
    yield None


def community_interactions(n_users=40, n_items=30, per_user=8, seed=0) -> Interactions:
    """Users 0..n/2-1 watch items of the first half, the others items of the second half."""
    rng = np.random.default_rng(seed)
    half_items = n_items // 2
    pairs = []
    for user in range(n_users):
        offset = 0 if user < n_users // 2 else half_items
        for item in rng.choice(half_items, per_user, replace=False):
            pairs.append((user, offset + item))
    pairs = np.array(pairs, dtype=np.int64)
    test_mask = rng.random(len(pairs)) < 0.2
    return Interactions(
        n_users=n_users,
        n_items=n_items,
        train=pairs[~test_mask],
        test=pairs[test_mask],
        item_ids=np.arange(100, 100 + n_items),
        user_ids=np.arange(n_users),
        split={"test_fraction": 0.2, "seed": seed},
    )


@pytest.fixture
def communities() -> Interactions:
    return community_interactions()


@pytest.fixture
def community_features(communities):
    n = communities.n_items
    genres = [["Comedy"] if i < n // 2 else ["Drama", "War"] for i in range(n)]
    titles = [f"Movie number {i} ({1950 + i})" for i in range(n)]
    tags = [["funny"] if i < n // 2 else ["dark", "war"] for i in range(n)]
    tags[0] = ["funny", "only on this one"]  # on one movie: not a feature
    return movielens_item_features(titles, genres, [1950 + i for i in range(n)], tags)
