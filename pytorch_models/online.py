"""Per-visitor fold-in: the mutable graph and weights the single graph worker owns.

A visitor becomes a new `user` node in the DGL heterograph; clicks add `watched` /
`watched-by` edges; `fine_tune` runs a few optimiser steps on the visitor's edges mixed with
sampled existing edges; `scores` ranks every item for the visitor.

What fine-tuning may change:
- LightGCN / NGCF: the visitor's ego row (lr USER_LR) and the ego rows of items in the batch
  (lr ITEM_LR, small). Other users' rows and NGCF's layer weights stay bit-identical.
- PinSage has no user rows: the visitor's vector is the mean of the normalised embeddings of
  its items. Fine-tuning re-samples the random-walk neighbourhoods of the visitor's items (its
  clicks change those walks), takes a few steps at PINSAGE_LR on (query, positive) pairs from
  the visitor's history plus sampled co-interaction pairs, on the cached neighbourhoods, then
  recomputes the item table. Item vectors move a little for everyone, as the architecture
  allows ("item tables move little"); the published checkpoint is never modified.

`score_history` is the training-free path web processes use: published tables only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pytorch_models.checkpoint import Checkpoint, load_checkpoint
from pytorch_models.graph import USER, WATCHED, WATCHED_BY, SymmetricAdjacency, build_graph
from pytorch_models.lightgcn.model import embedding_bpr_loss
from pytorch_models.models import build_model
from pytorch_models.pinsage.sampler import (
    WalkConfig,
    full_hops,
    hops_from_table,
    neighbour_table,
    sample_positive_pairs,
)
from pytorch_models.sampling import PositiveSet

log = logging.getLogger(__name__)

# Measured on ml-latest-small, 2 cores (benchmarks/online_latency.py), click + fine-tune +
# scores: LightGCN 5 steps ~0.12 s; NGCF 5 steps took 0.35 s, so it gets 3 (~0.2 s).
FINE_TUNE_STEPS = {"lightgcn": 5, "ngcf": 3}
USER_LR = 0.05
ITEM_LR = 1e-3
PINSAGE_STEPS = 3
PINSAGE_LR = 1e-4
SAMPLED_EDGES = 256  # existing edges mixed into each fine-tune batch
MAX_VISITOR_EDGES = 256


class OnlineModel:
    """Fold-in state of one model; build with `OnlineModel.from_checkpoint(folder)`."""

    def __init__(self, checkpoint: Checkpoint):
        snapshot = checkpoint.graph()
        self.name = checkpoint.model_name
        self.version = checkpoint.version
        self.item_ids = np.asarray(checkpoint.item_ids)
        self.n_items = snapshot.n_items
        self.graph = build_graph(snapshot.n_users, snapshot.n_items, snapshot.train_edges)
        self.generator = torch.Generator().manual_seed(0)

    @classmethod
    def from_checkpoint(cls, ckpt_dir: str | Path) -> "OnlineModel":
        checkpoint = load_checkpoint(ckpt_dir)
        if checkpoint.model_name == "pinsage":
            return PinSageOnline(checkpoint)
        if checkpoint.model_name in ("lightgcn", "ngcf"):
            return EmbeddingOnline(checkpoint)
        raise ValueError(f"no online fold-in for model {checkpoint.model_name!r}")

    def add_user(self) -> int:
        """A new user node with no edges; returns its row."""
        self.graph.add_nodes(1, ntype=USER)
        self._changed(torch.zeros(0, dtype=torch.int64))
        return self.graph.num_nodes(USER) - 1

    def user_items(self, user: int) -> torch.Tensor:
        return self.graph.successors(user, etype=WATCHED)

    def add_interactions(self, user: int, items: Sequence[int]) -> None:
        """Link `user` to item rows `items` (existing links are left as they are)."""
        items = torch.unique(torch.as_tensor(list(items), dtype=torch.int64))
        items = items[~torch.isin(items, self.user_items(user))]
        if len(items) == 0:
            return
        users = torch.full_like(items, user)
        self.graph.add_edges(users, items, etype=WATCHED)
        self.graph.add_edges(items, users, etype=WATCHED_BY)
        self._changed(items)

    def remove_interactions(self, user: int, items: Sequence[int]) -> None:
        items = torch.unique(torch.as_tensor(list(items), dtype=torch.int64))
        items = items[torch.isin(items, self.user_items(user))]
        if len(items) == 0:
            return
        users = torch.full_like(items, user)
        self.graph.remove_edges(self.graph.edge_ids(users, items, etype=WATCHED), etype=WATCHED)
        self.graph.remove_edges(self.graph.edge_ids(items, users, etype=WATCHED_BY), etype=WATCHED_BY)
        self._changed(items)

    def _changed(self, items: torch.Tensor) -> None:
        raise NotImplementedError

    def fine_tune(self, user: int, *, steps: int | None = None) -> None:
        raise NotImplementedError

    def scores(self, user: int) -> torch.Tensor:
        raise NotImplementedError

    def _sampled_edges(self, user: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The visitor's edges (capped) followed by SAMPLED_EDGES random existing edges of others."""
        users, items = self.graph.edges(etype=WATCHED)
        mine = self.user_items(user)
        mine = mine[torch.randperm(len(mine), generator=self.generator)[:MAX_VISITOR_EDGES]]
        picked = torch.randint(0, len(users), (SAMPLED_EDGES,), generator=self.generator)
        picked = picked[users[picked] != user]
        return (
            torch.cat([torch.full_like(mine, user), users[picked]]),
            torch.cat([mine, items[picked]]),
        )


class EmbeddingOnline(OnlineModel):
    """LightGCN / NGCF fold-in: trains only the visitor's ego row and the batch's item rows."""

    def __init__(self, checkpoint: Checkpoint):
        super().__init__(checkpoint)
        self.model = build_model(self.name, checkpoint.config)
        self.model.load_state_dict(checkpoint.state_dict())
        self.model.eval()
        self.model.requires_grad_(False)
        self.user_ego = self.model.user_embedding.weight.detach().clone()  # (U, d), grows
        self.item_ego = self.model.item_embedding.weight.detach().clone()  # (I, d)
        self._adjacency: torch.Tensor | None = None
        self._positives: PositiveSet | None = None
        self._final: torch.Tensor | None = None
        self.final_embeddings()  # warm up: the first CSR build and propagation cost ~1-2 s

    def _changed(self, items: torch.Tensor) -> None:
        missing = self.graph.num_nodes(USER) - len(self.user_ego)
        if missing > 0:
            self.user_ego = torch.cat([self.user_ego, torch.zeros(missing, self.user_ego.shape[1])])
        self._adjacency = self._positives = self._final = None

    def _state(self) -> tuple[torch.Tensor, PositiveSet]:
        if self._adjacency is None:
            users, items = self.graph.edges(etype=WATCHED)
            pairs = torch.stack([users, items], dim=1)
            self._adjacency = SymmetricAdjacency(len(self.user_ego), self.n_items, pairs).matrix
            self._positives = PositiveSet(pairs, self.n_items)
        return self._adjacency, self._positives

    def ego(self) -> torch.Tensor:
        return torch.cat([self.user_ego, self.item_ego])  # (U + I, d)

    def fine_tune(self, user: int, *, steps: int | None = None) -> None:
        steps = FINE_TUNE_STEPS[self.name] if steps is None else steps
        if len(self.user_items(user)) == 0 or steps <= 0:
            return
        adjacency, positives = self._state()
        users, pos = self._sampled_edges(user)
        neg = positives.sample_negatives(users, self.generator)
        item_rows = torch.unique(torch.cat([pos, neg]))
        user_row = self.user_ego[user].clone().requires_grad_(True)
        item_table = self.item_ego[item_rows].clone().requires_grad_(True)
        optimiser = torch.optim.Adam([{"params": [user_row], "lr": USER_LR}, {"params": [item_table], "lr": ITEM_LR}])
        n_users = len(self.user_ego)
        base = self.ego()
        for _ in range(steps):
            ego = base.clone()
            ego[user] = user_row
            ego[n_users + item_rows] = item_table
            loss = embedding_bpr_loss(self.model, adjacency, ego, users, pos, neg)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        self.user_ego[user] = user_row.detach()
        self.item_ego[item_rows] = item_table.detach()
        self._final = None

    def final_embeddings(self) -> torch.Tensor:
        if self._final is None:
            adjacency, _ = self._state()
            with torch.no_grad():
                self._final = self.model.propagate(adjacency, self.ego())
        return self._final

    def scores(self, user: int) -> torch.Tensor:
        final = self.final_embeddings()
        return final[len(self.user_ego) :] @ final[user]  # (n_items,)


class PinSageOnline(OnlineModel):
    """PinSage fold-in: visitor vector from its items; brief low-lr steps on item pairs."""

    def __init__(self, checkpoint: Checkpoint):
        super().__init__(checkpoint)
        snapshot = checkpoint.graph()
        self.model = build_model("pinsage", checkpoint.config)
        self.model.load_state_dict(checkpoint.state_dict())
        self.model.eval()
        features = snapshot.item_features
        self.features = features.tensors() if features is not None else None
        self.walks = WalkConfig()
        if "neighbour_table" in checkpoint.extra:
            self.table = checkpoint.extra["neighbour_table"].clone()
            self.weights = checkpoint.extra["neighbour_weights"].clone()
        else:
            self.table, self.weights = neighbour_table(self.graph, torch.arange(self.n_items), self.walks)
        self.item_table = checkpoint.item_embeddings.float().clone()  # (I, d)
        self.item_bias = self.model.item_bias.detach().clone()
        self._stale_items: set[int] = set()

    def _changed(self, items: torch.Tensor) -> None:
        self._stale_items.update(items.tolist())

    def _refresh_neighbours(self) -> None:
        if self._stale_items:
            items = torch.tensor(sorted(self._stale_items), dtype=torch.int64)
            table, weights = neighbour_table(self.graph, items, self.walks)
            self.table[items], self.weights[items] = table, weights
            self._stale_items.clear()

    def fine_tune(self, user: int, *, steps: int | None = None) -> None:
        steps = PINSAGE_STEPS if steps is None else steps
        self._refresh_neighbours()
        mine = self.user_items(user)
        if len(mine) < 2 or steps <= 0:
            return
        mine = mine[torch.randperm(len(mine), generator=self.generator)[:MAX_VISITOR_EDGES]]
        shift = int(torch.randint(1, len(mine), (1,), generator=self.generator))
        sampled_q, sampled_pos = sample_positive_pairs(self.graph, SAMPLED_EDGES, self.generator)
        queries = torch.cat([mine, sampled_q])
        pos = torch.cat([torch.roll(mine, shift), sampled_pos])
        neg = torch.randint(0, self.n_items, (len(queries), 1), generator=self.generator)
        seeds, inverse = torch.unique(torch.cat([queries, pos, neg.flatten()]), return_inverse=True)
        hops = hops_from_table(self.table, self.weights, seeds, self.model.config.layers)
        b = len(queries)
        optimiser = torch.optim.Adam(self.model.parameters(), lr=PINSAGE_LR)
        for _ in range(steps):
            loss = self.model.loss(hops, self.features, inverse[:b], inverse[b : 2 * b], inverse[2 * b :].view(b, 1))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            self.item_table = self.model(full_hops(self.table, self.weights, self.model.config.layers), self.features)
        self.item_bias = self.model.item_bias.detach().clone()

    def scores(self, user: int) -> torch.Tensor:
        items = self.user_items(user)
        if len(items) == 0:
            return self.item_bias.clone()
        vector = F.normalize(self.item_table[items], dim=1).mean(0)  # (d,)
        return self.item_table @ vector + self.item_bias


def score_history(ckpt: Checkpoint, items: Sequence[int]) -> torch.Tensor:
    """(n_items,) scores for a visitor with item rows `items`, from published tables only.

    Popular, or no history: interaction counts. PinSage: mean of normalised item vectors
    (+ item bias). LightGCN / NGCF: mean of the items' final embeddings, dotted with all items.
    """
    items = torch.as_tensor(list(items), dtype=torch.int64)
    if ckpt.model_name == "popular" or len(items) == 0:
        return ckpt.extra["item_popularity"].float()
    table = ckpt.item_embeddings.float()
    if ckpt.model_name == "pinsage":
        return table @ F.normalize(table[items], dim=1).mean(0) + ckpt.extra["item_bias"]
    return table @ table[items].mean(0)
