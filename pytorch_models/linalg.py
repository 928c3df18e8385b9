"""Sparse linear algebra of the normalised interaction matrix R̃ = D_U^-a R D_I^-b, shared by
the graph filter (`models.graphfilter.model`) and the spectral initialisation
(`training.spectral_init`): the binary R, degree powers, R̃, its top singular vectors, and
scipy CSR to torch CSR.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.linalg import svds


def binary_matrix(train_pairs: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """R (n_users, n_items) float32 CSR with a 1 per distinct (user, item) pair."""
    pairs = np.asarray(train_pairs, dtype=np.int64).reshape(-1, 2)
    matrix = sp.csr_matrix((np.ones(len(pairs), np.float32), (pairs[:, 0], pairs[:, 1])),
                           shape=(n_users, n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def degree_power(degree: np.ndarray, exponent: float) -> np.ndarray:
    """degree^exponent, 0 where the degree is 0: an empty row or column of R stays 0 in R̃, and
    an item nobody trained on scales nothing up (a degree + 1e-10 would give it 1e5)."""
    degree = np.asarray(degree, dtype=np.float64)
    return np.where(degree > 0, np.where(degree > 0, degree, 1.0) ** exponent, 0.0)


def normalize(binary: sp.csr_matrix, user_exponent: float = 0.5, item_exponent: float = 0.5):
    """(D_U^-a R D_I^-b as float64 CSR, item degrees (I,)) of the binary R, before the 1/σ1."""
    user_degree = np.asarray(binary.sum(axis=1)).ravel()
    item_degree = np.asarray(binary.sum(axis=0)).ravel()
    normalized = sp.diags(degree_power(user_degree, -user_exponent)) @ binary @ sp.diags(
        degree_power(item_degree, -item_exponent))
    return normalized.tocsr(), item_degree


# From this many vectors on, `top_singular` iterates a block instead of asking ARPACK: ARPACK's
# 2k + 1 Lanczos vectors, orthogonalised at every restart, cost it 530 s for 1,024 vectors of
# Gowalla and 1,400 s at 25M ratings (docs/benchmarks.md), where the products with the matrix
# are a few seconds.
BLOCK_FROM = 512
BLOCK_OVERSAMPLE = 0.25  # extra columns in the block, as a share of k
BLOCK_ITERATIONS = 8  # products with RᵀR before the Rayleigh-Ritz step
# From a start that is nearly the answer (a retrain's live version: the same catalogue and most
# of the same ratings), each vector's error already begins near its converged size.
WARM_ITERATIONS = 2


def top_singular(matrix: sp.csr_matrix, k: int, *, start: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(singular values (k,), right singular vectors (I, k)) of the k largest, descending.

    A dense LAPACK SVD when ARPACK would need about every Lanczos vector anyway (2k + 1 >=
    min side); ARPACK (`svds`, deterministic start) below BLOCK_FROM vectors; past it, block
    subspace iteration (`block_top_singular`). On ml-latest-small (610 x 9,742) `svds` gave the
    exact top-256 subspace in 0.37 s, while torch.svd_lowrank needed q = 2k and 4 power
    iterations (1.9 s) for the same accuracy. start: (I, m) vectors near the answer (an earlier
    fit's, rows matched by item), from which the block iterates WARM_ITERATIONS times instead.
    """
    k = min(k, *matrix.shape)
    if k == 0:
        return np.zeros(0), np.zeros((matrix.shape[1], 0))
    if 2 * k + 1 >= min(matrix.shape):
        _, values, vt = np.linalg.svd(matrix.toarray().astype(np.float64), full_matrices=False)
        return values[:k], vt[:k].T
    if start is not None:
        return block_top_singular(matrix, k, start=start, iterations=WARM_ITERATIONS)
    if k >= BLOCK_FROM:
        return block_top_singular(matrix, k)
    _, values, vt = svds(matrix.astype(np.float64), k=k, random_state=0)
    order = np.argsort(-values)
    return values[order], vt[order].T


def block_top_singular(matrix: sp.csr_matrix, k: int, *, oversample: float = BLOCK_OVERSAMPLE,
                       iterations: int = BLOCK_ITERATIONS, seed: int = 0,
                       start: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`top_singular` by subspace iteration: a seeded Gaussian block of k(1 + oversample)
    columns multiplied by MᵀM `iterations` times, orthonormalised after each (QR), then the
    Rayleigh-Ritz step: the eigenvectors W of (M Q)ᵀ(M Q) give the vectors Q W and its
    eigenvalues the squared values. Each iteration
    costs two sparse products (torch's, on every thread) and one QR of an (I, block) matrix;
    memory is a few (rows, block) float64 matrices. Vector j's error shrinks by about
    (σ_{block+1} / σ_j)^(2 · iterations): the oversampling is what keeps the last of the k
    accurate where the spectrum is flat. start: (columns, m) vectors the block begins with in
    place of its first m Gaussian columns (a warm start)."""
    columns = matrix.shape[1]
    block = min(columns, k + max(int(np.ceil(oversample * k)), 8))
    forward = torch_csr(matrix, torch.float64)
    backward = torch_csr(matrix.T.tocsr(), torch.float64)
    generator = torch.Generator().manual_seed(seed)
    first = torch.randn(columns, block, dtype=torch.float64, generator=generator)
    if start is not None:
        given = torch.as_tensor(np.asarray(start)[:, :block], dtype=torch.float64)
        first[:, :given.shape[1]] = given
    basis = torch.linalg.qr(first).Q
    for _ in range(iterations):
        basis = torch.linalg.qr(backward @ (forward @ basis)).Q
    image = forward @ basis  # (rows, block): M Q = U S Wᵀ
    squares, rotation = torch.linalg.eigh(image.T @ image)  # ascending
    order = torch.argsort(squares, descending=True)[:k]
    values = squares[order].clamp(min=0).sqrt()
    return values.numpy(), (basis @ rotation[:, order]).numpy()


def singular_residuals(matrix: sp.csr_matrix, values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """‖MᵀM v_j − σ_j² v_j‖ / σ_j² for each pair `top_singular` returned: 0 for an exact one;
    how a solver's last vectors are checked without an exact solver to compare with."""
    gram = matrix.T @ (matrix @ vectors)
    squares = np.asarray(values, dtype=np.float64) ** 2
    return np.linalg.norm(gram - vectors * squares, axis=0) / np.where(squares > 0, squares, 1.0)


def row_pointers(rows: torch.Tensor, n_rows: int) -> torch.Tensor:
    """(n_rows + 1,) CSR row pointers of entries in ascending `rows`: each row's start."""
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(torch.bincount(rows, minlength=n_rows), 0, out=crow[1:])
    return crow


def torch_csr(matrix: sp.csr_matrix, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    matrix = matrix.tocsr()
    return torch.sparse_csr_tensor(
        torch.from_numpy(matrix.indptr.astype(np.int64)), torch.from_numpy(matrix.indices.astype(np.int64)),
        torch.tensor(matrix.data, dtype=dtype), matrix.shape,
    )
