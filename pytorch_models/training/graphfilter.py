"""Fitting the graph filter for `train_model`: nothing is learnt, so the fit is the SVD of
`fit`, the published tables and the item-side factors a web process serves from
(`spectral.fit_spectral`); users are scored by `user_scorer`."""

from __future__ import annotations

from dataclasses import asdict

from pytorch_models.data.interactions import Interactions
from pytorch_models.models.graphfilter.model import GraphFilterConfig, fit, user_scorer
from pytorch_models.models.graphfilter.spectral import fit_spectral
from pytorch_models.training.loops import ModelFit


def train_graphfilter(data: Interactions, *, config_overrides: dict, progress: bool) -> ModelFit:
    """`fit` on `data.train` with the GraphFilterConfig fields in `config_overrides`."""
    config = GraphFilterConfig(**config_overrides)
    graph_filter = fit(data.train, data.n_users, data.n_items, config)
    tables = graph_filter.tables()
    tables.update(fit_spectral(graph_filter, data.train, data.n_users, progress=progress))
    scorer = user_scorer(graph_filter, data.train, data.n_users)
    return ModelFit(None, asdict(config), tables.pop("item_embeddings"), tables, scorer, [])
