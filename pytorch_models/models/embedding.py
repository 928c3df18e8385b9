"""What LightGCN and NGCF share: free user and item ego embeddings propagated over the
normalised adjacency (N, N), N = n_users + n_items (users first), scored by dot products of
the final rows, trained with BPR plus L2 on the batch's ego rows.

A subclass says how layers are made and combined: `next_layer` (layer k+1 of rows from their
layer k and their neighbour sum), `layers_from_neighbours` (every layer of rows whose neighbour
sums are given, for the fold-in) and `combine` (the final embedding of the rows in those
layers). `next_layer` is the one definition of a layer: the full graph (`layer_outputs`), the
sampled blocks and the layer-wise inference (`models.blocks`) all go through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pytorch_models.data.graph import SymmetricAdjacency, propagate
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

    def ego_rows(self, nodes: torch.Tensor) -> torch.Tensor:
        """(R, d) the ego rows of graph nodes (R,) (users first, item i at n_users + i), gathered
        from the two tables without building the (N, d) one: what a sampled step starts from."""
        is_user = nodes < self.config.n_users
        users, items = torch.nonzero(is_user).squeeze(1), torch.nonzero(~is_user).squeeze(1)
        rows = torch.cat([self.user_embedding(nodes[users]),
                          self.item_embedding(nodes[items] - self.config.n_users)])
        order = torch.empty_like(nodes)
        order[torch.cat([users, items])] = torch.arange(len(nodes), device=nodes.device)
        return rows.index_select(0, order)  # its backward an index_add_, 5x cheaper than rows[order]'s

    def next_layer(self, k: int, side: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Layer k+1 of rows whose layer k is x (R, d) and whose neighbour sum (L E^(k)) is side
        (R, d): (R, d), with the model's training-time dropout when it is in training mode."""
        raise NotImplementedError

    def layer_outputs(self, adjacency: torch.Tensor, ego: torch.Tensor) -> list[torch.Tensor]:
        """[E^(0), ..., E^(K)] over the whole graph: the ego rows and each layer, (N, d) each."""
        outputs = [ego]
        for k in range(self.config.layers):
            outputs.append(self.next_layer(k, propagate(adjacency, outputs[-1]), outputs[-1]))
        return outputs

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
        n_users = self.config.n_users
        layers = self.layer_outputs(adjacency, self.ego_embeddings())
        if neg.dim() == 2:
            neg = self.hardest(layers, users, n_users + neg, neg)
        # One gather for all three row sets: each indexing op costs a zero-filled (N, d) gradient.
        rows = torch.cat([users, n_users + pos, n_users + neg])
        return self.batch_loss([x[rows] for x in layers], len(users))

    def batch_loss(self, row_layers: list[torch.Tensor], batch: int) -> torch.Tensor:
        """BPR plus the L2 term of `loss` from the layers of the batch's rows, (3B, d) each: the
        users, then their positives, then their negatives (layer 0 holds their ego rows)."""
        u, p, n = self.combine(row_layers).split(batch)
        ranking = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
        return ranking + self.config.l2 * row_layers[0].pow(2).sum() / (2 * batch)

    def hardest(self, layers: list[torch.Tensor], user_rows: torch.Tensor, candidate_rows: torch.Tensor,
                candidates: torch.Tensor) -> torch.Tensor:
        """(B,) the candidate of each row of `candidates` (B, M) that scores highest for its user,
        where user_rows (B,) and candidate_rows (B, M) are their rows in `layers`."""
        with torch.no_grad():
            rows = torch.cat([user_rows, candidate_rows.flatten()])
            if len(layers[0]) <= len(rows):  # combine every row once, then gather (combine is row-wise)
                final = self.combine(layers).index_select(0, rows)
            else:  # fewer rows wanted than there are (the whole graph's layers): gather first
                final = self.combine([x.index_select(0, rows) for x in layers])
            u, c = final[: len(user_rows)], final[len(user_rows) :]  # (B, d'), (B·M, d')
            scores = torch.einsum("bd,bmd->bm", u, c.view(*candidate_rows.shape, -1))
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
