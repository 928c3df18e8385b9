"""The site's training data: what every version trains on, its held-out split, its digests,
and the metrics of a version on it.

The site's models train on an 80/20 per-user split of the imported ratings (seeded; SASRec's,
which reads each user's ratings in order, holds out each user's latest fifth by time), so
every published version carries metrics measured on ratings it never saw, and
`manage.py evaluate` can recompute them on the same split (`live_version_metrics`). Versions
are made from it by `predictors.versions.version_make`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from predictors import registry
from pytorch_models.data.interactions import (
    Interactions,
    ItemFeatures,
    interactions_from_pairs,
    movielens_item_features,
    unique_pairs,
)
from pytorch_models.data.sequences import interactions_by_time
from pytorch_models.evaluation.checkpoint_metrics import checkpoint_metrics
from pytorch_models.evaluation.metrics import ranking_metrics
from pytorch_models.models.names import SEQUENCE_MODELS
from pytorch_models.serving.scoring import checkpoint_scorer

TEST_FRACTION = 0.2
SEED = 0


@dataclass(frozen=True)
class TrainingData:
    """What the models train on: every movie with its features (one entry per movie), and the
    rating pairs (user, movie id), a list of pairs or an (E, 2) int64 array (the snapshot's).

    tags: each movie's normalised tags, most applied first; None when none were imported.
    stamps: when each pair was rated (integer seconds, one per pair), which the sequence models
    need (`names.SEQUENCE_MODELS`); None when the snapshot did not read them.

    What is derived from it (the pairs as an array, the digests, the splits) is computed once
    per instance and kept in `derived` while the instance lives: a retrain trains six models on
    one snapshot, and at 25M ratings each derivation took 25-50 s, once per model."""

    movie_ids: Sequence[int]
    titles: Sequence[str]
    genres: Sequence[Sequence[str]]
    years: Sequence[int | None]
    pairs: Sequence[tuple[int, int]] | np.ndarray
    tags: Sequence[Sequence[str]] | None = None
    stamps: Sequence[int] | np.ndarray | None = None
    derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def pair_array(self) -> np.ndarray:
        return self.kept("pairs", lambda: np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2))

    def kept(self, key, compute, inputs: tuple = ()):
        """`compute()`, once per key for this instance and these `inputs` (other objects it
        reads, compared by identity: a retrain passes the same visitor pairs to every model);
        other inputs replace the key's entry."""
        held = self.derived.get(key)
        same = held is not None and len(held[0]) == len(inputs) and all(
            a is b for a, b in zip(held[0], inputs, strict=True))
        if not same:
            held = self.derived[key] = (inputs, compute())
        return held[1]


def training_dataset(training_data: TrainingData, *, by_time: bool = False,
                     train_only: Sequence[int] = ()) -> tuple[Interactions, ItemFeatures]:
    """(the interactions split 80/20, the movies' features). by_time: hold out each user's
    latest fifth by `stamps` (ValueError without them), with `train_stamps`; else a seeded
    random fifth per user. train_only: user ids none of whose pairs is held out (the visitors
    of a retrain). Computed once per TrainingData and split (the callers never change it)."""
    if len(training_data.pairs) == 0:
        raise ValueError("there are no ratings to train on: import a MovieLens release first")
    return training_data.kept(("dataset", by_time, tuple(train_only)),
                              lambda: _training_dataset(training_data, by_time, train_only))


def _training_dataset(training_data: TrainingData, by_time: bool,
                      train_only: Sequence[int]) -> tuple[Interactions, ItemFeatures]:
    pairs = training_data.pair_array
    user_ids = np.unique(pairs[:, 0])
    if by_time:
        if training_data.stamps is None or len(training_data.stamps) != len(pairs):
            raise ValueError("a split by time needs each rating's time: a snapshot read with its stamps")
        interactions = interactions_by_time(user_ids, training_data.movie_ids, pairs, training_data.stamps,
                                            test_fraction=TEST_FRACTION, train_only=train_only)
    else:
        interactions = interactions_from_pairs(user_ids, training_data.movie_ids, pairs,
                                               test_fraction=TEST_FRACTION, seed=SEED)
        if len(train_only):  # the split of every other user is the one it would have been without them
            held = np.isin(interactions.test[:, 0], np.searchsorted(user_ids, np.asarray(train_only)))
            interactions.train = np.concatenate([interactions.train, interactions.test[held]])
            interactions.test = interactions.test[~held]
    features = movielens_item_features(
        training_data.titles, training_data.genres, training_data.years, training_data.tags
    )
    return interactions, features


def ratings_digest(training_data: TrainingData) -> str:
    """What fixes the held-out split (the movies and the rating pairs, in any order): two
    versions' held-out metrics compare when this is the same."""
    def compute() -> str:
        digest = hashlib.sha256(np.asarray(training_data.movie_ids, dtype=np.int64).tobytes())
        digest.update(unique_pairs(training_data.pair_array).tobytes())
        return digest.hexdigest()
    return training_data.kept("ratings_digest", compute)


def data_digest(training_data: TrainingData, visitor_pairs: Sequence[tuple[str, int]] = (),
                dismissals: Sequence[tuple[str, int]] = ()) -> str:
    """Everything a version trains on: the ratings, the movies' features, the visitors'
    (visitor, movie) pairs and their dismissals, each in any order. Equal digests: a retrain
    would learn nothing new."""
    def compute() -> str:
        digest = hashlib.sha256(ratings_digest(training_data).encode())
        features = [training_data.titles, training_data.genres, training_data.years, training_data.tags]
        digest.update(json.dumps(features, default=list).encode())
        digest.update(json.dumps(sorted((str(v), int(m)) for v, m in visitor_pairs)).encode())
        if dismissals:  # absent, the digest of a version made before dismissals existed
            digest.update(json.dumps(sorted((str(v), int(m)) for v, m in dismissals)).encode())
        return digest.hexdigest()
    return training_data.kept("data_digest", compute, (visitor_pairs, dismissals))


def live_version_metrics(*, model: str, training_data: TrainingData, k: int = 20) -> dict:
    """Full-ranking metrics of the live version on the held-out part of the site's split."""
    published = registry.published(model)
    if published is None:
        raise LookupError(f"{model} has no published version yet: train it first")
    interactions, _ = training_dataset(training_data, by_time=model in SEQUENCE_MODELS)
    if not published.checkpoint.graph().trained_on(interactions.train):
        raise ValueError(f"the ratings changed since {model} {published.version} was trained: retrain it")
    scorer = checkpoint_scorer(published.checkpoint, interactions.train, interactions.n_users)
    return ranking_metrics(
        scorer, interactions.train, interactions.test, interactions.n_users, interactions.n_items, k=k
    )


def checkpoint_folder_metrics(*, dataset: str, data_dir: str, checkpoint: str, k: int = 20) -> dict:
    """Full-ranking metrics of a checkpoint folder on a data set on disk (`gowalla` train/test
    files or a MovieLens folder), the same numbers `python -m pytorch_models.evaluate` prints."""
    return checkpoint_metrics(checkpoint, dataset, data_dir, k=k)
