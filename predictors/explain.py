"""Serving "because you watched …": movie ids in, movie ids out.

Every personalised list is explained with the item table of the version it was served from
(`registry.published`), split as in `pytorch_models.serving.explain`:

- "published" lists were scored from that table by `score_history`, so the split is exact.
- "fresh" lists come from the live workers, which fold the visitor in against the same frozen
  table (a fresh list is served only while its version is the live one; a newer version makes
  it stale and it is re-scored from the table). Their visitor vector is the history's vector
  plus a fine-tuned per-visitor offset, and PinSage's worker weights history items by its
  random-walk visits. The offset belongs to no history item and the walks live only in the
  worker, so the explanation is the history part alone, the same terms as a published list:
  what a web process can compute from the table with the visitor's current history, in one
  product, with no call to the workers.

Only positive terms explain: a history item that pulls an item's score down is no reason to
recommend it.
"""

from __future__ import annotations

from collections.abc import Sequence

from predictors.registry import Published
from pytorch_models.models.names import EXPLAINED_MODELS
from pytorch_models.serving.explain import explain_history

TOP = 2  # "Because you watched A and B": more names stop being read


def because(published: Published, *, history: Sequence[int], items: Sequence[int],
            top: int = TOP) -> dict[int, list[int]]:
    """Movie id of each item -> the (up to `top`) history movie ids whose positive terms in its
    score stand out most from their terms for the other `items` (`explain.distinctive`), first
    the most; empty for models whose scores do not come from a history."""
    history_rows, item_ids = published.indices(history), [m for m in items if m in published.index_of]
    if published.model not in EXPLAINED_MODELS or not history_rows or not item_ids:
        return {}
    values, rows = explain_history(published.checkpoint, history_rows, published.indices(item_ids), top)
    movie_ids = published.movie_ids
    return {
        item: [int(movie_ids[r]) for r, v in zip(item_rows, item_values, strict=True) if v > 0]
        for item, item_rows, item_values in zip(item_ids, rows.tolist(), values.tolist(), strict=True)
    }
