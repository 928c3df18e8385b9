"""Why a movie is recommended: each history item's share of the visitor's score for it.

The scores a visitor gets from the published tables (`fold_in.score_history`) are linear in
the visitor's history H (n = |H| items), so they split exactly into one term per history item:

- LightGCN / NGCF: u = (1/n) Σ_h e_h, so s_i = <u, e_i> = Σ_h <e_h, e_i> / n.
- PinSage: q = (1/n) Σ_h ẑ_h (ẑ = z / |z|), so s_i = <q, z_i> + b_i = Σ_h <ẑ_h, z_i> / n + b_i;
  the bias b_i belongs to the item, not to any history item, and is left out.
- Graph filter: every step of the filter is linear in the history row r = Σ_h e_h, so
  s_i = Σ_h F(e_h)_i, with F(e_h) the scores of a one-item history: one filter pass over
  min(n, k) one-hot rows (the history's) or columns (the listed items') gives every term.

The history items with the largest terms are therefore exactly the ones that contributed most
to the score, not a similarity heuristic beside it. One (k, n) matrix product covers all k
recommended items at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pytorch_models.checkpoint import Checkpoint
from pytorch_models.models.graphfilter.model import GraphFilter
from pytorch_models.models.graphfilter.spectral import SpectralFilter, serving_filter
from pytorch_models.models.names import PERSONALISED_MODELS


def contributions(item_table: torch.Tensor, history_rows: torch.Tensor, item_rows: torch.Tensor,
                  top: int = 2, *, unit_history: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The `top` largest per-history-item terms <h, e_i> / n of each item's score.

    item_table: (I, d); history_rows: (n,) the visitor's rows, n > 0; item_rows: (k,) the items
    to explain; unit_history: normalise the history rows first (PinSage's query). Returns
    ((k, t) terms, (k, t) history rows), largest first, t = min(top, n).
    """
    history = item_table[history_rows]  # (n, d)
    if unit_history:
        history = F.normalize(history, dim=1)
    terms = item_table[item_rows] @ history.T / len(history_rows)  # (k, n)
    values, order = torch.topk(terms, min(top, len(history_rows)), dim=1)
    return values, history_rows[order]


def explain_history(checkpoint: Checkpoint, history_rows: Sequence[int], item_rows: Sequence[int],
                    top: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """`contributions` with the decomposition of `score_history` for this checkpoint's model."""
    if checkpoint.model_name not in PERSONALISED_MODELS:
        raise ValueError(f"{checkpoint.model_name!r} scores do not come from a history")
    if checkpoint.model_name == "graphfilter":
        return filter_contributions(serving_filter(checkpoint), history_rows, item_rows, top)
    return contributions(
        checkpoint.item_embeddings.float(),
        torch.as_tensor(list(history_rows), dtype=torch.int64),
        torch.as_tensor(list(item_rows), dtype=torch.int64),
        top,
        unit_history=checkpoint.model_name == "pinsage",
    )


def filter_contributions(graph_filter: GraphFilter | SpectralFilter, history_rows: Sequence[int],
                         item_rows: Sequence[int], top: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The graph filter's `top` largest terms F(e_h)_i of each item's score, as `contributions`."""
    history_rows = torch.as_tensor(list(history_rows), dtype=torch.int64)
    item_rows = torch.as_tensor(list(item_rows), dtype=torch.int64)
    if isinstance(graph_filter, SpectralFilter):  # M's entries from the factors: n · k · m
        terms = graph_filter.entries(history_rows, item_rows).T  # (k, n)
    elif len(item_rows) < len(history_rows):  # the listed items' columns of the filter: k passes, not n
        terms = graph_filter.columns(item_rows)[history_rows].T  # (k, n)
    else:
        one_hot = torch.zeros(len(history_rows), graph_filter.n_items)
        one_hot[torch.arange(len(history_rows)), history_rows] = 1.0
        terms = graph_filter.scores(one_hot)[:, item_rows].T  # (k, n)
    values, order = torch.topk(terms, min(top, len(history_rows)), dim=1)
    return values, history_rows[order]
