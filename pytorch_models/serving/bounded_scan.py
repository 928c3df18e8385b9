"""Exact top-k over a frozen item table, through an int8 first pass with an error bound.

A visitor's list is the k best of q · x_i over every item. Reading the float32 table costs
I · d · 4 bytes per query: at 62,423 movies NGCF's 256-wide table is 64 MB, 5.7 ms on one
thread, where ml-latest-small's 9,742 cost 0.3 ms, so the catalogue, not the visitor, set
the fold-in's cost. `BoundedScan` keeps the list exact and reads a quarter of that:

1. fbgemm's int8 product (`quantized.linear_dynamic`): the table quantised once per row
   (symmetric, x̃_i), the queries per call (affine over the whole batch, q̃; an identity
   table's product returns q̃ itself). Each approximate score s̃_i = q̃ · x̃_i is within
       ε_i = ‖q − q̃‖ ‖x̃_i‖ + ‖q‖ ‖x_i − x̃_i‖
   of the exact one (Cauchy–Schwarz on q·(x − x̃) + (q − q̃)·x̃), widened by `SLACK` for the
   float rounding of the products and of an item bias.
2. The k-th largest lower bound s̃ − ε among the items allowed is a floor no member of the
   exact top k falls below; every allowed item whose upper bound s̃ + ε reaches it is scored
   exactly in float32, and the best k of those are the list: a full scan's list, found by
   scoring a few hundred rows instead of all of them.
3. A batch whose candidates pass a quarter of the table (`UNION_SHARE`: a bound too loose for
   its scores) is scored over the whole table, so the answer never depends on the bound being
   tight.

Where it pays (one thread, 62,423 random rows with spread norms, 2026-12-07, beside other work):
one query against 256 columns 1.8 ms instead of 6.7, 129 columns 0.8 instead of 3.3, 64
columns 0.8 instead of 1.1; it stops paying near 8 queries at once, where the float32
product becomes a matrix product that reads the table once for all of them. So it serves at
most `MAX_QUERIES` queries, and tables of at least `MIN_ITEMS` rows (below that the float32
product costs a fraction of a millisecond). It also needs scores that stand apart by more
than the bound: on the 25M generated release PinSage's list took 1.3-1.8 ms instead of
3.7-4.2, while NGCF's untrained table, whose top 100 lie within 0.005 of each other, left
12,000 candidates and lost (`fold_in.EmbeddingFoldIn`).
"""

from __future__ import annotations

import torch

MIN_ITEMS = 20_000  # ml-latest-small's 9,742 movies stay on the float32 product
MAX_QUERIES = 4  # more queries at once: one float32 matrix product is cheaper
UNION_SHARE = 4  # past a quarter of the table in the batch's candidates, the whole table is scored
SLACK = 1e-5  # relative, for float32 rounding in both products


class BoundedScan:
    """A frozen (I, d) table's int8 copy (I · d bytes) and the per-row norms of its bound;
    scores are queries @ table.T + bias (bias (I,), exact in both passes, or None)."""

    def __init__(self, table: torch.Tensor, bias: torch.Tensor | None = None):
        self.table = table.float().contiguous()
        self.bias = None if bias is None else bias.float()
        weight = _per_row_int8(self.table, self.table.abs().amax(dim=1).clamp(min=1e-12) / 127)
        approx = weight.dequantize()
        self.packed = torch.ops.quantized.linear_prepack(weight, None)
        # The identity at scale 1: its product returns the queries as the int8 pass sees them, q̃.
        dim = self.table.shape[1]
        self.probe = torch.ops.quantized.linear_prepack(_per_row_int8(torch.eye(dim), torch.ones(dim)), None)
        bias_size = torch.zeros(len(self.table)) if bias is None else self.bias.abs()
        # ‖x̃_i‖, ‖x_i − x̃_i‖ and |b_i|: the rows the bound is made of
        self.norms = torch.stack([approx.norm(dim=1), (self.table - approx).norm(dim=1), bias_size])

    def approximate(self, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s̃, ε), each (V, I): the int8 pass's scores of queries (V, d) and a bound on how far
        each lies from the exact score, |s − s̃| ≤ ε."""
        queries = queries.float().contiguous()
        approx = torch.ops.quantized.linear_dynamic(queries, self.packed, reduce_range=True)
        if self.bias is not None:
            approx += self.bias
        seen_as = torch.ops.quantized.linear_dynamic(queries, self.probe, reduce_range=True)  # q̃
        error, norm = (queries - seen_as).norm(dim=1), queries.norm(dim=1)
        # ε = ‖q − q̃‖ ‖x̃_i‖ + ‖q‖ ‖x_i − x̃_i‖, widened by SLACK for the float rounding of both
        # products (|q̃ · x̃_i| ≤ (‖q‖ + ‖q − q̃‖) ‖x̃_i‖) and of the bias: a rank-3 product, one pass.
        coefficients = torch.stack([error + SLACK * (norm + error), norm * (1 + SLACK),
                                    torch.full_like(norm, SLACK)], 1)
        return approx, coefficients @ self.norms

    def top_k(self, queries: torch.Tensor, k: int, hide_owner: torch.Tensor,
              hide_rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(values, rows), each (V, k), of queries (V, d) against the table: exactly the top k
        of the scores among the items not hidden ((hide_owner[j], hide_rows[j]) pairs). k must
        leave every query k items."""
        queries = queries.float().contiguous()
        approx, bound = self.approximate(queries)
        lower = approx - bound
        lower[hide_owner, hide_rows] = float("-inf")
        floor = torch.topk(lower, k, dim=1).values[:, -1:]
        upper = approx.add_(bound)
        upper[hide_owner, hide_rows] = float("-inf")
        candidates = upper >= floor  # (V, I): every member of each exact top k is among them
        union = candidates.any(0).nonzero().squeeze(1)
        if len(union) > self.table.shape[0] // UNION_SHARE:  # the bound did not separate the scores
            exact = self.scores(queries)
            exact[hide_owner, hide_rows] = float("-inf")
            return torch.topk(exact, k, dim=1)
        exact = self.scores(queries, union)  # (V, U)
        exact[~candidates[:, union]] = float("-inf")
        values, order = torch.topk(exact, k, dim=1)
        return values, union[order]

    def scores(self, queries: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """(V, I) float32 scores, or (V, len(rows)) of those rows only."""
        table = self.table if rows is None else self.table[rows]
        scores = queries @ table.T
        if self.bias is not None:
            scores += self.bias if rows is None else self.bias[rows]
        return scores


def _per_row_int8(table: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The table quantised to int8 symmetrically, one scale per row."""
    return torch.quantize_per_channel(table, scale.double(), torch.zeros(len(scale), dtype=torch.long), 0,
                                      torch.qint8)


def scan_for(table: torch.Tensor, bias: torch.Tensor | None = None) -> BoundedScan | None:
    """A `BoundedScan` of a table with at least MIN_ITEMS rows; None for a smaller one."""
    return BoundedScan(table, bias) if len(table) >= MIN_ITEMS else None
