"""BPR's negatives: uniform among what a user has not interacted with, and for a user with
negatives of its own (a visitor's "Not interested"), those half of the time."""

import numpy as np
import torch

from pytorch_models.training.bpr_sampler import EXPLICIT_SHARE, PositiveSet


def test_a_users_own_negatives_are_drawn_for_it_alone_and_never_a_positive():
    train = np.array([[0, 1], [0, 2], [1, 1], [2, 3]])
    positives = PositiveSet(train, n_items=1000, negatives=np.array([[1, 7], [1, 9]]))
    users = torch.tensor([0, 1, 2]).repeat(4000)

    drawn = positives.sample_negatives(users, torch.Generator().manual_seed(0))

    own = np.isin(drawn.numpy(), [7, 9])
    share = own[users.numpy() == 1].mean()
    assert abs(share - EXPLICIT_SHARE) < 0.03  # 7 and 9 by their own draw, plus 2 in 1000 by chance
    assert own[users.numpy() != 1].mean() < 0.01
    assert not positives.contains(users, drawn).any()

