"""What a warm-started retrain takes its batches from: every pair that is new since the version
it starts from, and a seeded sample of the old ones ("experience replay").

The version it starts from already holds what the old pairs taught; the retrain must learn the
new ones. Training on the new pairs alone would pull the shared tables towards the few users
who made them and let the rest drift (catastrophic forgetting), so a sample of the old pairs is
replayed beside them. The sample is a share of the old pairs with a ceiling, so the batches of a
retrain stop growing with the whole history once the ceiling is reached. What the retrain
propagates over, walks on and avoids as negatives is still the whole train graph
(`training.loops`): that part of a step's cost is the propagation's (full or sampled), not this
module's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def new_pair_mask(
    train: np.ndarray, *, user_keys: Sequence[str], item_ids: np.ndarray, old_train: np.ndarray,
    old_user_keys: Sequence[str], old_item_ids: np.ndarray,
) -> np.ndarray:
    """(E,) bool: which rows of `train` ([user row, item row]) are not in `old_train`.

    Row numbers differ between two versions (users and movies come and go), so users are
    matched by key (`user_keys`, `old_user_keys`: one per user row) and items by id
    (`item_ids`, `old_item_ids`: one per item row), as the warm start matches them."""
    train = np.asarray(train, dtype=np.int64).reshape(-1, 2)
    old_train = np.asarray(old_train, dtype=np.int64).reshape(-1, 2)
    row_of_key = {key: row for row, key in enumerate(user_keys)}
    old_user_row = np.array([row_of_key.get(key, -1) for key in old_user_keys], dtype=np.int64)
    old_item_row = _rows_of(np.asarray(item_ids), np.asarray(old_item_ids))
    users, items = old_user_row[old_train[:, 0]], old_item_row[old_train[:, 1]]
    kept = (users >= 0) & (items >= 0)
    n_items = len(item_ids)
    old_codes = users[kept] * n_items + items[kept]
    return ~np.isin(train[:, 0] * n_items + train[:, 1], old_codes)


def _rows_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The row of each of `wanted` in `ids` (ids distinct, any order); -1 where absent."""
    if len(ids) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    at = np.searchsorted(ids, wanted, sorter=order).clip(max=len(ids) - 1)
    rows = order[at]
    return np.where(ids[rows] == wanted, rows, -1).astype(np.int64)


def replay_size(n_old: int, *, fraction: float, max_pairs: int) -> int:
    """How many old pairs are replayed: ceil(fraction × n_old), at most `max_pairs`."""
    if not 0 < fraction <= 1 or max_pairs < 1:
        raise ValueError(f"a replay fraction in (0, 1] and a ceiling ≥ 1, not {fraction} and {max_pairs}")
    return min(max_pairs, math.ceil(fraction * n_old))


def replay_rows(is_new: np.ndarray, *, fraction: float, max_pairs: int, seed: int) -> np.ndarray:
    """Sorted indices of the rows a retrain's batches come from: every row where `is_new`, and
    `replay_size` of the others drawn uniformly without replacement by a generator seeded with
    `seed` (the same rows for the same mask and seed). Never empty when `is_new` is not."""
    is_new = np.asarray(is_new, dtype=bool)
    new, old = np.flatnonzero(is_new), np.flatnonzero(~is_new)
    size = replay_size(len(old), fraction=fraction, max_pairs=max_pairs)
    replayed = np.random.default_rng(seed).choice(old, size=size, replace=False)
    return np.sort(np.concatenate([new, replayed]))
