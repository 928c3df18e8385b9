"""Ranking losses over score tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: mean of -log sigmoid(pos - neg).

    pos: (B,) scores of observed pairs; neg: (B,) or (B, M) scores of sampled negatives.
    """
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    return F.softplus(neg - pos).mean()


def max_margin_loss(pos: torch.Tensor, neg: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Hinge loss of PinSage (Ying et al. 2018): mean of max(0, neg - pos + margin).

    pos: (B,) scores of (query, positive); neg: (B,) or (B, M) scores of (query, negative).
    """
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    return (neg - pos + margin).clamp(min=0).mean()
