"""Per-history-item terms of a score: a hand-worked table, and agreement with score_history."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pytorch_models.checkpoint import Checkpoint, load_checkpoint
from pytorch_models.serving.explain import contributions, explain_history
from pytorch_models.serving.fold_in import score_history
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model

# Rows 0-2 are the history, rows 3-4 the items to explain.
TABLE = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 2.0], [3.0, 1.0], [-1.0, 2.0]])
HISTORY, ITEMS = torch.tensor([0, 1, 2]), torch.tensor([3, 4])


def test_embedding_terms_by_hand():
    # Item 3 = (3, 1): <h, e_3> / 3 = 3/3, 1/3, 5/3 for rows 0, 1, 2.
    # Item 4 = (-1, 2): -1/3, 2/3, 3/3.
    values, rows = contributions(TABLE, HISTORY, ITEMS, top=2)

    assert rows.tolist() == [[2, 0], [2, 1]]
    assert torch.allclose(values, torch.tensor([[5 / 3, 1.0], [1.0, 2 / 3]]))


def test_pinsage_terms_use_the_unit_history_rows():
    # Row 2 normalised is (1, 2)/√5, so its terms shrink to √5/3 (item 3) and 3/(3√5) (item 4):
    # item 3's best contributor becomes row 0 (1.0), then row 2 (0.745).
    values, rows = contributions(TABLE, HISTORY, ITEMS, top=2, unit_history=True)

    assert rows.tolist() == [[0, 2], [1, 2]]
    assert torch.allclose(values, torch.tensor([[1.0, 5**0.5 / 3], [2 / 3, 1 / 5**0.5]]))


def test_top_beyond_the_history_gives_every_history_item():
    values, rows = contributions(TABLE, torch.tensor([1]), ITEMS, top=2)
    assert rows.tolist() == [[1], [1]] and values.shape == (2, 1)


def _checkpoint(model_name: str, table: torch.Tensor) -> Checkpoint:
    n = table.shape[0]
    extra = {"item_bias": torch.linspace(-0.5, 0.5, n), "item_popularity": torch.arange(n).float()}
    return Checkpoint(Path("unused"), model_name, {}, {}, table, np.arange(n), extra)


@pytest.mark.parametrize("model_name", ["lightgcn", "ngcf", "pinsage"])
def test_all_terms_add_up_to_the_served_score(model_name):
    """The split is exact: the terms of every history item (plus PinSage's item bias) are the
    score `score_history` serves."""
    table = torch.randn(30, 8, generator=torch.Generator().manual_seed(0))
    checkpoint = _checkpoint(model_name, table)
    history, items = [4, 9, 17, 23, 28], list(range(30))

    values, _ = explain_history(checkpoint, history, items, top=len(history))

    bias = checkpoint.extra["item_bias"] if model_name == "pinsage" else 0
    assert torch.allclose(values.sum(1) + bias, score_history(checkpoint, history), atol=1e-5)


def test_popular_scores_have_no_history_to_explain():
    with pytest.raises(ValueError):
        explain_history(_checkpoint("popular", TABLE), [0], [3])


@pytest.mark.parametrize("history, items", [
    ([1, 4, 12], range(30)),  # a short history: one pass over its one-item rows
    ([0, 2, 3, 5, 8, 11, 13, 17, 19, 23], [6, 20]),  # two listed items: their columns instead
])
def test_the_graph_filters_terms_add_up_to_the_served_score(tmp_path, communities, history, items):
    """The filter is linear in the history row, so the one-item histories' scores sum to the
    visitor's score exactly."""
    options = TrainOptions(config_overrides={"factor_dim": 3}, progress=False)
    result = train_model("graphfilter", communities, options=options)
    checkpoint = load_checkpoint(publish(result, communities, tmp_path / "graphfilter"))

    values, rows = explain_history(checkpoint, history, list(items), top=len(history))

    assert torch.allclose(values.sum(1), score_history(checkpoint, history)[list(items)], atol=1e-5)
    assert set(rows[0].tolist()) == set(history)
