"""Per-history-item terms of a score: a hand-worked table, agreement with score_history, and
which terms name the reasons (the deletion property on a model where the answer is known)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from pytorch_models.checkpoint import Checkpoint, load_checkpoint
from pytorch_models.serving.explain import (
    counterfactual,
    distinctive,
    embedding_terms,
    explain_history,
    largest,
    removal_ranks,
)
from pytorch_models.serving.fold_in import score_history
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model

# Rows 0-2 are the history, rows 3-4 the items to explain.
TABLE = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 2.0], [3.0, 1.0], [-1.0, 2.0]])
HISTORY, ITEMS = torch.tensor([0, 1, 2]), torch.tensor([3, 4])


def test_embedding_terms_by_hand():
    # Item 3 = (3, 1): <h, e_3> / 3 = 3/3, 1/3, 5/3 for rows 0, 1, 2.
    # Item 4 = (-1, 2): -1/3, 2/3, 3/3.
    values, columns = largest(embedding_terms(TABLE, HISTORY, ITEMS), top=2)

    assert HISTORY[columns].tolist() == [[2, 0], [2, 1]]
    assert torch.allclose(values, torch.tensor([[5 / 3, 1.0], [1.0, 2 / 3]]))


def test_pinsage_terms_use_the_unit_history_rows():
    # Row 2 normalised is (1, 2)/√5, so its terms shrink to √5/3 (item 3) and 3/(3√5) (item 4):
    # item 3's best contributor becomes row 0 (1.0), then row 2 (0.745).
    values, columns = largest(embedding_terms(TABLE, HISTORY, ITEMS, unit_history=True), top=2)

    assert HISTORY[columns].tolist() == [[0, 2], [1, 2]]
    assert torch.allclose(values, torch.tensor([[1.0, 5**0.5 / 3], [2 / 3, 1 / 5**0.5]]))


def test_top_beyond_the_history_gives_every_history_item():
    for rule in (largest, distinctive):
        values, columns = rule(embedding_terms(TABLE, torch.tensor([1]), ITEMS), top=2)
        assert columns.tolist() == [[0], [0]] and values.shape == (2, 1)


def test_distinctive_names_what_sets_each_item_apart():
    # Terms by hand (item 3, item 4): row 0: 1, -1/3; row 1: 1/3, 2/3; row 2: 5/3, 1.
    # Mean term per history row over the two items: 1/3, 1/2, 4/3. Item 3 stands out on row 0
    # (+2/3), item 4 on row 1 (+1/6): the largest rule named row 2 for both.
    values, columns = distinctive(embedding_terms(TABLE, HISTORY, ITEMS), top=1)

    assert HISTORY[columns].tolist() == [[0], [1]]
    assert torch.allclose(values, torch.tensor([[1.0], [2 / 3]]))  # the terms themselves


def test_distinctive_never_names_a_term_that_pulls_the_score_down():
    # Item 4's term for row 0 is -1/3, far below its mean (1/3) but also far from "standing
    # out": a negative term goes last, whatever its distance from the mean.
    terms = embedding_terms(TABLE, HISTORY, ITEMS)
    values, columns = distinctive(terms, top=3)
    assert HISTORY[columns[1]].tolist()[-1] == 0 and values[1, -1] < 0
    assert (values[:, :2] > 0).all()


def _rank(scores: torch.Tensor, item: int) -> int:
    return int((scores > scores[item]).sum())


def test_removing_the_named_movie_lowers_the_items_rank_more_than_removing_any_other():
    """The deletion property, on a model where the answer is known. History: four movies, one
    per axis of a 4-d space, and a fifth close to all of them. Twelve candidates share a common
    part and lean towards one axis each, a little less every one. The fifth history movie has
    the largest term of every candidate's score, yet removing it moves every score alike and
    no rank; removing a candidate's own axis drops it below the others. That axis is the
    reason: `distinctive` and `counterfactual` name it, `largest` names the fifth."""
    axes = torch.eye(4)
    candidates = torch.stack([0.5 + (1.0 - 0.01 * j) * axes[j % 4] for j in range(12)])
    table = torch.cat([axes, 0.8 * torch.ones(1, 4), candidates])
    history, page = [0, 1, 2, 3, 4], list(range(5, 13))  # the top 8 of the 12
    checkpoint = _checkpoint("lightgcn", table)

    def rank(history: list[int], item: int) -> int:
        scores = score_history(checkpoint, history)
        scores[:5] = float("-inf")  # the visitor's own movies are never listed
        return int((scores > scores[item]).sum())

    assert [rank(history, item) for item in page] == list(range(8))
    _, largest_rows = explain_history(checkpoint, history, page, top=1, rule="largest")
    assert largest_rows[:, 0].tolist() == [4] * 8
    for rule in ("distinctive", "counterfactual"):
        values, rows = explain_history(checkpoint, history, page, top=1, rule=rule)
        assert rows[:, 0].tolist() == [(item - 5) % 4 for item in page] and (values > 0).all()
    for item, named in zip(page, rows[:, 0].tolist(), strict=True):
        drops = {removed: rank([h for h in history if h != removed], item) - rank(history, item)
                 for removed in history}
        assert drops[4] == 0
        assert drops[named] > max(drop for removed, drop in drops.items() if removed != named), drops


@pytest.mark.parametrize("model_name", ["lightgcn", "pinsage"])
def test_removal_ranks_are_the_ranks_served_without_each_history_movie(model_name):
    """Against every unseen movie (rivals: all of them), each item's rank with one history
    movie removed is the rank `score_history` gives that shorter history: the mean's rescaling
    and PinSage's item bias included."""
    table = torch.randn(40, 6, generator=torch.Generator().manual_seed(1))
    checkpoint = _checkpoint(model_name, table)
    history, items = [3, 7, 11, 19, 26, 33], [0, 5, 12, 21]

    terms, ranks = removal_ranks(checkpoint, history, items, rivals=40)

    assert terms.shape == ranks.shape == (4, 6)
    for j, removed in enumerate(history):
        scores = score_history(checkpoint, [h for h in history if h != removed])
        scores[history] = float("-inf")
        assert ranks[:, j].tolist() == [_rank(scores, item) for item in items]


def test_counterfactual_names_the_positive_term_whose_removal_drops_the_item_furthest():
    terms = torch.tensor([[0.5, 0.4, -0.2, 0.1], [0.3, 0.3, 0.3, 0.3]])
    ranks = torch.tensor([[2, 6, 9, 6], [1, 1, 1, 1]])
    values, columns = counterfactual(terms, ranks, top=2)
    # Item 0: the negative term (rank 9) is never a reason; of the two that drop it to 6, the
    # one standing out more from its mean term (column 1: +0.05 against column 3's -0.1).
    assert columns[0].tolist() == [1, 3] and values[0].tolist() == pytest.approx([0.4, 0.1])
    # Item 1: no removal moves it; the terms that stand out most (columns 2 and 3) are named.
    assert sorted(columns[1].tolist()) == [2, 3]


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
