"""SASRec (Kang and McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018), plain torch.

A user is the sequence of its last `max_len` items in time order. Each position's input is its
item's embedding (scaled by √d) plus a learnt position embedding, counted from the newest item
(0) back, so a sequence is embedded alike whatever the padding of its batch (the paper pads
every sequence to max_len, which numbers them the same way); `blocks` of causal
self-attention (a position sees itself and the positions before it, never a later one) and a
point-wise feed-forward network, each with layer norm, dropout and a residual, turn it into a
state; the state at position t scores every item by a dot product with the same item table:
what comes after position t. A visitor's list is one forward pass over its latest clicks, so it
changes with each click without any per-visitor parameter.

Item rows are shifted by one: row 0 is padding (sequences are padded on the left), row i + 1
is the data's item i. `ITEM_OFFSET` says so wherever rows and items meet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

ITEM_OFFSET = 1  # embedding row of item i; row 0 is padding


@dataclass(frozen=True)
class SASRecConfig:
    """The paper's settings for MovieLens-1M (d 50, 2 blocks, one head, dropout 0.2, sequences
    of 200), which suit ml-latest-small's users (median 70 ratings, at most 2,698)."""

    n_items: int
    dim: int = 50
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.2
    max_len: int = 200


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """queries, keys (B, L, d); padding (B, L) True where a position is padding. Position t
        attends to positions <= t that are not padding (a padding query to every earlier one:
        its output is zeroed by the caller)."""
        batch, length, dim = queries.shape
        split = (batch, length, self.heads, dim // self.heads)
        q = self.query(queries).view(split).transpose(1, 2)  # (B, h, L, d/h)
        k = self.key(keys).view(split).transpose(1, 2)
        v = self.value(keys).view(split).transpose(1, 2)
        logits = q @ k.transpose(-1, -2) / math.sqrt(dim // self.heads)  # (B, h, L, L)
        future = torch.ones(length, length, dtype=torch.bool, device=queries.device).triu(1)
        logits = logits.masked_fill(future, float("-inf"))
        # A large finite value, not -inf: a padding query's row would otherwise be all -inf.
        logits = logits.masked_fill(padding[:, None, None, :], -1e9)
        weights = self.dropout(torch.softmax(logits, dim=-1))
        return (weights @ v).transpose(1, 2).reshape(batch, length, dim)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim, eps=1e-8)
        self.attention = CausalSelfAttention(dim, heads, dropout)
        self.forward_norm = nn.LayerNorm(dim, eps=1e-8)
        self.feed_forward = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout),
                                          nn.Linear(dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        # As the authors' code: the residuals start from the normalised queries and states.
        queries = self.attention_norm(x)
        x = self.forward_norm(queries + self.attention(queries, x, padding))
        x = x + self.feed_forward(x)
        return x.masked_fill(padding[..., None], 0.0)


class SASRec(nn.Module):
    def __init__(self, config: SASRecConfig):
        super().__init__()
        self.config = config
        self.items = nn.Embedding(config.n_items + ITEM_OFFSET, config.dim, padding_idx=0)
        self.positions = nn.Embedding(config.max_len, config.dim)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config.dim, config.heads, config.dropout)
                                    for _ in range(config.blocks))
        self.final_norm = nn.LayerNorm(config.dim, eps=1e-8)
        for parameter in self.parameters():
            if parameter.dim() > 1:
                nn.init.xavier_normal_(parameter)  # as the reference code; padding row reset below
        with torch.no_grad():
            self.items.weight[0].zero_()

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """rows (B, L) item rows (0: padding, on the left), L <= max_len -> states (B, L, d)."""
        padding = rows == 0
        positions = torch.arange(rows.shape[1] - 1, -1, -1, device=rows.device)  # newest is 0
        x = self.items(rows) * math.sqrt(self.config.dim) + self.positions(positions)
        x = self.dropout(x).masked_fill(padding[..., None], 0.0)
        for block in self.blocks:
            x = block(x, padding)
        return self.final_norm(x)

    def item_table(self) -> torch.Tensor:
        """(n_items, d): the data's items, in item order (padding left out)."""
        return self.items.weight[ITEM_OFFSET:]

    def last_scores(self, rows: torch.Tensor) -> torch.Tensor:
        """rows (B, L) -> (B, n_items): every item scored as what follows each sequence's last
        position (the rows are left-padded, so the last column is the newest item)."""
        return self(rows)[:, -1] @ self.item_table().T


def padded_rows(sequences: list[list[int]], max_len: int) -> torch.Tensor:
    """(B, L) int64: each sequence of item indices as embedding rows, its last `max_len` kept,
    left-padded with 0 to the longest (L <= max_len; at least 1)."""
    length = max(1, min(max_len, max((len(s) for s in sequences), default=1)))
    rows = torch.zeros(len(sequences), length, dtype=torch.int64)
    for row, sequence in enumerate(sequences):
        kept = sequence[-length:]
        if kept:
            rows[row, length - len(kept):] = torch.as_tensor(kept, dtype=torch.int64) + ITEM_OFFSET
    return rows
