"""The time budget and the batch pairs of the epoch loops: a spent budget stops a run at the
next batch boundary (after at least one step) for every model trained in batches, and the run
is still evaluated and published with what the budget did; batches can be drawn from a subset
of the train pairs while the graph stays whole."""

import json
import math
import time

import numpy as np
import pytest
import torch

from pytorch_models.training.loops import CosineDecay, EpochRun, batch_loop, epochs_run
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model

TINY = dict(batch_size=8, dim=8, progress=False, num_workers=0)


def _step_counter():
    """(an optimiser over one weight, a loss_of that counts the batches it is given)."""
    weight = torch.nn.Parameter(torch.ones(1))
    seen = []

    def loss_of(batch):
        seen.append(batch)
        return (weight * batch).sum()

    return torch.optim.SGD([weight], lr=0.1), loss_of, seen


def test_the_batch_loop_stops_after_the_step_that_passes_the_deadline():
    optimiser, loss_of, seen = _step_counter()
    batches = [torch.tensor(float(i)) for i in range(5)]

    cut = batch_loop(batches, loss_of, optimiser, None, epoch=0, n_batches=5, progress=False, desc="",
                     deadline=time.monotonic() - 1)
    assert (cut.batches, cut.cut, len(seen)) == (1, True, 1)  # already spent: one step, no more

    whole = batch_loop(batches, loss_of, optimiser, None, epoch=0, n_batches=5, progress=False, desc="",
                       deadline=time.monotonic() + 3600)
    # The weight starts at 1 (batch 0's gradient is 0) and loses 0.1 x the batch after each step:
    # losses 0, 1, 2 x 0.9, 3 x 0.7, 4 x 0.4.
    assert (whole.batches, whole.cut) == (5, False) and whole.loss == pytest.approx((1 + 1.8 + 2.1 + 1.6) / 5)


def test_the_epoch_loop_starts_no_epoch_past_the_deadline_and_evaluates_none_after_it():
    evaluations, epochs = [], []

    def run_epoch(epoch):
        epochs.append(epoch)
        return EpochRun(loss=1.0, batches=4, cut=False)

    options = TrainOptions(epochs=5, eval_every=1, deadline=time.monotonic() - 1, time_budget_s=0)
    history = epochs_run(run_epoch, lambda: evaluations.append(1) or {"recall@20": 0.5}, options)

    assert epochs == [0] and evaluations == []  # the final evaluation (train_model's) follows
    assert history == [{"epoch": 1, "loss": 1.0, "batches": 4, "seconds": history[0]["seconds"],
                        "recall@20": None, "eval_seconds": 0.0, "budget_spent": True}]
    unbudgeted = epochs_run(run_epoch, lambda: {"recall@20": 0.5}, TrainOptions(epochs=2, eval_every=1))
    assert [e["recall@20"] for e in unbudgeted] == [0.5, 0.5] and "budget_spent" not in unbudgeted[-1]


@pytest.mark.parametrize("name", ["lightgcn", "ngcf", "pinsage"])
def test_a_spent_budget_trains_one_batch_then_evaluates_and_publishes(tmp_path, communities,
                                                                      community_features, name):
    result = train_model(name, communities, community_features,
                         TrainOptions(epochs=3, eval_every=1, time_budget_s=0, **TINY))

    assert math.ceil(len(communities.train) / 8) > 1  # there were batches left to cut
    assert [(e["epoch"], e["batches"], e.get("budget_spent")) for e in result.history] == [(1, 1, True)]
    assert 0 <= result.metrics["recall@20"] <= 1  # evaluated after the cut
    assert result.budget == {"seconds": 0, "hit": True, "trained_seconds": result.budget["trained_seconds"],
                             "epochs": 1, "batches": 1}
    meta = json.loads((publish(result, communities, tmp_path / name) / "meta.json").read_text())
    assert meta["budget"] == result.budget and meta["metrics"] == result.metrics


def test_an_ample_budget_is_not_hit_and_a_closed_form_model_is_never_budgeted(communities):
    ample = train_model("lightgcn", communities, options=TrainOptions(epochs=2, time_budget_s=3600, **TINY))
    popular = train_model("popular", communities, options=TrainOptions(time_budget_s=0, **TINY))

    batches = math.ceil(len(communities.train) / 8)
    assert (ample.budget["hit"], ample.budget["epochs"], ample.budget["batches"]) == (False, 2, 2 * batches)
    assert (popular.budget["seconds"], popular.budget["hit"], popular.budget["batches"]) == (None, False, 0)


def test_cosine_decay_follows_the_budget_or_the_epochs_whichever_is_further_along():
    optimiser = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    spent = CosineDecay(optimiser, 0.01, epochs=10, time_budget_s=100, deadline=time.monotonic() - 1)
    spent.step(0, 0, 10)
    assert optimiser.param_groups[0]["lr"] == pytest.approx(0.0005)  # the budget is over: the floor
    fresh = CosineDecay(optimiser, 0.01, epochs=2, time_budget_s=3600, deadline=time.monotonic() + 3600)
    fresh.step(1, 0, 10)  # half the epochs, ~0 of the budget
    assert optimiser.param_groups[0]["lr"] == pytest.approx(0.01 * (0.05 + 0.95 * 0.5), rel=1e-3)


@pytest.mark.parametrize("name", ["lightgcn", "pinsage"])
def test_batches_come_from_the_batch_pairs_and_a_held_out_pair_is_refused(communities, community_features,
                                                                          name):
    some = communities.train[::4]
    result = train_model(name, communities, community_features, TrainOptions(epochs=2, **TINY),
                         batch_pairs=some)

    assert [e["batches"] for e in result.history] == [math.ceil(len(some) / 8)] * 2
    assert result.item_embeddings.shape[0] == communities.n_items  # the graph is the whole split
    with pytest.raises(ValueError, match="held-out pair"):
        train_model(name, communities, community_features, TrainOptions(epochs=1, **TINY),
                    batch_pairs=np.concatenate([some, communities.test[:1]]))
