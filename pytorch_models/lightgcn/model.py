"""LightGCN: He et al., "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020, https://arxiv.org/abs/2002.02126.

    E^(k+1) = D^-1/2 A D^-1/2 E^(k)          (no weights, no non-linearity)
    E = mean(E^(0), ..., E^(K))               score(u, i) = e_u · e_i
    loss = BPR + l2 · (|e_u^0|² + |e_i^0|² + |e_j^0|²) / (2B)   on the batch's ego embeddings
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pytorch_models.graph import propagate
from pytorch_models.losses import bpr_loss


@dataclass
class LightGCNConfig:
    n_users: int
    n_items: int
    dim: int = 64
    layers: int = 3
    l2: float = 1e-4
    init_std: float = 0.1


class LightGCN(nn.Module):
    """Ego embeddings for users (n_users, dim) and items (n_items, dim), propagated with the
    normalised adjacency (N, N), N = n_users + n_items (users first)."""

    def __init__(self, config: LightGCNConfig):
        super().__init__()
        self.config = config
        self.user_embedding = nn.Embedding(config.n_users, config.dim)
        self.item_embedding = nn.Embedding(config.n_items, config.dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_embedding.weight, std=self.config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=self.config.init_std)

    def ego_embeddings(self) -> torch.Tensor:
        return torch.cat([self.user_embedding.weight, self.item_embedding.weight])  # (N, d)

    def layer_outputs(self, adjacency: torch.Tensor, ego: torch.Tensor) -> list[torch.Tensor]:
        """[E^(0), ..., E^(K)]: the ego rows and each propagation's output, (N, d) each."""
        outputs = [ego]
        for _ in range(self.config.layers):
            outputs.append(propagate(adjacency, outputs[-1]))
        return outputs

    @staticmethod
    def layers_from_neighbours(ego: torch.Tensor, sides: list[torch.Tensor]) -> list[torch.Tensor]:
        """[E^(0), ..., E^(K)] of rows whose neighbour sums (L E^(k)) are `sides`: layer k+1 is
        the neighbour sum of layer k, so the row's own ego does not enter it."""
        return [ego, *sides]

    @staticmethod
    def combine(layers: list[torch.Tensor]) -> torch.Tensor:
        """The final embedding of the rows in `layers`: the mean over layers, (R, d)."""
        return sum(layers) / len(layers)

    def propagate(self, adjacency: torch.Tensor, ego: torch.Tensor) -> torch.Tensor:
        """adjacency: (N, N) sparse CSR; ego: (N, d) -> final (N, d), the mean over layers."""
        return self.combine(self.layer_outputs(adjacency, ego))

    def propagate_rows(self, adjacency: torch.Tensor, ego: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """propagate(adjacency, ego)[rows]: (len(rows), d)."""
        return self.combine([x[rows] for x in self.layer_outputs(adjacency, ego)])

    def embeddings(self, adjacency: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (n_users, d) user and (n_items, d) item embeddings."""
        final = self.propagate(adjacency, self.ego_embeddings())
        return final[: self.config.n_users], final[self.config.n_users :]

    def loss(
        self, adjacency: torch.Tensor, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:
        """users, pos, neg: (B,) rows; BPR on final embeddings + L2 on the batch's ego rows."""
        return embedding_bpr_loss(self, adjacency, self.ego_embeddings(), users, pos, neg)


def embedding_bpr_loss(model, adjacency, ego, users, pos, neg) -> torch.Tensor:
    """BPR + L2 shared by LightGCN and NGCF: `model.propagate_rows(adjacency, ego, rows)` gives
    the final embeddings of `rows` (len(rows), d')."""
    n_users = model.config.n_users
    # One gather for all three row sets: each indexing op costs a zero-filled (N, d) gradient.
    rows = torch.cat([users, n_users + pos, n_users + neg])
    u, p, n = model.propagate_rows(adjacency, ego, rows).split(len(users))
    ranking = bpr_loss((u * p).sum(-1), (u * n).sum(-1))
    l2 = ego[rows].pow(2).sum()
    return ranking + model.config.l2 * l2 / (2 * len(users))
