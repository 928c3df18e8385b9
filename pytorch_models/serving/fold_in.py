"""Folding visitors into a published model: per-visitor work against frozen item tables.

A published version is never modified here. Each visitor has a few parameters of its own,
and a click costs work proportional to the visitor's history, not to the graph:

- LightGCN / NGCF: the visitor's ego row. Its layer-k representation comes from its items'
  layer-(k-1) representations, frozen as the full propagation produced them, through the
  model's own layer formulas (`combine`), with the symmetric normalisation 1/sqrt(d_u d_i).
  A training user folded in with its own history and trained ego row gets exactly the full
  model's final embedding. Fine-tuning is BPR on the ego row alone (NGCF's weights frozen).
- PinSage: a query vector, initialised as the importance-weighted mean of the normalised
  embeddings of the visitor's items (weights: visit counts of random walks from the visitor,
  see `VisitorGraph.visits`), fine-tuned with the max-margin loss against the frozen item
  table, negatives drawn uniformly and from the middle band of the visitor's walk ranking.

A movie the visitor dismissed ("Not interested") is an explicit negative: each fine-tune step
adds, per dismissal, the model's own loss with one of the visitor's movies as the positive and
the dismissed one as the negative (BPR for LightGCN / NGCF, max-margin for PinSage), weighted
so the visitor's dismissals together weigh as much as its positives; PinSage's initial query
also subtracts the dismissed movies' mean (DISMISS_PULL), since its single small step moves the
query little. Dismissed movies are never listed (`top_unseen`) nor drawn as random negatives.

What is stored per visitor is an offset from the documented initial value (`initial`), so a
new click moves the visitor at once (the initial value follows the history) and fine-tuning
continues from where it left off; L2 pulls the offset towards zero.

Everything is batched over a micro-batch of visitors (`VisitorBatch`); each visitor's loss
is its own mean and the batch loss their sum, so sharing a batch changes no visitor's
objective (Adam is element-wise; only the random negatives come from a shared generator).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from pytorch_models.checkpoint import Checkpoint
from pytorch_models.models.architectures import build_model
from pytorch_models.models.embedding import item_layers
from pytorch_models.models.graphfilter.spectral import serving_filter
from pytorch_models.models.losses import bpr_loss, max_margin_loss
from pytorch_models.models.names import EMBEDDING_MODELS
from pytorch_models.serving.bounded_scan import MAX_QUERIES, BoundedScan, scan_for
from pytorch_models.serving.scoring import pinsage_user_vectors, sequence_model, sequence_scorer
from pytorch_models.serving.visitor_batch import (
    VisitorBatch,
    _random_negatives,
    draw_weights,
    middle_band,
    sample_band,
    top_unseen,
)

# Chosen with benchmarks/fold_in_quality.py on ml-latest-small, held-out users of seed 1
# (seeds 0, 2 and 3 are the reported run), replaying each history one click per round:
# NGCF recall/ndcg@20 .2232/.2443 against the no-fine-tune baseline's .2165/.2241 (3 steps
# .2223/.2428; L2 0.1 lost ndcg). PinSage at 5 steps of lr 0.02 fell to .063: hundreds of
# rounds drift the query away. From the spectral id table (PinSage's default), each one-step
# round moves a coordinate by about lr (Adam's first step), and the tuning seeds 1, 4, 5 gave,
# against the plain item mean: lr 1e-4 .2808/.3183, .2534/.3199, .1987/.2750 (mean .2754/.3135,
# .2502/.3145, .1972/.2740; ahead on all three), 3e-4 and 5e-4 ahead on seed 1 but behind in
# ndcg on 4 and 5, 1e-3 (the random start's choice) behind in ndcg on all three.
EMBEDDING_STEPS = 5
EMBEDDING_LR = 0.05
EMBEDDING_NEGATIVES = 8  # per positive, per step
EMBEDDING_L2 = 1e-3
PINSAGE_STEPS = 1
PINSAGE_LR = 1e-4
PINSAGE_NEGATIVES = 4  # uniform, per positive; plus PINSAGE_HARD from the walk band
PINSAGE_HARD = 4
# PinSage's initial query: the mean of the visitor's movies minus this times the mean of its
# dismissed ones (both normalised), scaled by the dismissed share of the two.
DISMISS_PULL = 1.0


class RowGather:
    """Rows of a frozen table gathered into a buffer kept between calls, for the negatives a
    fine-tune step draws. A fresh (P·M, d) tensor a step (15 MB for NGCF's negatives in a batch
    of 64 visitors) is memory the allocator maps and unmaps every time, and faulting its pages
    in again cost most of the gather: 7.7-9.0 ms a step at 62,423 movies, 1.3-1.7 ms into a
    kept buffer (one thread). Bound: the largest gather asked for, at most MAX_BYTES; a larger
    one is gathered into a fresh tensor. One caller at a time (a live worker folds one batch at
    a time), and a gather's rows are read before the next gather overwrites them."""

    MAX_BYTES = 32 << 20

    def __init__(self, table: torch.Tensor):
        self.table = table
        self.buffer = table.new_empty((0, table.shape[1]))

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        """table[rows] for rows of any shape: (*rows.shape, d)."""
        n, dim = rows.numel(), self.table.shape[1]
        if n * dim * self.table.element_size() > self.MAX_BYTES:
            return self.table[rows]
        if len(self.buffer) < n:
            self.buffer = self.table.new_empty((n, dim))
        out = self.buffer[:n]
        torch.index_select(self.table, 0, rows.reshape(-1), out=out)
        return out.view(*rows.shape, dim)


class EmbeddingFoldIn:
    """LightGCN / NGCF fold-in against a version's frozen per-layer item representations.

    item_layers: K+1 tensors (I, d), the items' rows of E^(0..K) from the full propagation;
    item_degree: (I,) degrees in the training graph; item_final: (I, d') what items are
    scored with; user_ego: (U, d) the trained users' ego rows.
    """

    def __init__(self, model, item_layers, item_degree, item_final, user_ego):
        self.model = model.eval().requires_grad_(False)
        self.item_layers = item_layers
        self.item_degree = item_degree.float()
        self.item_final = item_final
        self.user_ego = user_ego
        self.n_items = item_final.shape[0]
        # No `bounded_scan` here. Measured on the 25M versions (one visitor, one thread): LightGCN's
        # 64 columns list in 1.0-1.3 ms either way; NGCF's untrained table scores its top 100
        # within 0.005 of each other, far inside the int8 pass's bound (0.05), so 12,000 of
        # 62,423 movies are scored again and the scan (8.3-10.5 ms) loses to the product (6.3-7.8).
        self.scan: BoundedScan | None = None
        self.negatives = RowGather(item_final)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> EmbeddingFoldIn:
        model = build_model(checkpoint.model_name, checkpoint.config)
        model.load_state_dict(checkpoint.state_dict())
        model.eval()
        layers, degree = checkpoint.extra.get("item_layers"), checkpoint.extra.get("item_degree")
        if layers is None:  # published before the layers were stored: propagate once
            layers, degree = item_layers(model, checkpoint.graph().train_edges)
        return cls(model, list(layers.float()), degree, checkpoint.item_embeddings.float(),
                   model.user_embedding.weight.detach())

    def _sides(self, batch: VisitorBatch) -> list[torch.Tensor]:
        """The visitor's neighbour sums (L E^(k))_u for k = 0..K-1, (V, d) each."""
        in_graph = batch.user_row[batch.owner] >= 0
        # A visitor the version never saw adds one edge to each of its items.
        degree = self.item_degree[batch.items] + (~in_graph).float()
        weight = (batch.count[batch.owner].float() * degree.clamp(min=1)).rsqrt().unsqueeze(1)  # (E, 1)
        return [batch.segment_sum(layer[batch.items] * weight) for layer in self.item_layers[:-1]]

    def initial(self, batch: VisitorBatch) -> torch.Tensor:
        """(V, d) ego rows: the trained row of a known user, else the mean of its items' ego rows."""
        mean = batch.segment_sum(self.item_layers[0][batch.items]) / batch.count.unsqueeze(1)
        known = batch.user_row >= 0
        mean[known] = self.user_ego[batch.user_row[known]]
        return mean

    def user_final(self, ego: torch.Tensor, batch: VisitorBatch, sides: list[torch.Tensor] | None = None):
        """(V, d') the visitors' final embeddings from their ego rows (V, d)."""
        sides = self._sides(batch) if sides is None else sides
        return self.model.combine(self.model.layers_from_neighbours(ego, sides))

    def fine_tune(self, offset: torch.Tensor, batch: VisitorBatch, visits: torch.Tensor | None = None, *,
                  steps: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """A few BPR steps on the ego rows (initial + offset) only; returns the new (V, d) offsets."""
        steps = EMBEDDING_STEPS if steps is None else steps
        if steps <= 0:
            return offset
        sides, base = self._sides(batch), self.initial(batch)
        pos, owners, weight = batch.positives()
        positives = self.item_final[pos]  # (P, d'), the same every step
        seen = batch.seen(self.n_items)
        offset = offset.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([offset], lr=EMBEDDING_LR)
        for _ in range(steps):
            neg = _random_negatives(owners, EMBEDDING_NEGATIVES, seen, self.n_items, generator)
            users = self.user_final(base + offset, batch, sides)  # (V, d')
            user = users[owners]  # (P, d')
            pos_score = (user * positives).sum(-1)  # (P,)
            neg_score = torch.einsum("pd,pmd->pm", user, self.negatives(neg))  # (P, M)
            loss = bpr_loss(pos_score, neg_score, weight) + EMBEDDING_L2 * offset.pow(2).sum() / 2
            if len(batch.dismissed):
                d_pos, d_neg, d_owners, d_weight = batch.dismissal_pairs(generator)
                user = users[d_owners]
                loss = loss + bpr_loss((user * self.item_final[d_pos]).sum(-1),
                                       (user * self.item_final[d_neg]).sum(-1), d_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return offset.detach()

    def scores(self, offset: torch.Tensor, batch: VisitorBatch,
               visits: torch.Tensor | None = None) -> torch.Tensor:
        """(V, I) scores of every item for each visitor."""
        with torch.no_grad():
            return self.user_final(self.initial(batch) + offset, batch) @ self.item_final.T

    def top_unseen(self, offset: torch.Tensor, batch: VisitorBatch, visits: torch.Tensor | None,
                   k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, item rows) of each visitor's top k among items it neither has nor dismissed."""
        with torch.no_grad():
            return ranked_unseen(self.user_final(self.initial(batch) + offset, batch), self.scan, batch, k,
                                 lambda users: users @ self.item_final.T)


class PinSageFoldIn:
    """PinSage fold-in: a query vector per visitor against the frozen item table (I, d)."""

    def __init__(self, item_table: torch.Tensor, item_bias: torch.Tensor, margin: float = 1.0,
                 negative_weight: torch.Tensor | None = None):
        self.item_table = item_table
        self.item_unit = F.normalize(item_table, dim=1)
        self.item_bias = item_bias
        self.margin = margin
        self.negative_weight = negative_weight  # (I,) random negatives ∝ this; None: uniform
        self.negative_draw = None if negative_weight is None else draw_weights(negative_weight)
        self.negatives = RowGather(item_table)
        self.n_items = item_table.shape[0]
        self.scan = scan_for(item_table, item_bias)

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> PinSageFoldIn:
        """The version's table, bias, margin and negative distribution (that of its training)."""
        power = checkpoint.config.get("negative_power", 0.0)
        weight = (checkpoint.extra["item_popularity"].double() + 1) ** power if power else None
        return cls(checkpoint.item_embeddings.float(), checkpoint.extra["item_bias"].float(),
                   checkpoint.config.get("margin", 1.0), weight)

    def initial(self, batch: VisitorBatch, visits: torch.Tensor | None = None) -> torch.Tensor:
        """(V, d): Σ_i w_i normalize(z_i) / Σ_i w_i over the visitor's items, with importance
        w_i = 1 + log(1 + visits[v, i]) from the visitor's walks (all ones without walks).
        The log damps hub movies, which every walk reaches: raw counts gave recall@20 .168,
        log counts .170, on the tuning seed before any fine-tune."""
        weight = torch.ones(len(batch.items))
        if visits is not None:
            weight = weight + visits[batch.owner, batch.items].log1p()
        total = batch.segment_sum(self.item_unit[batch.items] * weight.unsqueeze(1))
        query = total / torch.zeros(len(batch)).index_add(0, batch.owner, weight).unsqueeze(1)
        if len(batch.dismissed):  # minus DISMISS_PULL x the dismissed share x their mean
            owners = batch.dismissed_owner
            against = torch.zeros_like(query).index_add(0, owners, self.item_unit[batch.dismissed])
            n = torch.bincount(owners, minlength=len(batch)).float().unsqueeze(1)
            query = query - DISMISS_PULL * against / (n + batch.count.unsqueeze(1).float())
        return query

    def _score(self, query: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """query (P, d), items (P,) or (P, M) -> scores q · z_i + b_i, as published users are scored."""
        if items.dim() == 2:
            return torch.einsum("pd,pmd->pm", query, self.negatives(items)) + self.item_bias[items]
        return (query * self.item_table[items]).sum(-1) + self.item_bias[items]

    def fine_tune(self, offset: torch.Tensor, batch: VisitorBatch, visits: torch.Tensor | None = None, *,
                  hard_band: tuple[int, int] = (32, 128), steps: int | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """A few max-margin steps on the query vectors (initial + offset) only; returns the
        new (V, d) offsets."""
        steps = PINSAGE_STEPS if steps is None else steps
        if steps <= 0:
            return offset
        base = self.initial(batch, visits)
        pos, owners, weight = batch.positives()
        seen = batch.seen(self.n_items)
        band = None if visits is None else middle_band(visits, seen, hard_band)
        offset = offset.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([offset], lr=PINSAGE_LR)
        for _ in range(steps):
            neg = _random_negatives(owners, PINSAGE_NEGATIVES, seen, self.n_items, generator,
                                    self.negative_draw)
            if band is not None and PINSAGE_HARD:
                neg = torch.cat([neg, sample_band(band, owners, PINSAGE_HARD, self.n_items, generator)],
                                dim=1)
            queries = base + offset
            q = queries[owners]
            loss = max_margin_loss(self._score(q, pos), self._score(q, neg), self.margin, weight)
            if len(batch.dismissed):
                d_pos, d_neg, d_owners, d_weight = batch.dismissal_pairs(generator)
                q = queries[d_owners]
                loss = loss + max_margin_loss(self._score(q, d_pos), self._score(q, d_neg), self.margin,
                                              d_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return offset.detach()

    def scores(self, offset: torch.Tensor, batch: VisitorBatch,
               visits: torch.Tensor | None = None) -> torch.Tensor:
        """(V, I) scores of every item for each visitor."""
        return (self.initial(batch, visits) + offset) @ self.item_table.T + self.item_bias

    def top_unseen(self, offset: torch.Tensor, batch: VisitorBatch, visits: torch.Tensor | None,
                   k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, item rows) of each visitor's top k among items it neither has nor dismissed."""
        return ranked_unseen(self.initial(batch, visits) + offset, self.scan, batch, k,
                             lambda queries: queries @ self.item_table.T + self.item_bias)


def ranked_unseen(queries: torch.Tensor, scan: BoundedScan | None, batch: VisitorBatch, k: int,
                  scores) -> tuple[torch.Tensor, torch.Tensor]:
    """`top_unseen` of the scores `scores(queries)` (V, I), found through `scan` (the same list,
    exactly: `bounded_scan`) where the table has one and the batch is small enough to gain."""
    if scan is None or len(queries) > MAX_QUERIES:
        return top_unseen(scores(queries), batch, k)
    hidden = batch.count + torch.bincount(batch.dismissed_owner, minlength=len(batch))
    owners, rows = torch.cat([batch.owner, batch.dismissed_owner]), torch.cat([batch.items, batch.dismissed])
    return scan.top_k(queries, min(k, scan.table.shape[0] - int(hidden.max())), owners, rows)


def fold_in_round(fold_in, rows: Mapping[str, Sequence[int]], offsets: torch.Tensor, *,
                  user_rows: Sequence[int] | None = None, graph=None, base=None, now: float = 0.0,
                  generator: torch.Generator | None = None, dismissed: Sequence[Sequence[int]] | None = None):
    """One live-path round for a micro-batch (visitor key -> item rows, offsets (V, d);
    `dismissed`: each visitor's dismissed item rows): for PinSage the visitors' edges in
    `graph` (a `VisitorGraph`) and their walks on it and on the frozen training graph `base`,
    then the fine-tune. Returns (offsets, batch, visits)."""
    batch = VisitorBatch.from_histories(list(rows.values()), user_rows, dismissed)
    visits = None if graph is None else graph.visits(base, graph.update(rows, now=now))
    return fold_in.fine_tune(offsets, batch, visits, generator=generator), batch, visits


def fold_in_for(checkpoint: Checkpoint):
    """The fold-in of a loaded checkpoint's model."""
    if checkpoint.model_name == "pinsage":
        return PinSageFoldIn.from_checkpoint(checkpoint)
    if checkpoint.model_name in EMBEDDING_MODELS:
        return EmbeddingFoldIn.from_checkpoint(checkpoint)
    raise ValueError(f"no fold-in for model {checkpoint.model_name!r}")


def score_history(checkpoint: Checkpoint, items: Sequence[int],
                  dismissed: Sequence[int] = ()) -> torch.Tensor:
    """(n_items,) scores for a visitor with item rows `items`, from published tables only.

    Popular, or no history: interaction counts. PinSage: mean of normalised item vectors
    (+ item bias). LightGCN / NGCF: mean of the items' final embeddings, dotted with all items.
    Graph filter: its closed form, the scores a training user with this history gets, with
    `dismissed` (item rows) as a signed history; the other models learn from dismissals in
    the live fine-tune only, and the callers leave them out of every list. SASRec: what
    follows the history, read in the order given (oldest first).
    """
    items = torch.as_tensor(list(items), dtype=torch.int64)
    if checkpoint.model_name == "popular" or len(items) == 0:
        return checkpoint.extra["item_popularity"].float()
    if checkpoint.model_name == "graphfilter":
        return serving_filter(checkpoint).score_items(items, dismissed)
    if checkpoint.model_name == "sasrec":  # `items` in the order they came, the newest last
        return sequence_scorer(sequence_model(checkpoint), [items.tolist()])(torch.tensor([0]))[0]
    query, bias = history_query(checkpoint, items)
    scores = checkpoint.item_embeddings.float() @ query
    return scores if bias is None else scores + bias


def history_query(checkpoint: Checkpoint, items) -> tuple[torch.Tensor, torch.Tensor | None]:
    """((d,) query, (n_items,) item bias or None) of a dot-product model (LightGCN, NGCF,
    PinSage) for a visitor with item rows `items` (at least one): `score_history` is
    item_embeddings @ query (+ bias), which an index of the item table can search."""
    items = torch.as_tensor(list(items), dtype=torch.int64)
    table = checkpoint.item_embeddings.float()
    if checkpoint.model_name == "pinsage":
        query = pinsage_user_vectors(table, torch.stack([torch.zeros_like(items), items], 1), 1)[0]
        return query, checkpoint.extra["item_bias"]
    return table[items].mean(0), None
