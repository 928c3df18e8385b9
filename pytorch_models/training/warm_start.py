"""Warm starts: a new model begins from a published checkpoint's weights wherever they fit.

Per-item rows are matched by item id and per-user rows by a user key (so a catalogue or a
user base that grew keeps every row it had) when their row sizes agree; other tensors are
copied when their shapes agree. A user row with no match (a new visitor) starts as the mean of
its training items' rows, as the live path folds a visitor in; other rows with no match keep
the new model's own initialisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from pytorch_models.checkpoint import Checkpoint
from pytorch_models.models.sasrec import ITEM_OFFSET

# Per-item tables -> the row of item 0 (SASRec's row 0 is padding, `models.sasrec.ITEM_OFFSET`).
ITEM_ROWS = {"item_embedding.weight": 0, "input.id_embedding.weight": 0, "item_bias": 0,
             "items.weight": ITEM_OFFSET}
USER_ROWS = ("user_embedding.weight",)


def _matches(new_keys: Sequence, old_keys: Sequence) -> tuple[torch.Tensor, torch.Tensor]:
    """(new rows, old rows) of the keys present in both."""
    old_row = {key: row for row, key in enumerate(old_keys)}
    pairs = [(row, old_row[key]) for row, key in enumerate(new_keys) if key in old_row]
    if not pairs:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
    new, old = torch.tensor(pairs, dtype=torch.int64).T
    return new, old


def item_rows(table: np.ndarray, *, checkpoint_item_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """A checkpoint's per-item `table` (a row per checkpoint item) with a row per item of
    `item_ids` instead: its own row for an item the checkpoint has, zeros for a new one (the
    graph filter's singular vectors, which a retrain's SVD starts from)."""
    new, old = _matches(np.asarray(item_ids).tolist(), np.asarray(checkpoint_item_ids).tolist())
    rows = np.zeros((len(item_ids), table.shape[1]), dtype=table.dtype)
    rows[new.numpy()] = table[old.numpy()]
    return rows


def warm_start(
    model: nn.Module, checkpoint: Checkpoint, *, item_ids: np.ndarray, user_keys: Sequence[str],
    checkpoint_user_keys: Sequence[str], train: np.ndarray | None = None,
) -> dict[str, int]:
    """Copy `checkpoint`'s weights into `model` in place; returns how many item and user rows
    were carried over, and how many user rows were folded in. item_ids: the new model's item
    ids, one per row; user_keys and checkpoint_user_keys: a stable key per user row of the new
    model and of the checkpoint; train: the new model's (user row, item row) training pairs,
    which fold in the users the checkpoint lacks (None: they keep the model's own rows)."""
    old = checkpoint.state_dict()
    items = _matches(list(np.asarray(item_ids).tolist()), list(np.asarray(checkpoint.item_ids).tolist()))
    users = _matches(list(user_keys), list(checkpoint_user_keys))
    state = model.state_dict()
    for name, tensor in state.items():
        if name not in old or old[name].shape[1:] != tensor.shape[1:]:
            continue  # new, or another size (e.g. a version trained with another dim)
        if name in ITEM_ROWS or name in USER_ROWS:
            new_rows, old_rows = items if name in ITEM_ROWS else users
            first = ITEM_ROWS.get(name, 0)
            tensor[:first] = old[name][:first].to(tensor.dtype)  # rows before the items' (padding)
            tensor[new_rows + first] = old[name][old_rows + first].to(tensor.dtype)
        elif old[name].shape == tensor.shape:
            tensor.copy_(old[name])
    folded = 0
    if train is not None and USER_ROWS[0] in state and "item_embedding.weight" in state:
        folded = _fold_in_users(state[USER_ROWS[0]], state["item_embedding.weight"], train, users[0])
    model.load_state_dict(state)
    return {"items": len(items[0]), "users": len(users[0]), "folded_in": folded}


def _fold_in_users(user_table: torch.Tensor, item_table: torch.Tensor, train: np.ndarray,
                   matched: torch.Tensor) -> int:
    """Each user row not in `matched` that has training pairs := the mean of its items' rows,
    in place; returns how many."""
    train = torch.as_tensor(np.asarray(train, dtype=np.int64).reshape(-1, 2))
    new = torch.ones(len(user_table), dtype=torch.bool)
    new[matched] = False
    train = train[new[train[:, 0]]]
    if len(train) == 0:
        return 0
    sums = torch.zeros_like(user_table).index_add_(0, train[:, 0], item_table[train[:, 1]])
    counts = torch.bincount(train[:, 0], minlength=len(user_table))
    rows = torch.nonzero(counts).squeeze(1)
    user_table[rows] = sums[rows] / counts[rows, None].to(sums.dtype)
    return len(rows)
