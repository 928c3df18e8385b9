"""Sampled training of LightGCN and NGCF (`training.propagation`) end to end: the same run as
full propagation when every neighbour is kept, a run that learns with a small fan-out, the
"auto" choice, the command line's flags and what meta.json records."""

import json

import numpy as np
import pytest
import torch

from pytorch_models.models.architectures import build_model
from pytorch_models.models.blocks import batch_seeds
from pytorch_models.train import _options, _parser
from pytorch_models.training.bpr_sampler import PositiveSet, bpr_batches, prepared_batches
from pytorch_models.training.options import AUTO_SAMPLED_ABOVE, TrainOptions, parse_fanout
from pytorch_models.training.propagation import SampledPropagation
from pytorch_models.training.train_model import publish, train_model

# In-process sampling: the "same negatives" below need one generator drawing in one order.
COMMON = dict(batch_size=64, dim=8, progress=False, k=5, init="random", num_workers=0)
# No dropout: NGCF's masks are drawn over the whole graph's rows in one mode and the blocks'
# in the other, so with dropout the two runs see different noise.
NO_DROPOUT = {"lightgcn": {}, "ngcf": {"node_dropout": 0.0, "message_dropout": 0.0}}


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
def test_sampled_training_with_every_neighbour_is_full_training(communities, name):
    """Same batches, same negatives, same maths: the losses, the published tables and the
    held-out metrics agree to float precision (layer-wise inference gives the tables)."""
    options = dict(**COMMON, epochs=2, lr=0.01, config_overrides=NO_DROPOUT[name])
    full = train_model(name, communities, options=TrainOptions(**options, propagation="full"))
    sampled = train_model(name, communities, options=TrainOptions(**options, propagation="sampled",
                                                                  fanout="all"))

    assert (full.hyper["propagation"], sampled.hyper["propagation"]) == ("full", "sampled")
    assert sampled.losses == pytest.approx(full.losses, rel=1e-5)
    assert full.losses[1] != pytest.approx(full.losses[0], rel=1e-3)  # it did train
    assert torch.allclose(sampled.item_embeddings, full.item_embeddings, atol=1e-5)
    assert torch.allclose(sampled.extra_tensors["item_layers"], full.extra_tensors["item_layers"], atol=1e-5)
    assert torch.equal(sampled.extra_tensors["item_degree"], full.extra_tensors["item_degree"])
    assert sampled.metrics == pytest.approx(full.metrics, abs=1e-6)


# With fan-out 2 (of the 5-7 neighbours users have here), 8 epochs, seeds 0-2: the last three
# epochs' mean loss is 0.34-0.48 of the first epoch's (LightGCN) and 0.42-0.62 (NGCF); recall@5
# 0.52-0.54 and 0.57-0.62, against popular's 0.12 and full propagation's ~0.52 (test_train).
SAMPLED_RUNS = {"lightgcn": {"epochs": 8, "lr": 0.05}, "ngcf": {"epochs": 8, "lr": 0.01}}


@pytest.mark.parametrize("name", sorted(SAMPLED_RUNS))
def test_a_short_sampled_run_with_a_small_fanout_lowers_the_loss_and_beats_popular(communities, name):
    popular = train_model("popular", communities, options=TrainOptions(**COMMON))
    result = train_model(name, communities, options=TrainOptions(**COMMON, **SAMPLED_RUNS[name],
                                                                 propagation="sampled", fanout="2"))

    assert result.hyper["fanout"] == "2,2,2"
    assert np.mean(result.losses[-3:]) < 0.8 * result.losses[0]
    assert result.metrics["recall@5"] > max(0.4, popular.metrics["recall@5"] + 0.25)


def test_auto_propagates_the_full_graph_up_to_the_threshold_and_samples_above_it():
    options = TrainOptions().for_model("lightgcn")
    at = options.with_propagation(AUTO_SAMPLED_ABOVE)
    above = options.with_propagation(AUTO_SAMPLED_ABOVE + 1)
    assert (at.propagation, at.fanout) == ("full", None)
    assert (above.propagation, above.fanout) == ("sampled", "10,10,10")
    # An explicit mode is kept whatever the size.
    assert TrainOptions(propagation="sampled").for_model("ngcf").with_propagation(10).propagation == "sampled"
    assert TrainOptions(propagation="full").for_model("ngcf").with_propagation(10**9).propagation == "full"
    with pytest.raises(ValueError, match="propagation"):
        TrainOptions(propagation="partial").for_model("ngcf").with_propagation(10)


def test_fanouts_are_one_count_per_layer_input_layer_first_or_all():
    assert parse_fanout("10,5,2", 3) == [10, 5, 2]
    assert parse_fanout("4", 2) == [4, 4]
    assert parse_fanout("all", 3) is None
    for bad in ("10,5", "0", "ten", "3,-1,2"):
        with pytest.raises(ValueError, match="fan-out"):
            parse_fanout(bad, 3)


@pytest.mark.parametrize("propagation,fanout,recorded", [("auto", None, ("full", None)),
                                                         ("sampled", "3,2,1", ("sampled", "3,2,1"))])
def test_meta_json_records_the_propagation_and_fanout_that_trained(tmp_path, communities, propagation, fanout,
                                                                   recorded):
    result = train_model("lightgcn", communities,
                         options=TrainOptions(**COMMON, epochs=1, propagation=propagation, fanout=fanout))
    meta = json.loads((publish(result, communities, tmp_path / "v") / "meta.json").read_text())
    assert (meta["hyper"]["propagation"], meta["hyper"]["fanout"]) == recorded


def test_the_command_line_offers_propagation_and_fanout_to_the_bpr_models_only():
    parser = _parser()
    base = ["--dataset", "movielens", "--data-dir", "x"]
    options = _options(parser.parse_args([*base, "--model", "ngcf", "--propagation", "sampled",
                                          "--fanout", "10,5,5"]), parser)
    assert (options.propagation, options.fanout) == ("sampled", "10,5,5")
    assert _options(parser.parse_args([*base, "--model", "lightgcn"]), parser).propagation == "auto"
    for bad in (["--model", "pinsage", "--propagation", "full"], ["--model", "popular", "--fanout", "5"],
                ["--model", "lightgcn", "--fanout", "10,10"], ["--model", "ngcf", "--fanout", "many"]):
        with pytest.raises(SystemExit):
            _options(parser.parse_args([*base, *bad]), parser)


def test_sampling_workers_make_the_epochs_batches_in_order_while_the_model_trains(communities):
    """Two DataLoader workers make the epoch's batches (users, positives, negatives, blocks) in
    the order one process would shuffle them, with negatives the users never had and blocks
    for each batch's own seeds; a run with a worker learns."""
    pairs, n_users = torch.from_numpy(communities.train), communities.n_users
    positives = PositiveSet(communities.train, communities.n_items)
    model = build_model("lightgcn", {"n_users": n_users, "n_items": communities.n_items, "dim": 8,
                                     "layers": 2})
    propagation = SampledPropagation(model, communities, [2, 2], torch.Generator())
    order = torch.Generator().manual_seed(5)
    inline = list(bpr_batches(pairs, positives, 16, torch.Generator(), order_generator=order))
    made = list(prepared_batches(pairs, positives, 16, 1, order_seed=5, seed=1, prepare=propagation.prepare,
                                 num_workers=2))
    assert len(made) == len(inline) == -(-len(pairs) // 16)
    for (users, pos, neg, blocks), (users_inline, pos_inline, _) in zip(made, inline, strict=True):
        assert torch.equal(users, users_inline) and torch.equal(pos, pos_inline)
        assert not positives.contains(users, neg).any()
        assert torch.equal(blocks[-1].dst_nodes, batch_seeds(users, pos, neg, n_users))

    result = train_model("lightgcn", communities, options=TrainOptions(
        **{**COMMON, "num_workers": 1}, epochs=4, lr=0.01, propagation="sampled", fanout="2"))
    assert result.losses[-1] < 0.9 * result.losses[0]
