import math

import numpy as np
import pytest
import torch

from pytorch_models.evaluation.metrics import ranking_metrics


def test_metrics_match_hand_computed_values():
    # 2 users, 6 items. User 0 trained on item 0 (masked), test {1, 3}; user 1 test {5}.
    scores = torch.tensor(
        [
            [9.0, 5.0, 4.0, 3.0, 2.0, 1.0],  # ranking after masking item 0: 1, 2, 3 ...
            [6.0, 5.0, 4.0, 3.0, 2.0, 1.0],  # item 5 is last
        ]
    )
    train = np.array([[0, 0]])
    test = np.array([[0, 1], [0, 3], [1, 5]])
    got = ranking_metrics(lambda users: scores[users], train, test, n_users=2, n_items=6, k=3, batch_size=1)
    # user 0: top3 = [1, 2, 3] -> hits at ranks 1 and 3; user 1: top3 = [0, 1, 2], no hit
    dcg0 = 1 / math.log2(2) + 1 / math.log2(4)
    idcg0 = 1 / math.log2(2) + 1 / math.log2(3)
    assert got["recall@3"] == pytest.approx((1.0 + 0.0) / 2)
    assert got["precision@3"] == pytest.approx((2 / 3 + 0) / 2)
    assert got["ndcg@3"] == pytest.approx((dcg0 / idcg0 + 0) / 2)
    assert got["hit@3"] == pytest.approx(0.5)
    assert got["mrr@3"] == pytest.approx(0.5)
    assert got["n_users_evaluated"] == 2


def test_users_without_test_items_are_skipped():
    scores = torch.arange(4.0).flip(0).repeat(3, 1)
    got = ranking_metrics(lambda u: scores[u], np.zeros((0, 2), np.int64), np.array([[1, 0]]), 3, 4, k=2)
    assert got["n_users_evaluated"] == 1 and got["recall@2"] == 1.0 and got["ndcg@2"] == 1.0


def test_a_bound_on_users_ranks_a_seeded_sample_of_them():
    # 100 users, each with test item (user % 5): scores hit it only for users below 30.
    n_users, n_items = 100, 5
    test = np.array([[u, u % 5] for u in range(n_users)])
    scores = torch.zeros(n_users, n_items)
    scores[torch.arange(n_users), torch.arange(n_users) % 5] = -1.0  # last, a miss
    scores[torch.arange(30), torch.arange(30) % 5] = 1.0  # first, a hit
    asked = []

    def score(users):
        asked.append(users.clone())
        return scores[users]

    train = np.zeros((0, 2), np.int64)
    got = ranking_metrics(score, train, test, n_users, n_items, k=1, users_max=40, seed=3)
    ranked = torch.cat(asked)
    assert got["n_users_evaluated"] == 40 and len(ranked.unique()) == 40  # 40 distinct users
    assert got["recall@1"] == pytest.approx(float((ranked < 30).double().mean()))  # over those 40 only
    again = ranking_metrics(lambda u: scores[u], train, test, n_users, n_items, k=1, users_max=40, seed=3)
    assert again == got  # the same seed draws the same users
    asked.clear()
    ranking_metrics(score, train, test, n_users, n_items, k=1, users_max=40, seed=4)
    assert not torch.equal(torch.cat(asked), ranked)  # another seed, another sample
    whole = ranking_metrics(lambda u: scores[u], train, test, n_users, n_items, k=1, users_max=100)
    assert whole["n_users_evaluated"] == 100 and whole["recall@1"] == pytest.approx(0.3)
