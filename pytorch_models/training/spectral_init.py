"""Spectral initialisation: ego embeddings (PinSage: item id embeddings) from the top singular
vectors of the normalised interaction matrix R̃ = D_U^-1/2 R D_I^-1/2, the off-diagonal block
of the adjacency that LightGCN and NGCF propagate over.

With R̃ ≈ U Σ Vᵀ (top d), users start at U Σ^a and items at V Σ^a. The adjacency maps the
pair (U, V) to (U Σ, V Σ), so LightGCN started there scores, before any step,

    score(u, i) = Σ_k U_uk V_ik σ_k^2a (1 + σ_k + ... + σ_k^K)² / (K + 1)²

a low-pass graph filter over the top d components, the family the training-free filters
(GF-CF, BSPM) come from: training starts from a ranking close to theirs instead of from noise.
Each table is rescaled to the root-mean-square of the model's own random initialisation, so
the learning rate and the L2 term meet the sizes they were tuned for.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from torch import nn

from pytorch_models.linalg import binary_matrix, normalize, top_singular

log = logging.getLogger(__name__)

EXPONENT = 0.5  # a in U Σ^a, V Σ^a: the singular values split evenly between the two sides


def spectral_tables(train_pairs: np.ndarray, n_users: int, n_items: int, dim: int,
                    exponent: float = EXPONENT) -> tuple[torch.Tensor, torch.Tensor]:
    """(U Σ^a (n_users, dim), V Σ^a (n_items, dim)) of R̃'s top `dim` singular triplets,
    columns past R̃'s rank left at 0."""
    started = time.perf_counter()
    normalized, _ = normalize(binary_matrix(train_pairs, n_users, n_items))
    values, right = top_singular(normalized, dim)
    kept = values > 1e-8 * values.max(initial=0.0)
    values, right = values[kept], right[:, kept]
    left = normalized @ right / values  # U = R̃ V Σ^-1
    users, items = np.zeros((n_users, dim)), np.zeros((n_items, dim))
    users[:, : len(values)] = left * values**exponent
    items[:, : len(values)] = right * values**exponent
    log.info("spectral initialisation: top %d singular vectors in %.1fs (σ1 %.3f, σ%d %.3f)", len(values),
             time.perf_counter() - started, values[0] if len(values) else 0.0, len(values),
             values[-1] if len(values) else 0.0)
    return torch.from_numpy(users).float(), torch.from_numpy(items).float()


def _rms(table: torch.Tensor) -> torch.Tensor:
    return table.pow(2).mean().sqrt()


def spectral_initialiser(train_pairs: np.ndarray, n_users: int, n_items: int):
    """An `initialise` hook for `train_model`: overwrite a LightGCN/NGCF model's user and item
    ego tables (PinSage: its item id table) with the spectral tables, scaled together to the
    rms its random init gave."""

    def initialise(model: nn.Module) -> None:
        tables = ([model.user_embedding.weight, model.item_embedding.weight]
                  if hasattr(model, "user_embedding") else [model.input.id_embedding.weight])
        users, items = spectral_tables(train_pairs, n_users, n_items, model.config.dim)
        spectral = [users, items] if len(tables) == 2 else [items]
        with torch.no_grad():
            scale = _rms(torch.cat(tables)) / _rms(torch.cat(spectral)).clamp_min(1e-12)
            for table, values in zip(tables, spectral, strict=True):
                table.copy_(values * scale)

    return initialise
