"""Score functions, users (B,) -> (B, n_items), shared by training, evaluation and serving."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pytorch_models.data.graph import SymmetricAdjacency
from pytorch_models.data.sequences import user_sequences
from pytorch_models.models.architectures import build_model
from pytorch_models.models.graphfilter.model import user_scorer
from pytorch_models.models.graphfilter.spectral import serving_filter
from pytorch_models.models.sasrec import SASRec, padded_rows

SEQUENCE_CHUNK = 256  # sequences scored at once


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


def sequence_scorer(model: SASRec, sequences: Sequence[np.ndarray]) -> Callable[[torch.Tensor], torch.Tensor]:
    """users (B,) -> (B, n_items): every item scored as what follows the user's sequence of item
    rows (oldest first), its last max_len items, SEQUENCE_CHUNK users at a time."""

    @torch.no_grad()
    def score(users: torch.Tensor) -> torch.Tensor:
        model.eval()
        rows = padded_rows([list(sequences[u]) for u in users.tolist()], model.config.max_len)
        return torch.cat([model.last_scores(rows[i:i + SEQUENCE_CHUNK])
                          for i in range(0, len(rows), SEQUENCE_CHUNK)])

    return score


_SEQUENCE_MODELS: dict[int, SASRec] = {}


def sequence_model(checkpoint) -> SASRec:
    """A loaded SASRec checkpoint's module, in eval mode, built once per loaded checkpoint."""
    key = id(checkpoint)
    if key not in _SEQUENCE_MODELS:
        model = build_model(checkpoint.model_name, checkpoint.config)
        model.load_state_dict(checkpoint.state_dict())
        _SEQUENCE_MODELS[key] = model.eval()
        weakref.finalize(checkpoint, _SEQUENCE_MODELS.pop, key, None)
    return _SEQUENCE_MODELS[key]


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
    if name == "sasrec":
        stamps = checkpoint.graph().train_stamps
        if stamps is None or len(stamps) != len(train_pairs):
            raise ValueError("a sasrec checkpoint scores users by the order of their training items: "
                             "it needs the snapshot's train_stamps for these pairs")
        return sequence_scorer(sequence_model(checkpoint), user_sequences(train_pairs, stamps, n_users))
    model = build_model(name, checkpoint.config)
    model.load_state_dict(checkpoint.state_dict())
    model.eval()
    with torch.no_grad():
        users, items = model.embeddings(SymmetricAdjacency(n_users, model.config.n_items, train_pairs).matrix)
    return dot_scorer(users, items)
