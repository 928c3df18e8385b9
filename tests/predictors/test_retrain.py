"""The scheduled retrain's training data: every visitor a user, all of its clicks training;
and its budget: the pairs new since the live version plus a replay sample, its seconds, what
meta.json says of both."""

import dataclasses
import hashlib
import math

import numpy as np
import pytest

from predictors import registry
from predictors.retrain import RetrainBudget, WarmPlan, visitors_as_users, warm_plan
from predictors.training import data_digest, ratings_digest, training_dataset
from predictors.versions import RETRAIN_EPOCHS, SAMPLED_RETRAIN_LR, version_make
from predictors.visitor_digest import visitor_digest
from pytorch_models.data.sequences import user_sequences
from pytorch_models.training.options import DEFAULTS
from tests.predictors.tiny_catalogue import MOVIES, RATINGS, TINY_CATALOGUE


def test_visitors_are_users_after_the_rating_users_and_hold_nothing_out():
    clicked = [3, 4, 5, 6, 7]

    interactions, _, visitors = visitors_as_users(TINY_CATALOGUE, [("v:a", m) for m in clicked])

    (row,) = visitors.values()
    assert interactions.user_ids[row] == 31  # the rating users are 1 to 30
    visitor_movies = interactions.item_ids[interactions.train[interactions.train[:, 0] == row, 1]]
    assert sorted(visitor_movies.tolist()) == clicked
    # The held-out ratings are those of the ratings alone: every version is measured on them.
    ratings_alone, _ = training_dataset(TINY_CATALOGUE)
    assert np.array_equal(interactions.test, ratings_alone.test) and len(interactions.test) > 0


def test_a_visitors_dismissals_are_its_negatives_never_its_training_pairs():
    interactions, _, visitors = visitors_as_users(TINY_CATALOGUE, [("v:a", 3), ("v:a", 4)],
                                                  dismissals=[("v:a", 50), ("v:gone", 51), ("v:a", 999_999)])

    (row,) = visitors.values()
    assert [tuple(pair) for pair in interactions.negatives.tolist()] == [(row, int(np.flatnonzero(
        interactions.item_ids == 50)[0]))]  # a visitor with no clicks is no user; an unknown movie is no row
    visitor_movies = interactions.item_ids[interactions.train[interactions.train[:, 0] == row, 1]]
    assert sorted(visitor_movies.tolist()) == [3, 4]
    clicks = [("v:a", 3)]
    assert data_digest(TINY_CATALOGUE, clicks, [("v:a", 50)]) != data_digest(TINY_CATALOGUE, clicks)


def test_by_time_a_visitors_clicks_follow_the_ratings_in_the_order_they_came():
    """For SASRec: the ratings held out by time as without visitors; each visitor's pairs (newest
    first, as `visitor_interactions` gives them) all train, dated after every rating, oldest first."""
    stamped = dataclasses.replace(TINY_CATALOGUE, stamps=[1000 + 7 * i for i in range(len(RATINGS))])
    clicks = [("v:a", 7), ("v:b", 50), ("v:a", 3), ("v:a", 5)]  # v:a clicked 5, then 3, then 7

    interactions, _, visitors = visitors_as_users(stamped, clicks, by_time=True)

    ratings_alone, _ = training_dataset(stamped, by_time=True)
    assert np.array_equal(interactions.test, ratings_alone.test) and len(interactions.test) > 0
    row = visitors[visitor_digest("v:a")]
    sequence = user_sequences(interactions.train, interactions.train_stamps, interactions.n_users)[row]
    assert interactions.item_ids[sequence].tolist() == [5, 3, 7]
    assert interactions.train_stamps[interactions.train[:, 0] == row].min() > max(stamped.stamps)
    with pytest.raises(ValueError, match="time"):
        visitors_as_users(TINY_CATALOGUE, clicks, by_time=True)


# --- the budgeted retrain ----------------------------------------------------------------


@pytest.fixture
def versions_dir(settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    return tmp_path


def test_a_budgeted_retrain_steps_over_the_new_pairs_and_a_replay_sample_and_says_so(versions_dir):
    """A budget of 0 s: one batch (the new pairs and the sample fit in one), no second epoch,
    then the evaluation and the gate as ever."""
    live = version_make(model="lightgcn", training_data=TINY_CATALOGUE, epochs=1)
    clicks = [("v:a", 3), ("v:a", 4), ("v:a", 50)]
    budget = RetrainBudget(seconds=0, replay_fraction=0.1, replay_max=1000, threads=1)

    made = version_make(model="lightgcn", training_data=TINY_CATALOGUE, visitor_pairs=clicks, warm_start=True,
                        gated=True, budget=budget)

    assert made.published, made.reason
    meta = registry.version_meta("lightgcn", made.version)
    n_old = registry.version_meta("lightgcn", live.version)["data"]["n_train"]
    assert meta["warm_start"] == live.version
    assert meta["data"]["replay"] == {"new": 3, "replayed": math.ceil(0.1 * n_old), "old": n_old,
                                      "fraction": 0.1, "max": 1000,
                                      "seed": int(data_digest(TINY_CATALOGUE, clicks)[:8], 16)}
    assert meta["budget"] == {"seconds": 0, "hit": True, "trained_seconds": meta["budget"]["trained_seconds"],
                              "epochs": 1, "batches": 1}
    assert meta["metrics"]["recall@20"] == made.recall
    assert meta["hyper"]["epochs"] == RETRAIN_EPOCHS["lightgcn"]  # the epochs it was allowed


@pytest.mark.parametrize("replay_fraction, lr", [(0.1, SAMPLED_RETRAIN_LR["ngcf"]),
                                                 (1.0, DEFAULTS["ngcf"]["lr"])])
def test_ngcf_retrains_at_its_sampled_rate_over_a_small_share(versions_dir, replay_fraction, lr):
    """Stepping over 10% of the old pairs is a sample (below SAMPLED_BELOW): NGCF takes its
    sampled_retrain_lr; over all of them, its own rate. What was used is in meta.json."""
    version_make(model="ngcf", training_data=TINY_CATALOGUE, epochs=1)
    budget = RetrainBudget(seconds=0, replay_fraction=replay_fraction, replay_max=10**6, threads=1)

    made = version_make(model="ngcf", training_data=TINY_CATALOGUE, visitor_pairs=[("v:a", 3)],
                        warm_start=True, budget=budget)

    assert made.published, made.reason
    assert registry.version_meta("ngcf", made.version)["hyper"]["lr"] == lr
    assert SAMPLED_RETRAIN_LR["ngcf"] < DEFAULTS["ngcf"]["lr"]


def test_the_new_pairs_are_those_the_live_version_did_not_train_on(versions_dir):
    version_make(model="lightgcn", training_data=TINY_CATALOGUE, visitor_pairs=[("v:a", 3)], epochs=0)
    interactions, _, visitors = visitors_as_users(TINY_CATALOGUE, [("v:a", 3), ("v:a", 4), ("v:b", 5)])
    budget = RetrainBudget(seconds=None, replay_fraction=1.0, replay_max=2, threads=1)

    live = registry.published("lightgcn")
    plan = warm_plan("lightgcn", live, interactions, visitors, budget=budget, seed=0)

    movie_row = interactions.item_ids.tolist().index
    new = {(visitors[visitor_digest("v:a")], movie_row(4)), (visitors[visitor_digest("v:b")], movie_row(5))}
    batch = {tuple(pair) for pair in plan.batch_pairs.tolist()}
    assert new <= batch and len(batch) == 2 + 2  # both new pairs, and the replay ceiling of old ones
    assert plan.initialise is not None and plan.replay["new"] == 2


def test_the_graph_filters_svd_starts_from_the_live_versions_vectors_by_movie(versions_dir):
    """Nothing to carry and so nothing to replay against (every pair), but its SVD starts from
    the live singular vectors, a row per movie id; a movie new to the catalogue starts at 0."""
    version_make(model="graphfilter", training_data=TINY_CATALOGUE)
    live = registry.published("graphfilter")
    grown = dataclasses.replace(TINY_CATALOGUE, movie_ids=[61, *MOVIES],
                                titles=["new", *TINY_CATALOGUE.titles],
                                genres=[[], *TINY_CATALOGUE.genres],
                                years=[None, *TINY_CATALOGUE.years])
    interactions, _ = training_dataset(grown)
    budget = RetrainBudget(seconds=None, replay_fraction=1.0, replay_max=2, threads=1)

    plan = warm_plan("graphfilter", live, interactions, None, budget=budget, seed=0)

    vectors = live.checkpoint.extra["spectral_vectors"]
    assert plan.initialise is None and plan.batch_pairs is None and plan.warm
    assert np.array_equal(plan.singular_start[1:], vectors.numpy()) and not plan.singular_start[0].any()
    assert warm_plan("graphfilter", None, interactions, None, budget=budget, seed=0) == WarmPlan()
    made = version_make(model="graphfilter", training_data=TINY_CATALOGUE, visitor_pairs=[("v:a", 3)],
                        warm_start=True)
    assert registry.published("graphfilter").checkpoint.meta["warm_start"] == live.version and made.published


def test_the_budget_comes_from_the_settings(settings):
    settings.RETRAIN_BUDGET_S, settings.RETRAIN_REPLAY_FRACTION = 0, 0.5
    settings.RETRAIN_REPLAY_MAX, settings.RETRAIN_THREADS = 10, 2
    budget = RetrainBudget.from_settings()
    assert budget == RetrainBudget(seconds=None, replay_fraction=0.5, replay_max=10, threads=2)  # 0: no limit
    assert budget.sampling_workers == 1
    assert RetrainBudget(seconds=60, replay_fraction=0.5, replay_max=10, threads=1).sampling_workers == 0


def test_a_retrains_models_share_one_split_and_one_digest_of_the_snapshot():
    """Six models, one snapshot: the split with the visitors and the digests are computed once
    for the same visitor pairs (at 25M ratings 25-50 s each, once per model before), again for
    other pairs, and the digest of the ratings is the one np.unique's rows gave."""
    snapshot = dataclasses.replace(TINY_CATALOGUE)
    clicks, dismissed = [("v:a", 3), ("v:a", 4)], [("v:a", 50)]

    first = visitors_as_users(snapshot, clicks, dismissed)
    assert visitors_as_users(snapshot, clicks, dismissed)[0] is first[0]
    assert visitors_as_users(snapshot, list(clicks), dismissed)[0] is not first[0]  # other pairs
    again = data_digest(TINY_CATALOGUE, list(clicks), list(dismissed))
    assert data_digest(snapshot, clicks, dismissed) == again
    digest = hashlib.sha256(np.asarray(MOVIES, dtype=np.int64).tobytes())
    digest.update(np.unique(np.asarray(RATINGS), axis=0).tobytes())
    assert ratings_digest(snapshot) == digest.hexdigest()
