"""What LightGCN and NGCF share: free user and item ego embeddings propagated over the
normalised adjacency (N, N), N = n_users + n_items (users first), scored by dot products of
the final rows, trained with BPR plus L2 on the batch's ego rows.

A subclass says how layers are made and combined: `layer_outputs` ([E^(0), ..., E^(K)] over
the whole graph), `layers_from_neighbours` (the same for rows whose neighbour sums are given,
for the fold-in) and `combine` (the final embedding of the rows in those layers).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pytorch_models.data.graph import SymmetricAdjacency
from pytorch_models.models.losses import bpr_loss


@dataclass
class EmbeddingConfig:
    """What both models' configs hold; each adds its own fields after these."""

    n_users: int
    n_items: int
    dim: int = 64
    layers: int = 3
    l2: float = 1e-4  # on the batch's ego rows


class EmbeddingPropagation(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.user_embedding = nn.Embedding(config.n_users, config.dim)
        self.item_embedding = nn.Embedding(config.n_items, config.dim)

    def ego_embeddings(self) -> torch.Tensor:
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # (N, d)

    def layer_outputs(self, adjacency: torch.Tensor, ego: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def combine(self, layers: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def propagate(self, adjacency: torch.Tensor, ego: torch.Tensor) -> torch.Tensor:
        """adjacency: (N, N) sparse CSR; ego: (N, d) -> the final (N, d') rows."""
        return self.combine(self.layer_outputs(adjacency, ego))

    def embeddings(self, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (n_users, d') user and (n_items, d') item embeddings."""
        final = self.propagate(adjacency, self.ego_embeddings())
        return final[: self.config.n_users], final[self.config.n_users :]

    def loss(self, adjacency: torch.Tensor, users: torch.Tensor, pos: torch.Tensor,
             neg: torch.Tensor) -> torch.Tensor:
        """users, pos: (B,) rows; neg: (B,) negatives, or (B, M) candidates of which each row's
        highest-scoring one under the current embeddings is its negative (dynamic negative
        sampling, Zhang et al., SIGIR 2013). BPR on the final embeddings plus
        l2 · Σ|ego row|² / (2B) over the batch's ego rows, duplicates counted (the LightGCN
        authors' convention). Pass a dropped adjacency for NGCF's node dropout."""
        ego = self.ego_embeddings()
        n_users = self.config.n_users
        layers = self.layer_outputs(adjacency, ego)
        if neg.dim() == 2:
            neg = self._hardest(layers, users, neg)
        # One gather for all three row sets: each indexing op costs a zero-filled (N, d) gradient.
        rows = torch.cat([users, n_users + pos, n_users + neg])
        u, p, n = self.combine([x[rows] for x in layers]).split(len(users))
        ranking = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
        return ranking + self.config.l2 * ego[rows].pow(2).sum() / (2 * len(users))

    def _hardest(self, layers: list[torch.Tensor], users: torch.Tensor,
                 candidates: torch.Tensor) -> torch.Tensor:
        """(B,) the candidate of each row of `candidates` (B, M) that scores highest for its user."""
        with torch.no_grad():
            n_users = self.config.n_users
            u = self.combine([x[users] for x in layers])  # (B, d')
            items = self.combine([x[n_users:] for x in layers])  # (n_items, d')
            scores = torch.einsum("bd,bmd->bm", u, items[candidates])
            return candidates.gather(1, scores.argmax(1, keepdim=True)).squeeze(1)


def item_layers(model, train_edges) -> tuple[torch.Tensor, torch.Tensor]:
    """((K+1, I, d) the items' rows of every layer, (I,) item degrees) for LightGCN / NGCF: what
    training publishes (`item_layers`, `item_degree`) and `serving.fold_in` starts from."""
    n_users, n_items = model.config.n_users, model.config.n_items
    edges = torch.as_tensor(train_edges, dtype=torch.int64).reshape(-1, 2)
    adjacency = SymmetricAdjacency(n_users, n_items, edges).matrix
    with torch.no_grad():
        layers = model.eval().layer_outputs(adjacency, model.ego_embeddings())
    degree = torch.bincount(edges[:, 1], minlength=n_items)
    return torch.stack([x[n_users:] for x in layers]), degree
