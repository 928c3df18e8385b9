"""Why a movie is recommended: each history item's share of the visitor's score for it.

The scores a visitor gets from the published tables (`fold_in.score_history`) are linear in
the visitor's history H (n = |H| items), so they split exactly into one term per history item:

- LightGCN / NGCF: u = (1/n) Σ_h e_h, so s_i = <u, e_i> = Σ_h <e_h, e_i> / n.
- PinSage: q = (1/n) Σ_h ẑ_h (ẑ = z / |z|), so s_i = <q, z_i> + b_i = Σ_h <ẑ_h, z_i> / n + b_i;
  the bias b_i belongs to the item, not to any history item, and is left out.
- Graph filter: every step of the filter is linear in the history row r = Σ_h e_h, so
  s_i = Σ_h F(e_h)_i, with F(e_h) the scores of a one-item history: one filter pass over
  min(n, k) one-hot rows (the history's) or columns (the listed items') gives every term.

Which terms name the reasons. The largest terms are exact, but the same few history movies have
the largest terms for almost every candidate (the ones nearest the visitor's mean), so a page
named the same two everywhere. `distinctive` (what the site shows) names, among an item's
positive terms, those that stand out most from the same history item's mean term over the
items explained together: what sets this item apart. That is also what its rank depends on:
removing history item h moves every score by its term for h, so the item falls below the
others by how much its term exceeds theirs. Every named movie is still a positive term of the
score. `largest` is the rule it replaced.

`counterfactual` answers the deletion test itself, for the scores the terms split: removing h
takes its term out of every score (for the mean models the rest is scaled by n/(n-1)), so
`removal_ranks` gives each item's rank without each history item exactly, and the rule names
the positive terms whose removal drops the item furthest. No rule that names positive terms
does better on those scores, so benchmarks.explain_quality uses it as the ceiling. The site
does not show it: it costs a scan of every item and (k + RIVALS) × n terms per page (1-2 ms
for the GNNs and 10 ms for the graph filter on ml-latest-small, against 0.1-0.4 ms), and on the
live path, where a fold-in re-learns the visitor without h, it is no more faithful than
`distinctive`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pytorch_models.checkpoint import Checkpoint
from pytorch_models.models.graphfilter.model import GraphFilter
from pytorch_models.models.graphfilter.spectral import SpectralFilter, serving_filter
from pytorch_models.models.names import EXPLAINED_MODELS
from pytorch_models.serving.fold_in import score_history

# Unseen movies below a list that `removal_ranks` ranks an item against: a removal moves each
# score by one term (a few percent of it), so movies far below cannot pass.
RIVALS = 200


def embedding_terms(item_table: torch.Tensor, history_rows: torch.Tensor, item_rows: torch.Tensor,
                    *, unit_history: bool = False) -> torch.Tensor:
    """The (k, n) terms <h, e_i> / n of each item's score, one per history item.

    item_table: (I, d); history_rows: (n,) the visitor's rows, n > 0; item_rows: (k,) the items
    to explain; unit_history: normalise the history rows first (PinSage's query).
    """
    history = item_table[history_rows]  # (n, d)
    if unit_history:
        history = F.normalize(history, dim=1)
    return item_table[item_rows] @ history.T / len(history_rows)


def filter_terms(graph_filter: GraphFilter | SpectralFilter, history_rows: torch.Tensor,
                 item_rows: torch.Tensor) -> torch.Tensor:
    """The graph filter's (k, n) terms F(e_h)_i."""
    if isinstance(graph_filter, SpectralFilter):  # M's entries from the factors: n · k · m
        return graph_filter.entries(history_rows, item_rows).T
    if len(item_rows) < len(history_rows):  # the listed items' columns of the filter: k passes, not n
        return graph_filter.columns(item_rows)[history_rows].T
    one_hot = torch.zeros(len(history_rows), graph_filter.n_items)
    one_hot[torch.arange(len(history_rows)), history_rows] = 1.0
    return graph_filter.scores(one_hot)[:, item_rows].T


def history_terms(checkpoint: Checkpoint, history_rows: Sequence[int],
                  item_rows: Sequence[int]) -> torch.Tensor:
    """The (k, n) terms of `score_history`'s scores for this checkpoint's model."""
    if checkpoint.model_name not in EXPLAINED_MODELS:
        raise ValueError(f"{checkpoint.model_name!r} scores do not come from a history")
    history = torch.as_tensor(list(history_rows), dtype=torch.int64)
    items = torch.as_tensor(list(item_rows), dtype=torch.int64)
    if checkpoint.model_name == "graphfilter":
        return filter_terms(serving_filter(checkpoint), history, items)
    return embedding_terms(checkpoint.item_embeddings.float(), history, items,
                           unit_history=checkpoint.model_name == "pinsage")


def removal_ranks(checkpoint: Checkpoint, history_rows: Sequence[int], item_rows: Sequence[int],
                  rivals: int = RIVALS) -> tuple[torch.Tensor, torch.Tensor]:
    """((k, n) terms, (k, n) ranks): each item's terms, and its rank (0 = first) with each history
    item removed in turn, among the k items and the `rivals` best-scored others outside the
    history. Exact for the models' served scores while no movie below the rivals passes."""
    history, items = list(history_rows), list(item_rows)
    scores = score_history(checkpoint, history)
    others = scores.clone()
    others[history + items] = float("-inf")
    unseen = len(others) - len(set(history + items))
    columns = torch.cat([torch.as_tensor(items, dtype=torch.int64),
                         torch.topk(others, min(rivals, unseen)).indices])
    terms = history_terms(checkpoint, history, columns)  # (k + m, n)
    n = len(history)
    total = terms.sum(1, keepdim=True)
    scale = 1.0 if checkpoint.model_name == "graphfilter" or n < 2 else n / (n - 1)  # the mean's 1/n
    without = scale * (total - terms) + (scores[columns].unsqueeze(1) - total)  # (k + m, n)
    k = len(items)
    ranks = (without.unsqueeze(0) > without[:k].unsqueeze(1)).sum(1)  # (k, n): who passes item i
    return terms[:k], ranks


def largest(terms: torch.Tensor, top: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each item's `top` largest terms: ((k, t) terms, (k, t) history columns), t = min(top, n)."""
    return torch.topk(terms, min(top, terms.shape[1]), dim=1)


def _standing_out(terms: torch.Tensor) -> torch.Tensor:
    """How far each term stands out from its history item's mean term over the k items."""
    return terms - terms.mean(dim=0, keepdim=True) if terms.shape[0] > 1 else terms


def distinctive(terms: torch.Tensor, top: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each item's `top` terms that stand out most from their history item's mean term over the
    k items, positive terms first: ((k, t) terms, (k, t) history columns). With one item
    there is nothing to compare with, and the largest terms come first."""
    key = _standing_out(terms).masked_fill(terms <= 0, float("-inf"))
    _, order = torch.topk(key, min(top, terms.shape[1]), dim=1)
    return terms.gather(1, order), order


def counterfactual(terms: torch.Tensor, ranks: torch.Tensor, top: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each item's `top` positive terms whose removal leaves it lowest (`removal_ranks`), the most
    distinctive first among equal ranks: ((k, t) terms, (k, t) history columns)."""
    n = terms.shape[1]
    tiebreak = _standing_out(terms).argsort(dim=1).argsort(dim=1)  # 0 … n-1, n-1 stands out most
    key = (ranks * n + tiebreak).masked_fill(terms <= 0, -1)
    _, order = torch.topk(key, min(top, n), dim=1)
    return terms.gather(1, order), order


RULES = {
    "counterfactual": counterfactual,
    "distinctive": lambda terms, _ranks, top: distinctive(terms, top),
    "largest": lambda terms, _ranks, top: largest(terms, top),
}


def explain_history(checkpoint: Checkpoint, history_rows: Sequence[int], item_rows: Sequence[int],
                    top: int = 2, *, rule: str = "distinctive") -> tuple[torch.Tensor, torch.Tensor]:
    """Up to `top` reasons per item by `rule`, from the decomposition of `score_history`:
    ((k, t) terms, (k, t) history rows). A caller names only the positive ones."""
    if rule == "counterfactual":
        terms, ranks = removal_ranks(checkpoint, history_rows, item_rows)
    else:
        terms, ranks = history_terms(checkpoint, history_rows, item_rows), None
    values, columns = RULES[rule](terms, ranks, top)
    return values, torch.as_tensor(list(history_rows), dtype=torch.int64)[columns]
