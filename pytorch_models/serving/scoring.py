"""Score functions, users (B,) -> (B, n_items), shared by training, evaluation and serving."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from pytorch_models.data.graph import SymmetricAdjacency
from pytorch_models.models.architectures import build_model
from pytorch_models.models.graphfilter.model import user_scorer
from pytorch_models.models.graphfilter.spectral import serving_filter


def user_item_mean(item_vectors: torch.Tensor, pairs: np.ndarray, n_users: int) -> torch.Tensor:
    """(n_users, d) mean over each user's items of `item_vectors` (n_items, d)."""
    pairs = torch.as_tensor(np.asarray(pairs), dtype=torch.int64).reshape(-1, 2)
    total = torch.zeros(n_users, item_vectors.shape[1]).index_add_(0, pairs[:, 0], item_vectors[pairs[:, 1]])
    count = torch.bincount(pairs[:, 0], minlength=n_users).clamp(min=1).unsqueeze(1)
    return total / count


def pinsage_user_vectors(item_embeddings: torch.Tensor, pairs: np.ndarray, n_users: int) -> torch.Tensor:
    """PinSage ranks a user by the mean of the L2-normalised embeddings of the user's items."""
    return user_item_mean(F.normalize(item_embeddings, dim=1), pairs, n_users)


def dot_scorer(user_vectors: torch.Tensor, item_table: torch.Tensor, item_bias: torch.Tensor | None = None):
    """users (B,) -> (B, n_items) = user_vectors[users] @ item_table.T (+ item_bias)."""

    def score(users: torch.Tensor) -> torch.Tensor:
        scores = user_vectors[users] @ item_table.T
        return scores + item_bias if item_bias is not None else scores

    return score


def popularity_scorer(counts: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda users: counts.float().expand(len(users), -1)


def checkpoint_scorer(checkpoint, train_pairs: np.ndarray, n_users: int):
    """A score function for the users of `train_pairs` from a loaded checkpoint."""
    name = checkpoint.model_name
    if name == "popular":
        return popularity_scorer(checkpoint.extra["item_popularity"])
    if name == "pinsage":
        table = checkpoint.item_embeddings.float()
        return dot_scorer(pinsage_user_vectors(table, train_pairs, n_users), table,
                          checkpoint.extra["item_bias"])
    if name == "graphfilter":
        return user_scorer(serving_filter(checkpoint), train_pairs, n_users)
    model = build_model(name, checkpoint.config)
    model.load_state_dict(checkpoint.state_dict())
    model.eval()
    with torch.no_grad():
        users, items = model.embeddings(SymmetricAdjacency(n_users, model.config.n_items, train_pairs).matrix)
    return dot_scorer(users, items)
