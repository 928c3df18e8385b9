"""Tiny training runs of every model, publishing, loading and evaluating the checkpoint."""

import json

import numpy as np
import pytest
import torch

from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.evaluation.metrics import ranking_metrics
from pytorch_models.serving.fold_in import score_history
from pytorch_models.serving.scoring import checkpoint_scorer
from pytorch_models.train import _options, _parser
from pytorch_models.training.loops import CosineDecay
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model


@pytest.mark.parametrize("name", ["popular", "lightgcn", "ngcf", "pinsage"])
def test_train_publish_load(tmp_path, communities, community_features, name):
    result = train_model(name, communities, community_features,
                         TrainOptions(epochs=2, batch_size=64, dim=8, progress=False, num_workers=0))
    assert set(result.metrics) >= {"recall@20", "ndcg@20", "precision@20", "hit@20", "mrr@20"}
    assert all(0 <= v <= 1 for k, v in result.metrics.items() if "@" in k)
    assert result.item_embeddings.shape[0] == communities.n_items
    folder = publish(result, communities, tmp_path / name, item_features=community_features,
                     dataset={"dataset": "tiny"})
    assert {p.name for p in folder.iterdir()} == {
        "weights.safetensors", "item_embeddings.safetensors", "graph.safetensors", "meta.json"
    }
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["model"] == name and meta["data"]["split"] == {"test_fraction": 0.2, "seed": 0}
    checkpoint = load_checkpoint(folder)
    assert np.array_equal(checkpoint.item_ids, communities.item_ids)
    snapshot = checkpoint.graph()
    assert np.array_equal(snapshot.train_edges, communities.train)
    assert snapshot.item_features.genres.shape == community_features.genres.shape
    assert torch.equal(snapshot.item_features.tags, community_features.tags)
    scorer = checkpoint_scorer(checkpoint, communities.train, communities.n_users)
    again = ranking_metrics(scorer, communities.train, communities.test, communities.n_users,
                            communities.n_items)
    assert again["recall@20"] == pytest.approx(result.metrics["recall@20"], abs=1e-6)
    scores = score_history(checkpoint, [0, 1])
    assert scores.shape == (communities.n_items,) and torch.isfinite(scores).all()



def test_pinsage_trains_from_a_cached_neighbour_table_with_shared_negatives(communities, community_features):
    result = train_model("pinsage", communities, community_features,
                         TrainOptions(epochs=2, batch_size=64, dim=8, progress=False, num_workers=0,
                                      neighbourhoods="cached", shared_negatives=4))
    assert result.hyper["neighbourhoods"] == "cached" and result.hyper["shared_negatives"] == 4
    assert len(result.losses) == 2 and result.losses[-1] < result.losses[0]
    assert 0 <= result.metrics["recall@20"] <= 1


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
def test_bpr_models_train_on_the_hardest_of_several_negative_candidates(communities, name):
    common = dict(epochs=3, batch_size=64, dim=8, progress=False, k=5)
    result = train_model(name, communities, options=TrainOptions(**common, negative_candidates=4))
    popular = train_model("popular", communities, options=TrainOptions(**common))
    assert result.hyper["negative_candidates"] == 4
    assert result.losses[-1] < result.losses[0]
    assert result.metrics["recall@5"] > popular.metrics["recall@5"]


def test_the_command_line_offers_negative_candidates_to_the_bpr_models_only():
    parser = _parser()
    base = ["--dataset", "movielens", "--data-dir", "x", "--negative-candidates"]
    assert _options(parser.parse_args([*base, "8", "--model", "ngcf"]), parser).negative_candidates == 8
    for bad in (["8", "--model", "pinsage"], ["0", "--model", "lightgcn"]):
        with pytest.raises(SystemExit):
            _options(parser.parse_args([*base, *bad]), parser)


def test_cosine_decay_goes_from_lr_to_five_percent_over_the_epochs():
    optimiser = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.01)
    schedule = CosineDecay(optimiser, 0.01, epochs=2, time_budget_s=None)
    seen = []
    for epoch, batch in [(0, 0), (1, 0), (1, 10)]:
        schedule.step(epoch, batch, 10)
        seen.append(optimiser.param_groups[0]["lr"])
    assert seen == pytest.approx([0.01, 0.01 * (0.05 + 0.95 * 0.5), 0.0005])


def test_the_history_holds_each_epochs_loss_and_held_out_recall(tmp_path, communities, community_features):
    result = train_model("lightgcn", communities, community_features,
                         TrainOptions(epochs=3, batch_size=64, dim=8, progress=False, eval_every=1))

    assert [entry["epoch"] for entry in result.history] == [1, 2, 3]
    assert [entry["loss"] for entry in result.history] == result.losses
    assert all(0 <= entry["recall@20"] <= 1 and entry["seconds"] > 0 and entry["eval_seconds"] > 0
               for entry in result.history)
    # The last epoch's evaluation sees the model the final one does.
    assert result.history[-1]["recall@20"] == pytest.approx(result.metrics["recall@20"])
    meta = json.loads((publish(result, communities, tmp_path / "lightgcn") / "meta.json").read_text())
    assert meta["history"] == result.history
    assert meta["timings"]["eval_seconds"] == pytest.approx(sum(e["eval_seconds"] for e in result.history))


def test_epochs_not_evaluated_have_no_recall(communities, community_features):
    every_second = train_model("ngcf", communities, community_features,
                               TrainOptions(epochs=3, batch_size=64, dim=8, progress=False, eval_every=2))
    never = train_model("ngcf", communities, community_features,
                        TrainOptions(epochs=2, batch_size=64, dim=8, progress=False))

    assert [entry["recall@20"] is None for entry in every_second.history] == [True, False, True]
    assert [entry["recall@20"] for entry in never.history] == [None, None]
    assert all(entry["eval_seconds"] == 0 for entry in never.history)


# Chosen on this split (seed 0, batch 64, dim 8, under a second each): recall@5 is 0.52,
# 0.50 and 0.63 (0.44 at worst over seeds 0-5). For scale: popular 0.12 (its top items mix
# both communities, so it is worse than chance here), a random ranking 0.21 on average,
# ranking each user's own community first 0.62. Beating popular alone is therefore a weak
# bar, and the floor of 0.4 is what fails a loss of the wrong sign: trained on one, the
# models reach 0.26 (LightGCN), 0.16 (NGCF) and 0.23 (PinSage), all above popular.
# From random numbers: the spectral start alone already ranks well here (test_spectral_init).
SHORT_RUNS = {"lightgcn": {"epochs": 20, "lr": 0.05, "init": "random"},
              "ngcf": {"epochs": 10, "lr": 0.01, "init": "random"},
              "pinsage": {"epochs": 5, "lr": 0.01, "init": "random"}}


@pytest.mark.parametrize("name", sorted(SHORT_RUNS))
def test_a_short_run_lowers_the_loss_and_beats_popular(communities, community_features, name):
    common = dict(batch_size=64, dim=8, progress=False, num_workers=0, k=5)
    popular = train_model("popular", communities, community_features, TrainOptions(**common))
    result = train_model(name, communities, community_features, TrainOptions(**SHORT_RUNS[name], **common))

    # The per-epoch losses are means over a few sampled batches and wobble: compare the last
    # three epochs' mean with the first epoch.
    assert np.mean(result.losses[-3:]) < 0.95 * result.losses[0]
    assert result.metrics["recall@5"] > max(0.4, popular.metrics["recall@5"] + 0.25)
    assert result.metrics["ndcg@5"] > popular.metrics["ndcg@5"]
