"""The top singular vectors of a sparse matrix, by every solver `top_singular` picks from."""

import numpy as np
import pytest
import scipy.sparse as sp

from pytorch_models import linalg
from pytorch_models.linalg import block_top_singular, singular_residuals, top_singular


@pytest.fixture(scope="module")
def spread():
    """A 600 x 400 matrix in CSR with known singular values, 10 · 0.9^j: every one apart from
    the next by 10%, so each top subspace is unique."""
    rng = np.random.default_rng(5)
    left = np.linalg.qr(rng.standard_normal((600, 400)))[0]
    right = np.linalg.qr(rng.standard_normal((400, 400)))[0]
    return sp.csr_matrix((left * (10 * 0.9 ** np.arange(400))) @ right.T)


def test_block_iteration_finds_the_dense_svds_top_subspace(spread):
    _, dense_values, dense_vt = np.linalg.svd(spread.toarray(), full_matrices=False)
    k = 30

    values, vectors = block_top_singular(spread, k)

    reference = dense_vt[:k].T
    assert values.shape == (k,) and vectors.shape == (400, k)
    assert np.allclose(values, dense_values[:k], rtol=1e-6)
    assert np.allclose(vectors.T @ vectors, np.eye(k), atol=1e-8)  # orthonormal
    assert np.allclose(vectors @ vectors.T, reference @ reference.T, atol=1e-5)
    assert singular_residuals(spread, values, vectors).max() < 1e-6
    again = block_top_singular(spread, k)
    assert np.array_equal(again[1], vectors)  # seeded


def test_fewer_iterations_leave_the_last_vectors_less_accurate(spread):
    _, dense_values, _ = np.linalg.svd(spread.toarray(), full_matrices=False)
    k = 30
    found = [block_top_singular(spread, k, iterations=n) for n in (1, 8)]
    errors = [np.abs(values - dense_values[:k]) / dense_values[:k] for values, _ in found]
    assert errors[0][-1] > 1e-3 > 1e-9 > errors[1].max()  # one iteration is not enough, eight are
    residuals = [singular_residuals(spread, *pair) for pair in found]
    assert residuals[0][-1] > 1e-2 > 1e-6 > residuals[1].max()  # and the residuals say so


def test_top_singular_picks_the_block_solver_from_its_threshold(spread, monkeypatch):
    k = 30
    arpack = top_singular(spread, k)  # below BLOCK_FROM: ARPACK
    monkeypatch.setattr(linalg, "BLOCK_FROM", k)
    block = top_singular(spread, k)
    assert np.allclose(block[0], arpack[0], rtol=1e-6)
    assert np.allclose(block[1] @ block[1].T, arpack[1] @ arpack[1].T, atol=1e-5)
    assert np.array_equal(block[1], block_top_singular(spread, k)[1])  # it was the block solver


def test_from_an_earlier_fits_vectors_two_iterations_go_on_where_it_stopped(spread):
    """A retrain's warm start: the matrix has moved a little (new ratings), the live version's
    vectors start the block, and WARM_ITERATIONS products continue the earlier fit's iterations:
    a thousand times closer than as many from noise."""
    k = 30
    _, earlier = block_top_singular(spread, k)
    rng = np.random.default_rng(6)
    noise = 0.01 * rng.standard_normal(spread.shape) * (rng.random(spread.shape) < 0.02)
    moved = spread + sp.csr_matrix(noise)
    _, dense_values, _ = np.linalg.svd(moved.toarray(), full_matrices=False)

    def error(found):
        return (np.abs(found[0] - dense_values[:k]) / dense_values[:k]).max()

    warm = top_singular(moved, k, start=earlier)
    assert linalg.WARM_ITERATIONS == 2
    assert error(warm) < 1e-6 < 1e-4 < error(block_top_singular(moved, k, iterations=2))
    assert singular_residuals(moved, *warm).max() < 1e-3
