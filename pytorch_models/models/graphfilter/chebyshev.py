"""ChebyCF's filter: a polynomial in P̃ that follows a flat-topped low-pass response.
Kim et al., "Graph Spectral Filtering with Chebyshev Interpolation for Recommendation",
SIGIR 2025, https://arxiv.org/abs/2505.00552 (code: https://github.com/chanwoo0806/ChebyCF).

On L̃ = I - 2 P̃ (P̃'s spectrum [0, 1] becomes [-1, 1], the low frequencies near -1) the
filter is Σ_k c_k T_k(L̃), T_k the Chebyshev polynomials (T_0 = 1, T_1 = x,
T_k = 2x T_{k-1} - T_{k-2}), with c_k interpolating the "plateau" response
h(x) = 1/2 + |x|^φ / 2 for x < 0 and 1/2 - x^φ / 2 for x >= 0 (flatness φ) at the order + 1
Chebyshev nodes. The values are those of the paper's code, rounding included, so its
published settings give its published figures.
"""

from __future__ import annotations

import math

import torch


def plateau(order: int, flatness: float) -> torch.Tensor:
    """(order + 1,) values of the plateau response at x_i = cos((order - i) π / order)."""
    x = torch.cos((order - torch.arange(order + 1, dtype=torch.float64)) / order * math.pi).round(decimals=3)
    values = torch.where(x < 0, 0.5 + 0.5 * (-x).clamp(min=0) ** flatness,
                         0.5 - 0.5 * x.clamp(min=0) ** flatness)
    return values.round(decimals=3)


def chebyshev_terms(x: torch.Tensor, order: int) -> torch.Tensor:
    """(order + 1, *x.shape): T_0(x) .. T_order(x) for scalar x."""
    terms = [torch.ones_like(x), x]
    for _ in range(2, order + 1):
        terms.append(2 * x * terms[-1] - terms[-2])
    return torch.stack(terms[: order + 1])


def coefficients(order: int, flatness: float) -> torch.Tensor:
    """(order + 1,) c_k of the interpolating polynomial Σ c_k T_k (order >= 1)."""
    nodes = torch.cos((order + 1.5 - torch.arange(1, order + 2, dtype=torch.float64)) / (order + 1) * math.pi)
    c = (chebyshev_terms(nodes, order) * plateau(order, flatness)).sum(dim=1) * (2 / (order + 1))
    c[0] /= 2
    return c.float()


def apply(laplacian, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Σ_k c_k T_k(L̃) x for (I, B) columns x, `laplacian(y)` = L̃ y: len(c) - 1 products."""
    previous, current = x, laplacian(x)
    out = c[0] * previous + c[1] * current
    for k in range(2, len(c)):
        previous, current = current, 2 * laplacian(current) - previous
        out += c[k] * current
    return out
