"""PinSage: Ying et al., "Graph Convolutional Neural Networks for Web-Scale Recommender
Systems", KDD 2018, https://arxiv.org/abs/1806.01973.

Items only: an item's input is a projection of its features (genres, year, title words,
tags) plus an id embedding; each layer aggregates the neighbours that random walks visit most, weighted
by visit count (importance pooling), then mixes with the item's own vector:

    n_v = Σ_u w_uv ReLU(Q h_u) / Σ_u w_uv
    h'_v = normalize(ReLU(W [n_v ‖ h_v]))
    z_v = input_v + h_v^(K)            (skip connection, as in DGL's PinSage example)
    score(q, i) = normalize(z_q) · z_i + b_i   trained with the max-margin loss.

A user is ranked by u = mean_i normalize(z_i) over the user's items; score = u · z + b.
Neighbourhoods come as `Hop`s (index tensors) built by `pinsage.sampler`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pytorch_models.models.losses import max_margin_loss


@dataclass
class PinSageConfig:
    n_items: int
    dim: int = 64
    layers: int = 2
    n_genres: int = 0  # 0: no content features (e.g. Gowalla); ids only
    n_year_buckets: int = 0
    n_title_buckets: int = 0
    n_tag_buckets: int = 0  # 0: no tag feature (data sets without tags, versions from before them)
    dropout: float = 0.0
    margin: float = 1.0
    # Random negatives are drawn ∝ (degree + 1) ** negative_power (0: uniform), in training and
    # in the live fold-in alike: a fold-in with uniform negatives against a table trained on
    # popularity-weighted ones finds every hinge inactive and never moves.
    negative_power: float = 0.0


@dataclass
class Hop:
    """One layer's neighbourhood: messages flow src -> dst over local node indices.

    src_nodes: (S,) global item rows, the first n_dst of them are the dst nodes.
    src, dst: (E,) local indices; weight: (E,) visit counts.
    """

    src_nodes: torch.Tensor
    n_dst: int
    src: torch.Tensor
    dst: torch.Tensor
    weight: torch.Tensor

    def to(self, device: torch.device) -> Hop:
        return Hop(self.src_nodes.to(device), self.n_dst, self.src.to(device), self.dst.to(device),
                   self.weight.to(device))


class ItemInput(nn.Module):
    """items (B,) + full feature tables -> (B, dim) input vectors."""

    def __init__(self, config: PinSageConfig):
        super().__init__()
        self.id_embedding = nn.Embedding(config.n_items, config.dim)
        self.genres = nn.Linear(config.n_genres, config.dim, bias=False) if config.n_genres else None
        self.year = nn.Linear(1, config.dim, bias=False) if config.n_year_buckets else None
        self.year_bucket = nn.Embedding(config.n_year_buckets, config.dim) if config.n_year_buckets else None
        self.title = (
            nn.EmbeddingBag(config.n_title_buckets, config.dim, mode="mean", padding_idx=0)
            if config.n_title_buckets
            else None
        )
        self.tags = (
            nn.EmbeddingBag(config.n_tag_buckets, config.dim, mode="mean", padding_idx=0)
            if config.n_tag_buckets
            else None
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.id_embedding.weight, std=0.1)
        for module in (self.genres, self.year, self.year_bucket, self.title, self.tags):
            if module is not None:
                nn.init.normal_(module.weight, std=0.1)

    def forward(self, items: torch.Tensor, features: dict[str, torch.Tensor] | None) -> torch.Tensor:
        h = self.id_embedding(items)
        if features is None:
            return h
        if self.genres is not None:
            h = h + self.genres(features["genres"][items])
        if self.year is not None:
            h = h + self.year(features["year"][items].unsqueeze(1))
            h = h + self.year_bucket(features["year_bucket"][items])
        if self.title is not None:
            h = h + self.title(features["title_words"][items])
        if self.tags is not None:
            h = h + self.tags(features["tags"][items])  # a movie without tags adds zeros
        return h


class WeightedSAGEConv(nn.Module):
    """Importance-pooled SAGE layer: h_src (S, d_in) -> (n_dst, d_out), unit-norm rows."""

    def __init__(self, dim_in: int, dim_hidden: int, dim_out: int, dropout: float = 0.0):
        super().__init__()
        self.q = nn.Linear(dim_in, dim_hidden)
        self.w = nn.Linear(dim_in + dim_hidden, dim_out)
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        gain = nn.init.calculate_gain("relu")
        for linear in (self.q, self.w):
            nn.init.xavier_uniform_(linear.weight, gain=gain)
            nn.init.zeros_(linear.bias)

    def forward(self, h_src: torch.Tensor, hop: Hop) -> torch.Tensor:
        h_dst = h_src[: hop.n_dst]
        message = F.relu(self.q(self.dropout(h_src)))[hop.src] * hop.weight.unsqueeze(1)  # (E, h)
        zeros = {"dtype": message.dtype, "device": message.device}
        pooled = torch.zeros(hop.n_dst, message.shape[1], **zeros).index_add_(0, hop.dst, message)
        total = torch.zeros(hop.n_dst, **zeros).index_add_(0, hop.dst, hop.weight)
        pooled = pooled / total.clamp(min=1).unsqueeze(1)  # weighted mean (N_dst, h)
        z = F.relu(self.w(self.dropout(torch.cat([pooled, h_dst], dim=1))))
        return F.normalize(z, dim=1)


class PinSage(nn.Module):
    """Item embeddings from features, ids and sampled neighbourhoods; per-item score bias."""

    def __init__(self, config: PinSageConfig):
        super().__init__()
        self.config = config
        self.input = ItemInput(config)
        self.convs = nn.ModuleList(
            WeightedSAGEConv(config.dim, config.dim, config.dim, config.dropout) for _ in range(config.layers)
        )
        self.item_bias = nn.Parameter(torch.zeros(config.n_items))

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()
        nn.init.zeros_(self.item_bias)

    def forward(self, hops: list[Hop], features: dict[str, torch.Tensor] | None) -> torch.Tensor:
        """hops: one per layer, outermost first -> (n_dst of the last hop, dim) embeddings."""
        h0 = self.input(hops[0].src_nodes, features)  # (S_0, d)
        h = h0
        for conv, hop in zip(self.convs, hops, strict=True):
            h = conv(h, hop)
        return h0[: hops[-1].n_dst] + h

    def score(self, queries: torch.Tensor, candidates: torch.Tensor,
              candidate_items: torch.Tensor) -> torch.Tensor:
        """queries (B, d), candidates (B, M, d) or (B, d), candidate_items matching rows -> scores."""
        q = F.normalize(queries, dim=-1)
        if candidates.dim() == 3:
            q = q.unsqueeze(1)
        return (q * candidates).sum(-1) + self.item_bias[candidate_items]

    def loss(
        self, hops: list[Hop], features, queries: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
        shared_neg: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """queries, pos: (B,) local rows into the hops' seeds; neg: (B, M) local rows; max-margin.

        shared_neg: (S,) local rows that are negatives of every query (scored with one matmul).
        The seeds' global item rows are hops[-1].src_nodes[:n_dst].
        """
        z = self(hops, features)  # (n_seeds, d)
        items = hops[-1].src_nodes[: hops[-1].n_dst]
        pos_score = self.score(z[queries], z[pos], items[pos])
        neg_score = self.score(z[queries], z[neg], items[neg])
        if shared_neg is not None:
            shared = F.normalize(z[queries], dim=-1) @ z[shared_neg].T + self.item_bias[items[shared_neg]]
            neg_score = torch.cat([neg_score, shared], dim=1)  # (B, M + S)
        return max_margin_loss(pos_score, neg_score, self.config.margin)
