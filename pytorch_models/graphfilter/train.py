"""Fitting the graph filter for `pytorch_models.train` and scoring training users in batches."""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import torch
from tqdm import tqdm

from pytorch_models.graphfilter.model import GraphFilter, GraphFilterConfig, binary_matrix, fit

log = logging.getLogger(__name__)

# Users scored at once: a (256, I) block per ODE stage, ~42 MB each on Gowalla's 40,981 items
# (an RK4 step holds about five). On ml-latest-small 256 users took ~0.1 s, and the time per
# user was about the same from 64 to 610 users, so smaller blocks cost nothing.
SCORE_CHUNK = 256


def user_scorer(graph_filter: GraphFilter, train_pairs: np.ndarray, n_users: int, *, progress: bool = True,
                chunk: int = SCORE_CHUNK):
    """users (B,) -> (B, I) scores from each user's training history, `chunk` users at a time,
    with a progress bar over all `n_users` (full-ranking evaluation scores every user with a
    held-out item, which on our data sets is every user)."""
    binary = binary_matrix(train_pairs, n_users, graph_filter.n_items)
    bar = None

    def score(users: torch.Tensor) -> torch.Tensor:
        nonlocal bar
        bar = bar or tqdm(total=n_users, disable=not progress, desc="graphfilter", unit="user")
        rows = users.numpy()
        blocks = []
        for start in range(0, len(rows), chunk):
            history = torch.from_numpy(binary[rows[start : start + chunk]].toarray())  # (b, I)
            blocks.append(graph_filter.scores(history))
            bar.update(len(history))
        if bar.n >= n_users:  # a full pass is done; a later pass gets a bar of its own
            bar.close()
            bar = None
        return torch.cat(blocks) if blocks else torch.zeros(0, graph_filter.n_items)

    return score


def train_graphfilter(data, *, options: dict, progress: bool):
    """`fit` on `data.train` with the config fields in `options`; returns what `train_model`
    unpacks: (model, config, item table (I, k), extra tensors, user scorer, history)."""
    config = GraphFilterConfig(**options)
    graph_filter = fit(data.train, data.n_users, data.n_items, config)
    tables = graph_filter.tables()
    score = user_scorer(graph_filter, data.train, data.n_users, progress=progress)
    return None, asdict(config), tables.pop("item_embeddings"), tables, score, []
