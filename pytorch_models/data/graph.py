"""The user–movie graph: a DGL heterograph for sampling and a torch sparse CSR for propagation."""

from __future__ import annotations

import warnings

import dgl
import numpy as np
import torch

from pytorch_models.linalg import row_pointers

# torch 2.2 warns on every CSR construction that sparse CSR is "beta"; we rely on it knowingly.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

USER, MOVIE = "user", "movie"
WATCHED, WATCHED_BY = "watched", "watched-by"


def build_graph(n_users: int, n_items: int, pairs: np.ndarray | torch.Tensor) -> dgl.DGLGraph:
    """Heterograph with `user` and `movie` nodes, `watched` (user→movie) and `watched-by` edges.

    pairs: (E, 2) int64 [user, item].
    """
    pairs = torch.as_tensor(np.asarray(pairs), dtype=torch.int64).reshape(-1, 2)
    users, items = pairs[:, 0], pairs[:, 1]
    return dgl.heterograph(
        {(USER, WATCHED, MOVIE): (users, items), (MOVIE, WATCHED_BY, USER): (items, users)},
        num_nodes_dict={USER: n_users, MOVIE: n_items},
    )


class SymmetricAdjacency:
    """D^-1/2 A D^-1/2 of the bipartite graph as an (N, N) CSR, N = n_users + n_items.

    Users are rows 0..n_users-1, item i is row n_users + i. `edge_of_value[j]` is the
    undirected edge (row of `pairs`) the j-th stored value belongs to, so edge dropout can
    keep the matrix symmetric.
    """

    def __init__(self, n_users: int, n_items: int, pairs: np.ndarray | torch.Tensor):
        pairs = torch.as_tensor(np.asarray(pairs), dtype=torch.int64).reshape(-1, 2)
        n = n_users + n_items
        users, items = pairs[:, 0], pairs[:, 1] + n_users
        rows = torch.cat([users, items])
        cols = torch.cat([items, users])
        edge = torch.arange(len(pairs)).repeat(2)
        degree = torch.bincount(rows, minlength=n).float()
        inv_sqrt = degree.pow(-0.5)
        inv_sqrt[degree == 0] = 0.0
        order = torch.argsort(rows * n + cols)
        rows, cols, edge = rows[order], cols[order], edge[order]
        self.values = inv_sqrt[rows] * inv_sqrt[cols]
        self.crow = row_pointers(rows, n)
        self.col = cols
        self.edge_of_value = edge
        self.n_edges = len(pairs)
        self.shape = (n, n)
        self.matrix = self.with_values(self.values)

    def with_values(self, values: torch.Tensor) -> torch.Tensor:
        return torch.sparse_csr_tensor(self.crow, self.col, values, self.shape)

    def dropped(self, rate: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Edge dropout (NGCF's node/message dropout on the Laplacian): drop undirected edges
        with probability `rate`, rescale the kept ones by 1 / (1 - rate)."""
        if rate <= 0:
            return self.matrix
        keep = (torch.rand(self.n_edges, generator=generator) >= rate).float() / (1.0 - rate)
        return self.with_values(self.values * keep[self.edge_of_value])


def normalized_adjacency(n_users: int, n_items: int, pairs: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Symmetric normalised adjacency D^-1/2 A D^-1/2 as a torch sparse CSR (N×N)."""
    return SymmetricAdjacency(n_users, n_items, pairs).matrix


class _SymmetricSpmm(torch.autograd.Function):
    """A @ x for a symmetric sparse A; the backward pass reuses A (no transpose needed)."""

    @staticmethod
    def forward(ctx, adjacency, x):
        ctx.adjacency = adjacency
        return adjacency @ x

    @staticmethod
    def backward(ctx, grad):
        return None, ctx.adjacency @ grad


def propagate(adjacency: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """adjacency: (N, N) symmetric sparse CSR; x: (N, d) -> (N, d)."""
    return _SymmetricSpmm.apply(adjacency, x)
