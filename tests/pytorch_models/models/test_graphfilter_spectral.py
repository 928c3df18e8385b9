"""The graph filter served from item-side factors (`spectral.py`) scores as the filter over R̃:
exactly where the published eigenvectors span R̃'s row space, through the tail where they do
not, and on ml-latest-small with the site's settings within 1e-3 of the old path."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.data.interactions import load_movielens
from pytorch_models.linalg import binary_matrix
from pytorch_models.models.graphfilter import model
from pytorch_models.models.graphfilter import spectral as spectral_module
from pytorch_models.models.graphfilter.model import GraphFilterConfig, filter_for, fit
from pytorch_models.models.graphfilter.spectral import SpectralFilter, fit_spectral, serving_filter
from pytorch_models.serving.explain import filter_terms
from pytorch_models.serving.fold_in import score_history
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model

MOVIELENS = Path(__file__).resolve().parents[3] / "data" / "ml-latest-small"


def _both(data, config: GraphFilterConfig):
    graph_filter = fit(data.train, data.n_users, data.n_items, config)
    tables = fit_spectral(graph_filter, data.train, data.n_users)
    spectral = SpectralFilter(config, tables, graph_filter.item_degree.numpy(), graph_filter.item_factors,
                              graph_filter.blend_scale)
    history = torch.from_numpy(binary_matrix(data.train, data.n_users, data.n_items).toarray())
    return graph_filter, spectral, tables, history


@pytest.mark.parametrize("config", [
    GraphFilterConfig(factor_dim=3),
    GraphFilterConfig(factor_dim=2, idl_beta=0.3, T_b=1.5, K_b=2, T_s=1.2, K_s=3, solver="rk4"),
    GraphFilterConfig(factor_dim=2, K_b=2, T_b=0.7, K_s=2, solver="euler"),
    GraphFilterConfig(factor_dim=0),
    GraphFilterConfig(factor_dim=3, item_exponent=0.35, user_exponent=0.6),
    GraphFilterConfig(factor_dim=3, cheby_weight=1.0, cheby_dim=4),
    GraphFilterConfig(factor_dim=3, cheby_weight=0.4, cheby_dim=2, cheby_order=5),
])
def test_the_factors_score_as_the_filter_over_r(communities, config):
    graph_filter, spectral, tables, history = _both(communities, config)

    expected = graph_filter.scores(history)

    assert "tail_items" not in tables  # 30 items: every eigenvector is published
    assert torch.allclose(spectral.scores(history), expected, atol=1e-5)
    user_items = communities.train[communities.train[:, 0] == 5, 1].tolist()
    assert torch.allclose(spectral.score_items(user_items + user_items[:2]), expected[5], atol=1e-5)
    rows, cols = [0, 5, 17, 29], [1, 5, 20]
    one_item = graph_filter.scores(torch.eye(communities.n_items))  # row h: the scores of history {h}
    assert torch.allclose(spectral.entries(rows, cols), one_item[rows][:, cols], atol=1e-5)
    assert torch.allclose(spectral.columns(cols), one_item[:, cols], atol=1e-5)


@pytest.mark.parametrize("blend", [0.0, 0.4])
def test_above_serve_dim_the_tail_keeps_each_items_largest_entries(communities, blend):
    truncated = GraphFilterConfig(factor_dim=3, serve_dim=4, cheby_weight=blend, cheby_dim=4)
    complete = _both(communities, GraphFilterConfig(**{**truncated.__dict__, "serve_tail": 30}))
    graph_filter, spectral, tables, history = complete
    expected = graph_filter.scores(history)
    assert tables["spectral_vectors"].shape == (30, 4) and tables["tail_items"].shape == (30, 30)
    assert torch.allclose(spectral.scores(history), expected, atol=1e-5)  # the whole rest kept: exact

    errors = {}
    for width in (0, 5):
        config = GraphFilterConfig(**{**truncated.__dict__, "serve_tail": width})
        _, spectral, tables, _ = _both(communities, config)
        errors[width] = float((spectral.scores(history) - expected).abs().max())
    assert tables["tail_items"].shape == (30, 5)
    assert errors[5] < 0.7 * errors[0]


def test_a_tail_past_its_bound_is_not_published_and_one_svd_serves_both(communities, monkeypatch):
    """One truncated SVD gives the filter's factors and the serving eigenvectors; a tail whose
    fit would cost more than TAIL_MAX_FLOPS is left out, and the filter is served from its
    eigenvectors alone: the scores of the tail-less serving tables of the same SVD."""
    config = GraphFilterConfig(factor_dim=3, serve_dim=4, serve_tail=5)
    calls = []
    real = model.top_singular
    monkeypatch.setattr(model, "top_singular",
                        lambda matrix, k, start=None: calls.append(k) or real(matrix, k, start=start))
    graph_filter, spectral, tables, history = _both(communities, config)
    assert calls == [4] and "tail_items" in tables  # 30 items: far below the bound

    cost = spectral_module.tail_flops(graph_filter, 4)
    monkeypatch.setattr(spectral_module, "TAIL_MAX_FLOPS", cost / 2)
    graph_filter, bounded, tables, history = _both(communities, config)
    assert "tail_items" not in tables
    untailed = _both(communities, GraphFilterConfig(**{**config.__dict__, "serve_tail": 0}))[1]
    assert torch.allclose(bounded.scores(history), untailed.scores(history), atol=1e-6)
    assert not torch.allclose(bounded.scores(history), spectral.scores(history), atol=1e-4)


def test_the_explanations_are_the_factored_entries(communities):
    graph_filter, spectral, _, _ = _both(communities, GraphFilterConfig(factor_dim=3))
    history, items = torch.tensor([0, 3, 7, 11, 12]), torch.tensor([1, 2])

    assert torch.allclose(filter_terms(spectral, history, items), filter_terms(graph_filter, history, items),
                          atol=1e-5)


def test_a_dismissed_movie_is_a_negative_entry_of_the_history(communities):
    """The filter is linear in the history row, so a signed history scores as the history
    minus the dismissed movie's own row, in both forms of the filter."""
    graph_filter, spectral, _, _ = _both(communities, GraphFilterConfig(factor_dim=3))
    history, dismissed = [0, 3, 7], [11]
    for scorer in (graph_filter, spectral):
        signed = scorer.score_items(history, dismissed)
        assert torch.allclose(signed, scorer.score_items(history) - scorer.score_items(dismissed), atol=1e-5)
        assert signed[dismissed[0]] < scorer.score_items(history)[dismissed[0]]


@pytest.fixture(scope="module")
def movielens_checkpoint(tmp_path_factory):
    data = load_movielens(MOVIELENS)
    # the site's settings (predictors.versions.SITE_OPTIONS)
    site = TrainOptions(config_overrides={"factor_dim": 64}, progress=False)
    result = train_model("graphfilter", data, options=site)
    return data, load_checkpoint(publish(result, data, tmp_path_factory.mktemp("models") / "graphfilter"))


def test_on_ml_latest_small_the_served_scores_are_the_old_paths(movielens_checkpoint):
    data, checkpoint = movielens_checkpoint
    assert isinstance(serving_filter(checkpoint), SpectralFilter)
    assert checkpoint.extra["spectral_vectors"].shape == (data.n_items, 610)  # R̃'s rank: all of it
    assert "tail_items" not in checkpoint.extra
    old = filter_for(checkpoint)
    rng = np.random.default_rng(0)

    for user in rng.choice(data.n_users, 8, replace=False):
        items = data.train[data.train[:, 0] == user, 1].tolist()
        expected = old.score_items(items)

        served = score_history(checkpoint, items)

        assert float((served - expected).abs().max()) < 1e-3 * float(expected.abs().max())
        assert float((served - expected).abs().max()) < 1e-3
        unseen = torch.ones(data.n_items, dtype=torch.bool)
        unseen[items] = False
        top_old = torch.topk(torch.where(unseen, expected, -torch.inf), 20).indices
        top_new = torch.topk(torch.where(unseen, served, -torch.inf), 20).indices
        assert len(set(top_old.tolist()) & set(top_new.tolist())) >= 19


def test_a_version_without_factors_is_filtered_over_r(tmp_path, communities):
    """serve_dim 0 publishes no factors (as versions from before them): served over R̃."""
    versions = {}
    for serve_dim in (0, 1024):
        options = TrainOptions(config_overrides={"factor_dim": 3, "serve_dim": serve_dim}, progress=False)
        result = train_model("graphfilter", communities, options=options)
        versions[serve_dim] = load_checkpoint(publish(result, communities, tmp_path / str(serve_dim)))

    assert "spectral_vectors" not in versions[0].extra
    assert serving_filter(versions[0]) is filter_for(versions[0])
    assert isinstance(serving_filter(versions[1024]), SpectralFilter)
    assert serving_filter(versions[1024]) is serving_filter(versions[1024])  # built once per loaded version
    items = communities.train[communities.train[:, 0] == 2, 1].tolist()
    assert torch.allclose(score_history(versions[0], items), score_history(versions[1024], items), atol=1e-5)


def test_the_served_evaluation_ranks_as_the_exact_one_where_the_rank_fits(communities, community_features):
    def trained(served: bool, **config):
        options = TrainOptions(config_overrides={"factor_dim": 3, **config}, progress=False,
                               eval_served=served)
        return train_model("graphfilter", communities, community_features, options)

    users = torch.arange(communities.n_users)
    # serve_dim above the data's rank: the published tables hold every eigenvector, so the
    # filter served from them scores as the exact one and the held-out figures agree.
    exact, served = trained(False, serve_dim=64), trained(True, serve_dim=64)
    assert torch.allclose(served.scorer(users), exact.scorer(users), atol=1e-4)
    assert served.metrics == pytest.approx(exact.metrics)
    # Fewer eigenvectors than the rank and no tail: what is served approximates, and that is
    # what the served evaluation scores.
    exact, served = trained(False, serve_dim=4, serve_tail=0), trained(True, serve_dim=4, serve_tail=0)
    assert not torch.allclose(served.scorer(users), exact.scorer(users), atol=1e-4)
