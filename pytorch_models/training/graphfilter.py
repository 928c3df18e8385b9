"""Fitting the graph filter for `train_model`: nothing is learnt, so the fit is the SVD of
`fit`, the published tables and the item-side factors a web process serves from
(`spectral.fit_spectral`); users are scored by `user_scorer`, through the exact filter over R̃
or, with `served`, through those tables as a web process scores a visitor (`SpectralFilter`:
equal to the exact filter where R̃'s rank is within the published eigenvectors, an
approximation past it, and at 25M ratings 70 ms a user cheaper)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from pytorch_models.data.interactions import Interactions
from pytorch_models.models.graphfilter.model import GraphFilterConfig, fit, user_scorer
from pytorch_models.models.graphfilter.spectral import SpectralFilter, fit_spectral
from pytorch_models.training.loops import ModelFit


def train_graphfilter(data: Interactions, *, config_overrides: dict, progress: bool,
                      served: bool = False, start: np.ndarray | None = None) -> ModelFit:
    """`fit` on `data.train` with the GraphFilterConfig fields in `config_overrides`; its
    scorer is the exact filter's, or with `served` the published tables' (module docstring).
    start: a published version's singular vectors, rows matched to `data`'s items, which the
    SVD starts from (a retrain's warm start)."""
    config = GraphFilterConfig(**config_overrides)
    graph_filter = fit(data.train, data.n_users, data.n_items, config, start=start)
    tables = graph_filter.tables()
    tables.update(fit_spectral(graph_filter, data.train, data.n_users, progress=progress))
    if served and "spectral_vectors" in tables:
        graph_filter = SpectralFilter(config, tables, graph_filter.item_degree.numpy(),
                                      graph_filter.item_factors, graph_filter.blend_scale)
    scorer = user_scorer(graph_filter, data.train, data.n_users)
    return ModelFit(None, asdict(config), tables.pop("item_embeddings"), tables, scorer, [])
