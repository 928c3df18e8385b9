"""The graph filter served from item-side factors: a visitor's scores without a pass over R̃.

Every part of the filter (`model.py`) is a polynomial in P̃ = R̃ᵀR̃ / σ1², wrapped in item
degree powers, plus the ideal low-pass E Eᵀ. With Q (I, m) the top eigenvectors of P̃ (R̃'s
right singular vectors) and λ (m,) their eigenvalues (σ / σ1)², a polynomial f has

    f(P̃) = f(0) I + Q diag(f(λ) - f(0)) Qᵀ + Σ_{j > m} (f(λ_j) - f(0)) q_j q_jᵀ

and the last sum is 0 when Q spans R̃'s row space (m = rank R̃ <= min(U, I)). So the filter's
matrix M (scores = r M) is a diagonal plus low-rank parts, each row of the form

    weight · post ⊙ (right (gain ⊙ ((r ⊙ pre) left)))        (I,) = ((I, m) (m,) ((I,) (I, m)))

- BSPM: g(P̃) with g the blurring polynomial times the sharpening one: left = right = Q,
  gain g(λ) - g(0), and g(0) on the diagonal; its ideal term β E Eᵀ D_I^2b S(P̃) with
  left = E and right = S(P̃) D_I^2b E (`ideal_sharpened`, k filter passes at fit time).
- ChebyCF: D_I^-β (p(P̃) + α V_c V_cᵀ) D_I^β: left = right = Q, gain p(λ) - p(0), pre D_I^-β,
  post D_I^β, p(0) on the diagonal of the items with a degree; the ideal pass with
  left = right = E_c and pre, post D_I^∓β D_I^b (V_c = D_I^b E_c).

A visitor with history H costs |H| rows of each left table and one (I, m) product: O((|H| + I) m),
whatever the number of ratings. Where R̃'s rank is above `serve_dim` (a catalogue of
millions of ratings), the rest of M (`tail`) is kept as each item's `serve_tail` largest
entries of its row, computed exactly at fit time (the old filter on one-item histories minus
the factored part), so a history adds |H| sparse rows; the scores then differ from the full
filter by the dropped entries. Above `TAIL_MAX_FLOPS` of fit work (a catalogue of tens of
thousands of movies) there is no tail, and the scores differ from the full filter's by the
whole rest.

Published beside E in `item_embeddings.safetensors`: `spectral_vectors` Q (I, m) float32,
`spectral_values` λ (m,), `ideal_sharpened` (I, k) and, when truncated, `tail_items` (I, t)
int64 and `tail_weights` (I, t). A version without them is served by the old path.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from pytorch_models.linalg import binary_matrix, degree_power, normalize, top_singular
from pytorch_models.models.graphfilter import chebyshev
from pytorch_models.models.graphfilter.model import (
    GraphFilter,
    GraphFilterConfig,
    filter_for,
    integrate,
    rank_bound,
    serve_count,
)

log = logging.getLogger(__name__)

# One-item histories per filter pass when the tail is computed: the block size of SCORE_CHUNK.
# The tail costs I / TAIL_CHUNK filter passes and I² · serve_dim multiply-adds at fit time.
TAIL_CHUNK = 256
# The tail is exact and costs about I · (20 · nnz + 4 · I · m) flops (`tail_flops`; m = 1024):
# 8e11 for a generated 1M release (12,485 movies, 800k training ratings), 5e12 at 5M (27,916),
# 4e13 at 25M (62,423 movies, 20M): hours on two cores, where the fit's SVD takes minutes. Above
# this bound no tail is published: the filter is served from its top m eigenvectors (and the
# ideal term) alone.
TAIL_MAX_FLOPS = 2e12


def bspm_response(config: GraphFilterConfig, values: torch.Tensor) -> torch.Tensor:
    """g(λ): the blurring then sharpening polynomials of `GraphFilter._bspm` at eigenvalues λ
    (the same `integrate` calls, P̃ replaced by λ)."""
    c, ones = config, torch.ones_like(values)
    blurred = integrate(lambda y: values * y - y, ones, c.T_b, c.K_b, "euler")
    return integrate(lambda y: -values * y, blurred, c.T_s, c.K_s, c.solver)


def cheby_response(config: GraphFilterConfig, values: torch.Tensor) -> torch.Tensor:
    """p(λ) = Σ c_k T_k(1 - 2λ), ChebyCF's polynomial at eigenvalues λ."""
    coefficients = chebyshev.coefficients(config.cheby_order, config.cheby_flatness).to(values.dtype)
    return chebyshev.apply(lambda y: y - 2 * values * y, torch.ones_like(values), coefficients)


def blend_weights(config: GraphFilterConfig, blend_scale: Sequence[float]) -> tuple[float, float]:
    """(BSPM's, ChebyCF's) factor in `GraphFilter._blend`."""
    w = config.cheby_weight
    if w == 0:
        return 1.0, 0.0
    if w == 1:
        return 0.0, 1.0
    return (1 - w) / blend_scale[0], w / blend_scale[1]


def fit_spectral(graph_filter: GraphFilter, train_pairs: np.ndarray, n_users: int, *,
                 progress: bool = False) -> dict[str, torch.Tensor]:
    """The serving tables of a fitted filter (`spectral_tables`): the top `serve_dim`
    eigenvectors of P̃, all of them where R̃'s rank is at most that; {} for serve_dim 0."""
    c = graph_filter.config
    binary = binary_matrix(train_pairs, n_users, graph_filter.n_items)
    rank, count = rank_bound(binary), serve_count(binary, c)
    if not count:
        return {}
    if graph_filter.singular is not None and graph_filter.singular[1].shape[1] >= count:
        values, vectors = (part[..., :count] for part in graph_filter.singular)  # `fit`'s SVD
    else:
        values, vectors = top_singular(normalize(binary, c.user_exponent, c.item_exponent)[0], count)
    log.info("graphfilter: %d of R̃'s at most %d eigenvectors published for serving", len(values), rank)
    return spectral_tables(graph_filter, vectors, values, rank=rank, progress=progress)


def spectral_tables(graph_filter: GraphFilter, vectors: np.ndarray, values: np.ndarray, *, rank: int,
                    progress: bool = False) -> dict[str, torch.Tensor]:
    """The tables `SpectralFilter` serves from: R̃'s top right singular `vectors` (I, m) and
    singular `values` (m,) (before dividing by σ1), and `rank`, R̃'s rank or its bound min(U, I);
    the tail is computed when m < rank and it costs at most TAIL_MAX_FLOPS."""
    c = graph_filter.config
    eigenvalues = torch.as_tensor((np.asarray(values, dtype=np.float64) / graph_filter.scale) ** 2)
    tables = {"spectral_vectors": torch.as_tensor(np.asarray(vectors), dtype=torch.float32).contiguous(),
              "spectral_values": eigenvalues}
    if c.cheby_weight < 1 and c.idl_beta and c.factor_dim:
        with torch.no_grad():  # S(P̃) D_I^2b E: the ideal term's right side, k filter passes
            start = graph_filter.item_weight.unsqueeze(1) * graph_filter.item_factors[:, : c.factor_dim]
            tables["ideal_sharpened"] = integrate(lambda y: -graph_filter.propagate(y), start,
                                                  c.T_s, c.K_s, c.solver).contiguous()
    if c.serve_tail and len(eigenvalues) < rank:
        flops = tail_flops(graph_filter, len(eigenvalues))
        if flops <= TAIL_MAX_FLOPS:
            tables.update(_tail(graph_filter, tables, progress))
        else:
            log.warning("graphfilter: no tail published: it would take %.1e flops (at most %.0e); served "
                        "from the top %d eigenvectors alone", flops, TAIL_MAX_FLOPS, len(eigenvalues))
    return tables


def tail_flops(graph_filter: GraphFilter, m: int) -> float:
    """About what `_tail` costs: every item's one-item history through the filter (its passes
    over R̃: 2 sparse products each) less the factored part ((I, m) products)."""
    c = graph_filter.config
    passes = c.K_b + c.K_s * (4 if c.solver == "rk4" else 1) + (c.cheby_order if c.cheby_weight else 0)
    nnz = graph_filter.matrix.values().numel()
    return graph_filter.n_items * (4.0 * nnz * passes + 4.0 * graph_filter.n_items * m)


def _tail(graph_filter: GraphFilter, tables: dict[str, torch.Tensor],
          progress: bool) -> dict[str, torch.Tensor]:
    """Each item's `serve_tail` largest entries (by magnitude) of M minus its factored part."""
    factored = SpectralFilter(graph_filter.config, tables, graph_filter.item_degree,
                              graph_filter.item_factors, graph_filter.blend_scale)
    n, width = graph_filter.n_items, min(graph_filter.config.serve_tail, graph_filter.n_items)
    items, weights = torch.zeros(n, width, dtype=torch.int64), torch.zeros(n, width)
    for start in tqdm(range(0, n, TAIL_CHUNK), disable=not progress, desc="graphfilter tail", unit="block"):
        rows = torch.arange(start, min(start + TAIL_CHUNK, n))
        one_hot = torch.zeros(len(rows), n)
        one_hot[torch.arange(len(rows)), rows] = 1.0
        rest = graph_filter.scores(one_hot) - factored.scores(one_hot)  # (b, I) rows of M's tail
        top = torch.topk(rest.abs(), width, dim=1).indices
        items[rows], weights[rows] = top, rest.gather(1, top)
    return {"tail_items": items, "tail_weights": weights}


@dataclass(frozen=True)
class _Part:
    """weight · post ⊙ (right (gain ⊙ ((r ⊙ pre) left))), a low-rank part of M (module docstring)."""

    weight: float
    left: torch.Tensor  # (I, m)
    right: torch.Tensor  # (I, m)
    gain: torch.Tensor | None = None  # (m,)
    pre: torch.Tensor | None = None  # (I,)
    post: torch.Tensor | None = None  # (I,)


class SpectralFilter:
    """The filter of a `GraphFilter` from published item-side tables (module docstring): the
    same `scores`, `score_items` and `columns`, plus `entries`, in O((|H| + I) m) a visitor.

    config: the filter's; tables: `spectral_tables`' (read-only: the published, memory-mapped
    tensors are used as they are); item_degree (I,); item_factors: E (I, k); blend_scale:
    (n_B, n_C)."""

    def __init__(self, config: GraphFilterConfig, tables: dict[str, torch.Tensor], item_degree, item_factors,
                 blend_scale: Sequence[float] = (1.0, 1.0)):
        self.config = config
        degree = np.asarray(item_degree, dtype=np.float64)
        vectors = tables["spectral_vectors"]
        self.n_items = vectors.shape[0]
        eigenvalues = tables["spectral_values"].double()
        w_bspm, w_cheby = blend_weights(config, blend_scale)
        diagonal, parts = torch.zeros(self.n_items), []
        if w_bspm:
            zero = float(bspm_response(config, torch.zeros(1, dtype=torch.float64)))
            parts.append(_Part(w_bspm, vectors, vectors, (bspm_response(config, eigenvalues) - zero).float()))
            diagonal += w_bspm * zero
            if "ideal_sharpened" in tables:
                parts.append(_Part(w_bspm * config.idl_beta, item_factors[:, : config.factor_dim],
                                   tables["ideal_sharpened"]))
        if w_cheby:
            zero = float(cheby_response(config, torch.zeros(1, dtype=torch.float64)))
            pre = torch.as_tensor(degree_power(degree, -config.cheby_power), dtype=torch.float32)
            post = torch.as_tensor(degree_power(degree, config.cheby_power), dtype=torch.float32)
            gain = (cheby_response(config, eigenvalues) - zero).float()
            parts.append(_Part(w_cheby, vectors, vectors, gain, pre, post))
            diagonal += w_cheby * zero * torch.as_tensor(degree > 0, dtype=torch.float32)
            if config.cheby_ideal and config.cheby_dim:
                b = torch.as_tensor(degree_power(degree, config.item_exponent), dtype=torch.float32)
                ideal = item_factors[:, : config.cheby_dim]
                parts.append(_Part(w_cheby * config.cheby_ideal, ideal, ideal, None, pre * b, post * b))
        self.diagonal, self.parts = diagonal, parts
        self.tail_items, self.tail_weights = tables.get("tail_items"), tables.get("tail_weights")

    def _rows(self, rows: torch.Tensor, owner: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
        """(n, I) = Σ over the entries (owner, row, value) of value · M[row]: n histories given
        as their nonzero entries."""
        out = torch.zeros(n, self.n_items)
        out.index_put_((owner, rows), values * self.diagonal[rows], accumulate=True)
        for part in self.parts:
            weighted = values if part.pre is None else values * part.pre[rows]
            visitors = torch.zeros(n, part.left.shape[1]).index_add_(
                0, owner, weighted.unsqueeze(1) * part.left[rows])  # (n, m)
            if part.gain is not None:
                visitors = visitors * part.gain
            block = visitors @ part.right.T  # (n, I)
            out += part.weight * (block if part.post is None else block * part.post)
        if self.tail_items is not None:
            cols = self.tail_items[rows]  # (nnz, t)
            out.index_put_((owner.unsqueeze(1).expand_as(cols), cols),
                           values.unsqueeze(1) * self.tail_weights[rows], accumulate=True)
        return out

    def scores(self, history: torch.Tensor) -> torch.Tensor:
        """(B, I) histories -> (B, I) scores, as `GraphFilter.scores`."""
        owner, rows = history.nonzero(as_tuple=True)
        with torch.no_grad():
            return self._rows(rows, owner, history[owner, rows].float(), len(history))

    def score_items(self, items: Sequence[int], dismissed: Sequence[int] = ()) -> torch.Tensor:
        """(I,) scores of a visitor with item rows `items` (each counted once) and a signed
        history: -1 for each movie it dismissed."""
        rows = torch.unique(torch.as_tensor(list(items), dtype=torch.int64))
        against = torch.unique(torch.as_tensor(list(dismissed), dtype=torch.int64))
        values = torch.cat([torch.ones(len(rows)), -torch.ones(len(against))])
        rows = torch.cat([rows, against])
        with torch.no_grad():
            return self._rows(rows, torch.zeros_like(rows), values, 1)[0]

    def entries(self, rows: Sequence[int], cols: Sequence[int]) -> torch.Tensor:
        """(len(rows), len(cols)) = M[rows][:, cols]: what history item `rows[a]` adds to the
        score of item `cols[b]`, without forming a row of M."""
        rows = torch.as_tensor(list(rows), dtype=torch.int64)
        cols = torch.as_tensor(list(cols), dtype=torch.int64)
        out = (rows.unsqueeze(1) == cols).float() * self.diagonal[rows].unsqueeze(1)
        for part in self.parts:
            left = part.left[rows] if part.pre is None else part.pre[rows].unsqueeze(1) * part.left[rows]
            if part.gain is not None:
                left = left * part.gain
            block = left @ part.right[cols].T  # (n, k)
            out += part.weight * (block if part.post is None else block * part.post[cols])
        if self.tail_items is not None:
            hits = self.tail_items[rows].unsqueeze(2) == cols  # (n, t, k)
            out += (self.tail_weights[rows].unsqueeze(2) * hits).sum(1)
        return out

    def columns(self, items: Sequence[int]) -> torch.Tensor:
        """(I, k) columns of M for `items`, as `GraphFilter.columns`."""
        return self.entries(range(self.n_items), items)


_FILTERS: dict[int, SpectralFilter] = {}


def serving_filter(checkpoint) -> SpectralFilter | GraphFilter:
    """The filter a web process scores a visitor with: from the version's spectral tables,
    built once per loaded checkpoint; a version published without them is filtered over R̃
    (`filter_for`)."""
    if "spectral_vectors" not in checkpoint.extra:
        return filter_for(checkpoint)
    key = id(checkpoint)
    if key not in _FILTERS:
        config = GraphFilterConfig(**checkpoint.config)
        blend_scale = checkpoint.extra.get("blend_scale", torch.ones(2)).tolist()
        _FILTERS[key] = SpectralFilter(config, checkpoint.extra, checkpoint.extra["item_degree"].numpy(),
                                       checkpoint.item_embeddings, blend_scale)
        weakref.finalize(checkpoint, _FILTERS.pop, key, None)
    return _FILTERS[key]
