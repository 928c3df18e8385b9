"""Graph filter: a training-free BSPM recommender. Choi et al., "Blurring-Sharpening Process
Models for Collaborative Filtering", SIGIR 2023, https://arxiv.org/abs/2211.09324
(code: https://github.com/jeongwhanchoi/BSPM).

With R the binary train matrix (users x items), D_U / D_I its user / item degrees and a user's
history row r (1, I):

    R̃ = D_U^-1/2 R D_I^-1/2            P̃ = R̃ᵀ R̃  (I x I, never materialised)
    V = top-k right singular vectors of R̃          (I, k), k = factor_dim
    idl = r D_I^-1/2 V Vᵀ D_I^1/2 = r E Eᵀ D_I      E = D_I^-1/2 V (the published item table)

(The exponents 1/2 are the paper's; the config generalises them to a and b, see
`GraphFilterConfig`.)
    blurring:   dr/dt = r P̃ - r,  r(0) = r,                          t in [0, T_b], K_b Euler steps
    sharpening: dr/dt = -r P̃,     r(0) = blurred + idl_beta · idl,   t in [0, T_s], K_s steps
    scores = r(T_s)

With cheby_weight w > 0 the scores blend in ChebyCF's filter (`chebyshev.py`) on the same R̃
and singular vectors, each filter's scores divided by its mean row norm over training users:

    scores = (1 - w) · BSPM(r) / n_B + w · ChebyCF(r) / n_C
    ChebyCF(r) = [(r D_I^-β) (Σ_k c_k T_k(I - 2 P̃) + α V_c V_cᵀ)] D_I^β      V_c: first cheby_dim of V

Every term is linear in r, so the blend is one linear filter too (explanations stay exact).
Nothing is learnt: `fit` computes the degrees and V, and a visitor is scored from its history
alone, exactly as a training user is (closed-form fold-in). Signals are kept as (I, B) columns
inside, so every product is a sparse CSR matrix times a dense block: five passes over every
rating per visitor. Web processes score visitors from the item-side factors `spectral.py`
derives from this filter at fit time instead; `from_checkpoint` / `filter_for` rebuild R̃ for
evaluation and for versions published without those factors.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import scipy.sparse as sp
import torch

from pytorch_models.linalg import binary_matrix, degree_power, normalize, top_singular, torch_csr
from pytorch_models.models.graphfilter import chebyshev

log = logging.getLogger(__name__)

SOLVERS = ("rk4", "euler")


@dataclass(frozen=True)
class GraphFilterConfig:
    """BSPM hyper-parameters; the defaults are the paper's Gowalla run (README of its code).

    factor_dim: k, singular vectors in the ideal low-pass (0 turns it off); idl_beta: its
    weight in the sharpening start; T_b, K_b: blurring end time and Euler steps; T_s, K_s:
    sharpening end time and steps of `solver` ("rk4" or "euler"); user_exponent,
    item_exponent: a and b in R̃ = D_U^-a R D_I^-b / σ1 (the paper's 1/2 and 1/2, where the
    largest singular value σ1 is 1 already; dividing by it keeps P̃'s spectrum in [0, 1], the
    scale the ODE times are set for, whatever the exponents).

    cheby_weight: w, ChebyCF's share of the blend (0: BSPM alone, the default; 1: ChebyCF
    alone); its order, flatness φ, ideal pass over cheby_dim singular vectors with weight α
    (cheby_ideal) and degree power β (cheby_power) default to that paper's Gowalla run.

    serve_dim: eigenvectors of P̃ a version publishes for serving (`spectral.py`; 0: none, the
    web process filters over R̃ as before); R̃'s rank at most is needed for the exact filter
    (ml-latest-small: 610, its users). serve_tail: entries per item kept of the rest of the
    filter where the rank is above serve_dim. Serving costs (|H| + I) · serve_dim a visitor and
    publishes 4 · serve_dim + 12 · serve_tail bytes an item.
    """

    factor_dim: int = 448
    idl_beta: float = 0.2
    T_b: float = 1.0
    K_b: int = 1
    T_s: float = 2.5
    K_s: int = 1
    solver: str = "rk4"
    user_exponent: float = 0.5
    item_exponent: float = 0.5
    cheby_weight: float = 0.0
    cheby_order: int = 8
    cheby_flatness: float = 1.5
    cheby_dim: int = 512
    cheby_ideal: float = 0.2
    cheby_power: float = 0.4
    serve_dim: int = 1024
    serve_tail: int = 64

    def __post_init__(self):
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}; expected one of {SOLVERS}")
        if self.factor_dim < 0 or self.K_b < 1 or self.K_s < 1:
            raise ValueError("factor_dim must be >= 0 and K_b, K_s >= 1")
        if not 0 <= self.cheby_weight <= 1 or self.cheby_order < 1 or self.cheby_dim < 0:
            raise ValueError("cheby_weight must be in [0, 1], cheby_order >= 1 and cheby_dim >= 0")
        if self.serve_dim < 0 or self.serve_tail < 0:
            raise ValueError("serve_dim and serve_tail must be >= 0")

    @property
    def singular_vectors(self) -> int:
        """How many singular vectors `fit` computes: BSPM's and, when blended in, ChebyCF's."""
        return max(self.factor_dim, self.cheby_dim if self.cheby_weight > 0 else 0)


def parse_override(text: str) -> tuple[str, int | float | str]:
    """"factor_dim=128" -> ("factor_dim", 128), typed by the config field (the train CLI's --filter)."""
    key, sep, value = text.partition("=")
    kinds = {f.name: f.type for f in fields(GraphFilterConfig)}
    if not sep or key not in kinds:
        raise ValueError(f"expected KEY=VALUE with KEY one of {sorted(kinds)}")
    return key, {"int": int, "float": float, "str": str}[kinds[key]](value)


def euler_step(derivative: Callable, y: torch.Tensor, h: float) -> torch.Tensor:
    return y + h * derivative(y)


def rk4_step(derivative: Callable, y: torch.Tensor, h: float) -> torch.Tensor:
    """Classical Runge-Kutta: four derivatives, summed as they come to hold few (I, B) blocks.
    For a linear ODE every 4-stage order-4 method (torchdiffeq's 3/8 rule included) gives the
    same step, y·(1 - hP̃ + (hP̃)²/2 - (hP̃)³/6 + (hP̃)⁴/24) for dr/dt = -r P̃."""
    k = derivative(y)
    total = k.clone()
    k = derivative(y + h / 2 * k)
    total += 2 * k
    k = derivative(y + h / 2 * k)
    total += 2 * k
    k = derivative(y + h * k)
    total += k
    return y + h / 6 * total


STEPS = {"euler": euler_step, "rk4": rk4_step}


def integrate(derivative: Callable, y0: torch.Tensor, end: float, steps: int, solver: str) -> torch.Tensor:
    """y(end) of dy/dt = derivative(y) from y(0) = y0 with `steps` fixed steps of `solver`."""
    y, h = y0, end / steps
    for _ in range(steps):
        y = STEPS[solver](derivative, y, h)
    return y


class GraphFilter:
    """BSPM, with ChebyCF blended in if configured, over a fixed train matrix (module docstring).

    config: the hyper-parameters; normalized: D_U^-a R D_I^-b (U, I) scipy CSR; scale: its
    largest singular value σ1; item_degree: (I,) item degrees of R; item_factors:
    E = D_I^-b V (I, k), the published item table; blend_scale: (n_B, n_C), each filter's
    mean row norm (only used when both are blended).
    """

    def __init__(self, config: GraphFilterConfig, normalized: sp.csr_matrix, scale: float, item_degree,
                 item_factors, blend_scale: tuple[float, float] = (1.0, 1.0)):
        self.config = config
        normalized = (normalized / scale).astype(np.float32)
        self.matrix = torch_csr(normalized)  # (U, I)
        self.matrix_t = torch_csr(normalized.T)  # (I, U)
        self.scale = float(scale)
        self.item_degree = torch.as_tensor(np.asarray(item_degree), dtype=torch.float32)
        # D_I^2b: the ideal low-pass r D_I^-b V Vᵀ D_I^b is r E Eᵀ D_I^2b.
        self.item_weight = torch.as_tensor(degree_power(item_degree, 2 * config.item_exponent),
                                           dtype=torch.float32)
        self.item_factors = torch.as_tensor(np.asarray(item_factors), dtype=torch.float32)
        self.n_items = normalized.shape[1]
        self.blend_scale = tuple(float(x) for x in blend_scale)
        # (values, right vectors) of R̃'s truncated SVD when `fit` computed it, before σ1
        # division: what `spectral.fit_spectral` reuses. None for a filter rebuilt from a checkpoint.
        self.singular: tuple[np.ndarray, np.ndarray] | None = None
        if config.cheby_weight > 0:
            self.cheby_coefficients = chebyshev.coefficients(config.cheby_order, config.cheby_flatness)
            self.cheby_pre = torch.as_tensor(degree_power(item_degree, -config.cheby_power),
                                             dtype=torch.float32)
            self.cheby_post = torch.as_tensor(degree_power(item_degree, config.cheby_power),
                                              dtype=torch.float32)
            # V_c = D_I^b E (0 where the degree is 0), the paper's ideal pass.
            b = torch.as_tensor(degree_power(item_degree, config.item_exponent), dtype=torch.float32)
            self.cheby_vectors = b.unsqueeze(1) * self.item_factors[:, : config.cheby_dim]

    def tables(self) -> dict[str, torch.Tensor]:
        """What a checkpoint stores besides the train edges: E as `item_embeddings` (I, k), the
        item degrees, σ1 and the blend's scales; V = D_I^b E where the degree is not 0 (V's
        row is 0 where it is)."""
        return {"item_embeddings": self.item_factors, "item_degree": self.item_degree,
                "scale": torch.tensor([self.scale], dtype=torch.float64),
                "blend_scale": torch.tensor(self.blend_scale, dtype=torch.float64)}

    def propagate(self, x: torch.Tensor) -> torch.Tensor:
        """(I, B) columns -> P̃ x = R̃ᵀ (R̃ x), i.e. r P̃ for each row r (P̃ is symmetric)."""
        return self.matrix_t @ (self.matrix @ x)

    def ideal(self, history: torch.Tensor) -> torch.Tensor:
        """(B, I) histories -> (I, B) columns of the ideal low-pass r E Eᵀ D_I^2b.

        r E sums the E rows of each history's items: on ml-latest-small (256 users) this took
        ~5 ms, against 28 ms for converting the block with `to_sparse_csr` first."""
        factors = self.item_factors[:, : self.config.factor_dim]
        rows, cols = history.nonzero(as_tuple=True)
        weighted = history[rows, cols].unsqueeze(1) * factors[cols]  # (nnz, k)
        visitors = torch.zeros(len(history), factors.shape[1]).index_add_(0, rows, weighted)  # (B, k)
        return self.item_weight.unsqueeze(1) * (factors @ visitors.T)

    def _bspm(self, history: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(I, B) columns of BSPM's scores of the (B, I) histories (x: the same as columns)."""
        c = self.config
        blurred = integrate(lambda y: self.propagate(y) - y, x, c.T_b, c.K_b, "euler")
        if c.idl_beta and c.factor_dim:
            blurred += c.idl_beta * self.ideal(history)
        return integrate(lambda y: -self.propagate(y), blurred, c.T_s, c.K_s, c.solver)

    def _cheby_core(self, x: torch.Tensor) -> torch.Tensor:
        """(I, B) -> S x, S = Σ c_k T_k(I - 2 P̃) + α V_c V_cᵀ (symmetric)."""
        c = self.config
        out = chebyshev.apply(lambda y: y - 2 * self.propagate(y), x, self.cheby_coefficients)
        if c.cheby_ideal and c.cheby_dim:
            out += c.cheby_ideal * (self.cheby_vectors @ (self.cheby_vectors.T @ x))
        return out

    def _cheby(self, x: torch.Tensor) -> torch.Tensor:
        """(I, B) history columns -> ChebyCF's score columns D_I^β S (D_I^-β x)."""
        return self.cheby_post.unsqueeze(1) * self._cheby_core(self.cheby_pre.unsqueeze(1) * x)

    def _blend(self, bspm: Callable[[], torch.Tensor], cheby: Callable[[], torch.Tensor]) -> torch.Tensor:
        w = self.config.cheby_weight
        if w == 0:
            return bspm()
        if w == 1:
            return cheby()
        n_bspm, n_cheby = self.blend_scale
        return (1 - w) / n_bspm * bspm() + w / n_cheby * cheby()

    def scores(self, history: torch.Tensor) -> torch.Tensor:
        """(B, I) binary histories -> (B, I) scores of every item (seen items included)."""
        history = history.float()
        x = history.T.contiguous()  # (I, B)
        with torch.no_grad():
            out = self._blend(lambda: self._bspm(history, x), lambda: self._cheby(x))
        return out.T.contiguous()

    def columns(self, items: Sequence[int]) -> torch.Tensor:
        """(I, k): column j is the score item `items[j]` gets from each one-item history, i.e.
        those items' columns of the filter's matrix M (scores = r M), without forming M.

        BSPM's M = (B + β L) S with B, S the blurring and sharpening polynomials in the
        symmetric P̃ and L = E Eᵀ D_I, so M e = B (S e) + β E (Eᵀ (D_I S e)); ChebyCF's is
        D_I^-β S_c D_I^β with S_c symmetric. k columns cost what k histories cost, which is
        what explaining k listed items against a long history needs."""
        c = self.config
        x = torch.zeros(self.n_items, len(items))
        x[torch.as_tensor(list(items), dtype=torch.int64), torch.arange(len(items))] = 1.0

        def bspm() -> torch.Tensor:
            sharpened = integrate(lambda y: -self.propagate(y), x, c.T_s, c.K_s, c.solver)
            out = integrate(lambda y: self.propagate(y) - y, sharpened, c.T_b, c.K_b, "euler")
            if c.idl_beta and c.factor_dim:
                factors = self.item_factors[:, : c.factor_dim]
                out += c.idl_beta * (factors @ (factors.T @ (self.item_weight.unsqueeze(1) * sharpened)))
            return out

        with torch.no_grad():
            return self._blend(
                bspm, lambda: self.cheby_pre.unsqueeze(1) * self._cheby_core(self.cheby_post.unsqueeze(1) * x)
            )

    def score_items(self, items: Sequence[int], dismissed: Sequence[int] = ()) -> torch.Tensor:
        """(I,) scores of a visitor with item rows `items`: the closed-form fold-in, the same
        formula as a training user's row (no parameters per visitor, nothing to fine-tune).
        The history is signed: -1 for each movie the visitor dismissed (the filter is linear
        in it)."""
        history = torch.zeros(1, self.n_items)
        history[0, torch.as_tensor(list(items), dtype=torch.int64)] = 1.0
        history[0, torch.as_tensor(list(dismissed), dtype=torch.int64)] = -1.0
        return self.scores(history)[0]


# Training users whose mean row norms put the two filters of a blend on one scale.
BLEND_SAMPLE = 1024


def blend_scales(graph_filter: GraphFilter, binary: sp.csr_matrix) -> tuple[float, float]:
    """(n_B, n_C): the mean L2 norm of each filter's score rows over up to BLEND_SAMPLE
    training users with a history, evenly spaced (deterministic)."""
    users = np.flatnonzero(np.diff(binary.indptr) > 0)
    users = users[:: max(1, len(users) // BLEND_SAMPLE)][:BLEND_SAMPLE]
    totals = np.zeros(2)
    for start in range(0, len(users), SCORE_CHUNK):
        history = torch.from_numpy(binary[users[start : start + SCORE_CHUNK]].toarray()).float()
        x = history.T.contiguous()
        with torch.no_grad():
            totals[0] += float(graph_filter._bspm(history, x).norm(dim=0).sum())
            totals[1] += float(graph_filter._cheby(x).norm(dim=0).sum())
    return tuple(totals / max(len(users), 1))


def fit(train_pairs: np.ndarray, n_users: int, n_items: int, config: GraphFilterConfig, *,
        start: np.ndarray | None = None) -> GraphFilter:
    """The filter of a train matrix: degrees, R̃, the top singular vectors and, for a blend,
    the two filters' scales. One truncated SVD serves the filter's factors and the serving
    tables (`spectral.fit_spectral`) alike: at 25M ratings each costs minutes. start: an
    earlier fit's singular vectors, rows matched to these items (`linalg.top_singular`)."""
    binary = binary_matrix(train_pairs, n_users, n_items)
    normalized, item_degree = normalize(binary, config.user_exponent, config.item_exponent)
    k = config.singular_vectors
    values, vectors = top_singular(normalized, max(k, serve_count(binary, config), 1),  # σ1 even with k = 0
                                   start=start)
    log.info("graphfilter: %d singular vectors, largest %.4f, smallest kept %.4f", min(k, vectors.shape[1]),
             values[0], values[min(k, vectors.shape[1]) - 1] if k and vectors.shape[1] else 0.0)
    item_factors = degree_power(item_degree, -config.item_exponent)[:, None] * vectors[:, :k]  # E = D_I^-b V
    graph_filter = GraphFilter(config, normalized, values[0], item_degree, item_factors)
    graph_filter.singular = (values, vectors)
    if 0 < config.cheby_weight < 1:
        graph_filter.blend_scale = blend_scales(graph_filter, binary)
        log.info("graphfilter: blend scales BSPM %.4g, ChebyCF %.4g", *graph_filter.blend_scale)
    return graph_filter


def rank_bound(binary: sp.csr_matrix) -> int:
    """R̃'s rank at most: its users with an item, or its items with a user, the fewer."""
    return min(int((np.diff(binary.indptr) > 0).sum()), int((binary.getnnz(axis=0) > 0).sum()))


def serve_count(binary: sp.csr_matrix, config: GraphFilterConfig) -> int:
    """How many of R̃'s singular vectors the serving tables take (`spectral.fit_spectral`)."""
    return min(config.serve_dim, rank_bound(binary))


# Users scored at once: a (256, I) block per ODE stage, ~42 MB each on Gowalla's 40,981 items
# (an RK4 step holds about five). On ml-latest-small 256 users took ~0.1 s, and the time per
# user was about the same from 64 to 610 users, so smaller blocks cost nothing.
SCORE_CHUNK = 256


def user_scorer(graph_filter: GraphFilter, train_pairs: np.ndarray, n_users: int, *,
                chunk: int = SCORE_CHUNK):
    """users (B,) -> (B, I) scores from each user's training history, `chunk` users at a time
    (the evaluation that calls it shows the progress: `ranking_metrics`)."""
    binary = binary_matrix(train_pairs, n_users, graph_filter.n_items)

    def score(users: torch.Tensor) -> torch.Tensor:
        rows = users.numpy()
        blocks = [graph_filter.scores(torch.from_numpy(binary[rows[start : start + chunk]].toarray()))
                  for start in range(0, len(rows), chunk)]
        return torch.cat(blocks) if blocks else torch.zeros(0, graph_filter.n_items)

    return score


def from_checkpoint(checkpoint) -> GraphFilter:
    """The filter of a loaded graphfilter checkpoint: R̃ from the training snapshot's edges,
    E and the item degrees from the published tables (no new SVD)."""
    snapshot = checkpoint.graph()
    binary = binary_matrix(snapshot.train_edges, snapshot.n_users, snapshot.n_items)
    config = GraphFilterConfig(**checkpoint.config)
    normalized, _ = normalize(binary, config.user_exponent, config.item_exponent)
    # Versions published before the blend existed carry no scales (and need none: BSPM alone).
    blend_scale = checkpoint.extra.get("blend_scale", torch.ones(2)).tolist()
    return GraphFilter(config, normalized, float(checkpoint.extra["scale"][0]),
                       checkpoint.extra["item_degree"], checkpoint.item_embeddings, blend_scale)


_FILTERS: dict[int, GraphFilter] = {}


def filter_for(checkpoint) -> GraphFilter:
    """`from_checkpoint`, built once per loaded checkpoint object and dropped with it: a
    published version never changes, and rebuilding R̃ from the snapshot on every visitor
    would cost more than scoring the visitor."""
    key = id(checkpoint)
    if key not in _FILTERS:
        _FILTERS[key] = from_checkpoint(checkpoint)
        weakref.finalize(checkpoint, _FILTERS.pop, key, None)
    return _FILTERS[key]
