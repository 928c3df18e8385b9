"""Ranking losses over score tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _reduce(loss: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean over all entries; with `weight` (B,), Σ_b weight_b · mean of row b instead."""
    if weight is None:
        return loss.mean()
    per_row = loss.mean(-1) if loss.dim() > 1 else loss
    return (per_row * weight).sum()


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Bayesian personalised ranking: mean of -log sigmoid(pos - neg).

    pos: (B,) scores of observed pairs; neg: (B,) or (B, M) scores of sampled negatives;
    weight: optional (B,) weights of the pairs (fold-in gives each visitor's pairs 1/count).
    """
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    return _reduce(F.softplus(neg - pos), weight)


def max_margin_loss(
    pos: torch.Tensor, neg: torch.Tensor, margin: float = 1.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Hinge loss of PinSage (Ying et al. 2018): mean of max(0, neg - pos + margin).

    pos: (B,) scores of (query, positive); neg: (B,) or (B, M) scores of (query, negative);
    weight: as in `bpr_loss`.
    """
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    return _reduce((neg - pos + margin).clamp(min=0), weight)
