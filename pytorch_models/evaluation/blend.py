"""A blend of recommenders: the weighted sum of their scores, each standardised per user.

Two models' scores live on unrelated scales (a graph filter's are sums of normalised
propagation, a GNN's are dot products that grow with training), so each model's row for a
user is first turned into z-scores over the items the user has not seen: (s - mean) / std.
That keeps every model's own ranking and lets the weights say how much each counts. Seen
items are left out of the mean and the spread because they are never ranked, and a filter
scores them far above the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from pytorch_models.evaluation.metrics import _csr, _rows

Scorer = Callable[[torch.Tensor], torch.Tensor]


def standardised(scores: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """(B, I) scores -> (B, I) z-scores over each row's unseen items (`seen`: (B, I) bool)."""
    unseen = (~seen).to(scores.dtype)
    count = unseen.sum(1, keepdim=True).clamp_min(1.0)
    mean = (scores * unseen).sum(1, keepdim=True) / count
    centred = scores - mean
    std = ((centred * unseen).pow(2).sum(1, keepdim=True) / count).sqrt().clamp_min(1e-12)
    return centred / std


def blended_scorer(scorers: Sequence[Scorer], weights: Sequence[float], train_pairs: np.ndarray, n_users: int,
                   n_items: int) -> Scorer:
    """users (B,) -> (B, I) Σ_m weights[m] · standardised(scorers[m](users)), the seen items
    of `train_pairs` left out of each row's mean and spread."""
    if len(scorers) != len(weights) or not scorers:
        raise ValueError(f"{len(scorers)} scorers and {len(weights)} weights: give one weight per model")
    crow, items = _csr(train_pairs, n_users)

    def score(users: torch.Tensor) -> torch.Tensor:
        seen = torch.zeros(len(users), n_items, dtype=torch.bool)
        seen[_rows(crow, items, users)] = True
        total = torch.zeros(len(users), n_items)
        for scorer, weight in zip(scorers, weights, strict=True):
            total += weight * standardised(scorer(users).float(), seen)
        return total

    return score
