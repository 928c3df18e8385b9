"""The graph filter (BSPM, ChebyCF and their blend): equal to a dense numpy computation of the
papers' formulas, the closed-form fold-in equal to a training user's row, safetensors
checkpoints, beats popular."""

from dataclasses import asdict
from math import factorial

import numpy as np
import pytest
import torch

from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.linalg import binary_matrix, normalize, top_singular
from pytorch_models.models.graphfilter import chebyshev
from pytorch_models.models.graphfilter.model import (
    GraphFilterConfig,
    filter_for,
    fit,
    from_checkpoint,
    parse_override,
)
from pytorch_models.serving.fold_in import score_history
from pytorch_models.serving.scoring import checkpoint_scorer
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model

# 4 users x 5 items; nobody has item 4 (an empty column must score 0, not blow up).
HISTORY = np.array([[1, 1, 0, 0, 0], [0, 1, 1, 0, 0], [1, 0, 1, 1, 0], [0, 0, 0, 1, 0]], dtype=np.float64)


def _pairs(history: np.ndarray) -> np.ndarray:
    return np.argwhere(history > 0).astype(np.int64)


def reference_scores(r: np.ndarray, c: GraphFilterConfig) -> np.ndarray:
    """Dense numpy BSPM on the train matrix r (U, I): full SVD, P̃ materialised, each ODE step
    written as the matrix it multiplies by (RK4 on a linear ODE: the degree-4 Taylor polynomial)."""
    d_u, d_i = r.sum(1) + 1e-10, r.sum(0) + 1e-10
    a, b = c.user_exponent, c.item_exponent
    normalized = np.diag(d_u**-a) @ r @ np.diag(d_i**-b)
    _, sigma, vt = np.linalg.svd(normalized)
    normalized /= sigma[0]
    p = normalized.T @ normalized
    v = vt[: c.factor_dim].T  # (I, k)
    ideal = r @ np.diag(d_i**-b) @ v @ v.T @ np.diag(d_i**b)
    eye = np.eye(len(p))
    blurred = r @ np.linalg.matrix_power(eye + c.T_b / c.K_b * (p - eye), c.K_b)
    h = c.T_s / c.K_s
    orders = 1 if c.solver == "euler" else 4
    step = sum(np.linalg.matrix_power(-h * p, n) / factorial(n) for n in range(orders + 1))
    return (blurred + c.idl_beta * ideal) @ np.linalg.matrix_power(step, c.K_s)


@pytest.mark.parametrize("config", [
    GraphFilterConfig(factor_dim=2),  # the paper's Gowalla settings: one RK4 step to T_s = 2.5
    GraphFilterConfig(factor_dim=2, idl_beta=0.3, T_b=1.5, K_b=2, T_s=1.2, K_s=3, solver="rk4"),
    GraphFilterConfig(factor_dim=2, idl_beta=0.3, T_b=1.5, K_b=2, T_s=0.8, K_s=3, solver="euler"),
    GraphFilterConfig(factor_dim=0, solver="euler"),
    GraphFilterConfig(factor_dim=2, item_exponent=0.35, user_exponent=0.6),  # σ1 is not 1 here
])
def test_scores_equal_a_dense_numpy_computation_of_the_formulas(config):
    graph_filter = fit(_pairs(HISTORY), 4, 5, config)

    scores = graph_filter.scores(torch.from_numpy(HISTORY))

    expected = reference_scores(HISTORY, config)
    assert scores.shape == (4, 5) and scores.dtype == torch.float32
    assert np.allclose(scores.numpy(), expected, rtol=1e-4, atol=1e-5)
    assert torch.all(scores[:, 4] == 0)


def test_arpack_finds_the_same_top_subspace_as_a_dense_svd(communities):
    normalized, _ = normalize(binary_matrix(communities.train, communities.n_users, communities.n_items))
    dense = np.linalg.svd(normalized.toarray().astype(np.float64))
    k = 3
    assert dense[1][k - 1] - dense[1][k] > 1e-2  # a gap, so the subspace is unique

    values, vectors = top_singular(normalized, k)  # 2k + 1 < 30: the ARPACK path

    reference = dense[2][:k].T
    assert np.allclose(values, dense[1][:k], atol=1e-5)
    assert np.allclose(vectors @ vectors.T, reference @ reference.T, atol=1e-5)


def test_the_single_visitor_fold_in_is_the_batched_row_of_a_training_user(communities):
    data = communities
    graph_filter = fit(data.train, data.n_users, data.n_items, GraphFilterConfig(factor_dim=3))
    user = 7
    items = data.train[data.train[:, 0] == user, 1]
    history = torch.from_numpy(binary_matrix(data.train, data.n_users, data.n_items).toarray())

    batched = graph_filter.scores(history)

    assert torch.allclose(graph_filter.score_items(items.tolist()), batched[user], atol=1e-6)
    assert torch.allclose(graph_filter.scores(history[user : user + 1])[0], batched[user], atol=1e-6)


def test_the_checkpoint_round_trips_through_safetensors(tmp_path, communities, community_features):
    data = communities
    result = train_model("graphfilter", data, community_features,
                         TrainOptions(config_overrides={"factor_dim": 3}, progress=False))
    folder = publish(result, data, tmp_path / "graphfilter", item_features=community_features)

    assert {p.name for p in folder.iterdir()} == {
        "weights.safetensors", "item_embeddings.safetensors", "graph.safetensors", "meta.json"
    }
    checkpoint = load_checkpoint(folder)
    assert checkpoint.model_name == "graphfilter"
    assert checkpoint.config == asdict(GraphFilterConfig(factor_dim=3))
    assert checkpoint.item_embeddings.shape == (data.n_items, 3)
    assert torch.equal(checkpoint.item_embeddings, result.item_embeddings)
    assert torch.equal(checkpoint.extra["item_degree"], result.extra_tensors["item_degree"])
    fitted = fit(data.train, data.n_users, data.n_items, GraphFilterConfig(factor_dim=3))
    history = torch.from_numpy(binary_matrix(data.train, data.n_users, data.n_items).toarray())
    assert torch.allclose(from_checkpoint(checkpoint).scores(history), fitted.scores(history), atol=1e-6)


def test_checkpoint_scorer_and_score_history_use_the_published_filter(tmp_path, communities):
    data = communities
    result = train_model("graphfilter", data,
                         options=TrainOptions(config_overrides={"factor_dim": 3}, progress=False))
    checkpoint = load_checkpoint(publish(result, data, tmp_path / "graphfilter"))
    scorer = checkpoint_scorer(checkpoint, data.train, data.n_users)
    user = 3
    items = data.train[data.train[:, 0] == user, 1].tolist()

    visitor = score_history(checkpoint, items)

    assert torch.allclose(visitor, scorer(torch.tensor([user]))[0], atol=1e-6)
    assert filter_for(checkpoint) is filter_for(checkpoint)  # built once per loaded version
    assert torch.equal(score_history(checkpoint, []), checkpoint.extra["item_popularity"].float())


def test_a_short_run_beats_popular(communities):
    popular = train_model("popular", communities, options=TrainOptions(progress=False))
    graph_filter = train_model("graphfilter", communities,
                               options=TrainOptions(progress=False))  # the paper's defaults

    assert graph_filter.metrics["recall@20"] > popular.metrics["recall@20"]
    assert graph_filter.metrics["ndcg@20"] > popular.metrics["ndcg@20"]


def test_cli_overrides_are_typed_by_the_config_fields():
    assert parse_override("factor_dim=128") == ("factor_dim", 128)
    assert parse_override("T_s=1.5") == ("T_s", 1.5)
    assert parse_override("solver=euler") == ("solver", "euler")
    with pytest.raises(ValueError):
        parse_override("layers=3")
    with pytest.raises(ValueError):
        GraphFilterConfig(solver="heun")


@pytest.mark.parametrize("config", [
    GraphFilterConfig(factor_dim=3),
    GraphFilterConfig(factor_dim=2, K_b=2, T_b=0.7, K_s=2, solver="euler"),
    GraphFilterConfig(factor_dim=3, cheby_weight=1.0, cheby_dim=4),
    GraphFilterConfig(factor_dim=3, cheby_weight=0.4, cheby_dim=2, cheby_order=5),
])
def test_columns_are_the_scores_of_one_item_histories(communities, config):
    data = communities
    graph_filter = fit(data.train, data.n_users, data.n_items, config)
    items = [0, 5, 17]

    one_item_histories = graph_filter.scores(torch.eye(data.n_items))  # row h: the scores of history {h}

    assert torch.allclose(graph_filter.columns(items), one_item_histories[:, items], atol=1e-5)


def test_chebyshev_coefficients_are_the_papers():
    """ChebyCF's Gowalla setting (order 8, flatness 1.5): the coefficients its code computes,
    and the interpolant passes through the plateau's values at the interpolation nodes."""
    c = chebyshev.coefficients(8, 1.5)
    assert torch.allclose(c, torch.tensor([0.5, -0.492679, 0, -0.0323315, 0, 0.0211155, 0, -0.00110683, 0]),
                          atol=1e-6)
    nodes = torch.cos((9.5 - torch.arange(1, 10, dtype=torch.float64)) / 9 * np.pi)
    interpolated = (chebyshev.chebyshev_terms(nodes, 8) * c.double().unsqueeze(1)).sum(0)
    assert torch.allclose(interpolated.float(), chebyshev.plateau(8, 1.5).float(), atol=1e-5)


def reference_cheby(r: np.ndarray, c: GraphFilterConfig) -> np.ndarray:
    """Dense ChebyCF: L̃ = I - 2 R̃ᵀR̃ materialised, Σ c_k T_k(L̃) by the recurrence on matrices,
    the ideal pass from a full SVD, the degree power before and after."""
    d_u, d_i = r.sum(1), r.sum(0)
    with np.errstate(divide="ignore"):
        normalized = (np.diag(np.where(d_u > 0, d_u, 1) ** -0.5) @ r
                      @ np.diag(np.where(d_i > 0, d_i, 1) ** -0.5))
    normalized[:, d_i == 0] = 0
    laplacian = np.eye(r.shape[1]) - 2 * normalized.T @ normalized
    terms = [np.eye(r.shape[1]), laplacian]
    for _ in range(2, c.cheby_order + 1):
        terms.append(2 * laplacian @ terms[-1] - terms[-2])
    coefficients = chebyshev.coefficients(c.cheby_order, c.cheby_flatness).double().numpy()
    v = np.linalg.svd(normalized)[2][: c.cheby_dim].T
    core = sum(k * t for k, t in zip(coefficients, terms, strict=True)) + c.cheby_ideal * v @ v.T
    power = np.where(d_i > 0, np.where(d_i > 0, d_i, 1.0) ** c.cheby_power, 0.0)
    with np.errstate(divide="ignore"):
        inverse = np.where(d_i > 0, 1 / np.where(d_i > 0, power, 1.0), 0.0)
    return ((r * inverse) @ core) * power


def test_chebycf_and_the_blend_equal_a_dense_computation():
    pairs = _pairs(HISTORY)
    cheby = GraphFilterConfig(factor_dim=2, cheby_weight=1.0, cheby_dim=2, cheby_order=4)
    scores = fit(pairs, 4, 5, cheby).scores(torch.from_numpy(HISTORY))
    assert np.allclose(scores.numpy(), reference_cheby(HISTORY, cheby), rtol=1e-4, atol=1e-5)
    assert torch.all(scores[:, 4] == 0)

    blend = GraphFilterConfig(factor_dim=2, cheby_weight=0.3, cheby_dim=2, cheby_order=4)
    graph_filter = fit(pairs, 4, 5, blend)
    bspm_rows, cheby_rows = reference_scores(HISTORY, blend), reference_cheby(HISTORY, blend)
    # The scales are the mean row norms of each filter over the training users (all 4 here).
    n_bspm, n_cheby = np.linalg.norm(bspm_rows, axis=1).mean(), np.linalg.norm(cheby_rows, axis=1).mean()
    assert np.allclose(graph_filter.blend_scale, (n_bspm, n_cheby), rtol=1e-4)
    expected = 0.7 * bspm_rows / n_bspm + 0.3 * cheby_rows / n_cheby
    assert np.allclose(graph_filter.scores(torch.from_numpy(HISTORY)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_a_blended_checkpoint_scores_as_the_fitted_filter(tmp_path, communities):
    data = communities
    overrides = {"factor_dim": 3, "cheby_weight": 0.5, "cheby_dim": 4}
    result = train_model("graphfilter", data,
                         options=TrainOptions(config_overrides=overrides, progress=False))
    checkpoint = load_checkpoint(publish(result, data, tmp_path / "graphfilter"))
    fitted = fit(data.train, data.n_users, data.n_items, GraphFilterConfig(**overrides))

    # BSPM's 3 vectors are the first of ChebyCF's 4
    assert checkpoint.item_embeddings.shape == (data.n_items, 4)
    assert torch.allclose(checkpoint.extra["blend_scale"],
                          torch.tensor(fitted.blend_scale, dtype=torch.float64))
    history = torch.from_numpy(binary_matrix(data.train, data.n_users, data.n_items).toarray())
    assert torch.allclose(from_checkpoint(checkpoint).scores(history), fitted.scores(history), atol=1e-6)
