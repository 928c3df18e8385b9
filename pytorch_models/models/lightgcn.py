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

from pytorch_models.models.embedding import EmbeddingConfig, EmbeddingPropagation


@dataclass
class LightGCNConfig(EmbeddingConfig):
    init_std: float = 0.1


class LightGCN(EmbeddingPropagation):
    """Ego embeddings for users and items, propagated with the normalised adjacency without
    transforms; the final embedding is the mean over layers."""

    def __init__(self, config: LightGCNConfig):
        super().__init__(config)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.user_embedding.weight, std=self.config.init_std)
        nn.init.normal_(self.item_embedding.weight, std=self.config.init_std)

    def next_layer(self, k: int, side: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """E^(k+1) = L E^(k): the neighbour sum itself (no weights, no self-loop)."""
        return side

    @staticmethod
    def layers_from_neighbours(ego: torch.Tensor, sides: list[torch.Tensor]) -> list[torch.Tensor]:
        """[E^(0), ..., E^(K)] of rows whose neighbour sums (L E^(k)) are `sides`: layer k+1 is
        the neighbour sum of layer k, so the row's own ego does not enter it."""
        return [ego, *sides]

    @staticmethod
    def combine(layers: list[torch.Tensor]) -> torch.Tensor:
        """The final embedding of the rows in `layers`: the mean over layers, (R, d)."""
        return sum(layers) / len(layers)
