"""NGCF: Wang et al., "Neural Graph Collaborative Filtering", SIGIR 2019,
https://arxiv.org/abs/1905.08108.

With L = D^-1/2 A D^-1/2 (Laplacian normalisation) and per-layer weights W1, W2:

    E^(k+1) = LeakyReLU_0.2( (L + I) E^(k) W1 + (L E^(k) ⊙ E^(k)) W2 )   sum + bi-interaction
    message dropout on E^(k+1); node dropout drops edges of L during training
    E = [E^(0) ‖ normalize(E^(1)) ‖ ... ‖ normalize(E^(K))]   (concatenation; (N, d·(K+1)))
    loss = BPR + l2 · (|e_u^0|² + |e_i^0|² + |e_j^0|²) / (2B)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pytorch_models.data.graph import propagate
from pytorch_models.models.embedding import EmbeddingConfig, EmbeddingPropagation


@dataclass
class NGCFConfig(EmbeddingConfig):
    message_dropout: float = 0.1
    node_dropout: float = 0.1  # applied by the caller via SymmetricAdjacency.dropped


class NGCFLayer(nn.Module):
    """One NGCF propagation: x (N, d_in), adjacency (N, N) -> (N, d_out)."""

    def __init__(self, dim_in: int, dim_out: int, message_dropout: float):
        super().__init__()
        self.w1 = nn.Linear(dim_in, dim_out)
        self.w2 = nn.Linear(dim_in, dim_out)
        self.dropout = nn.Dropout(message_dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for linear in (self.w1, self.w2):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def combine(self, side: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The layer's output from its input rows x (R, d_in) and their neighbours' sum
        side = (L E)[rows] (R, d_in), before message dropout: (R, d_out)."""
        return F.leaky_relu(self.w1(side + x) + self.w2(side * x), negative_slope=0.2)

    def forward(self, adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.combine(propagate(adjacency, x), x))


class NGCF(EmbeddingPropagation):
    """Ego embeddings (n_users, dim), (n_items, dim); `layers` NGCFLayers of width dim."""

    def __init__(self, config: NGCFConfig):
        super().__init__(config)
        self.convs = nn.ModuleList(
            NGCFLayer(config.dim, config.dim, config.message_dropout) for _ in range(config.layers)
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.user_embedding.weight)
        nn.init.xavier_uniform_(self.item_embedding.weight)
        for conv in self.convs:
            conv.reset_parameters()

    def next_layer(self, k: int, side: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Layer k's raw output (what `NGCFLayer.forward` gives), message dropout included."""
        return self.convs[k].dropout(self.convs[k].combine(side, x))

    def layers_from_neighbours(self, ego: torch.Tensor, sides: list[torch.Tensor]) -> list[torch.Tensor]:
        """[E^(0), ..., E^(K)] of rows whose neighbour sums (L E^(k)) are `sides`, through each
        layer's `combine` (no dropout): each layer mixes the row's own previous layer in."""
        layers = [ego]
        for conv, side in zip(self.convs, sides, strict=True):
            layers.append(conv.combine(side, layers[-1]))
        return layers

    @staticmethod
    def combine(layers: list[torch.Tensor]) -> torch.Tensor:
        """The final embedding of the rows in `layers`: [E^(0) ‖ normalize(E^(1)) ‖ ...],
        (R, d·(layers+1))."""
        return torch.cat([layers[0], *(F.normalize(x, dim=1) for x in layers[1:])], dim=1)
