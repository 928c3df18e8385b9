"""Interactions in time order: the time-ordered hold-out (each user's latest interactions held
out), each user's training items as a sequence, and MovieLens read that way.

What SASRec learns from, and the split every model is compared on for it (issue 25): a
random per-user hold-out (`interactions.split_per_user`) asks a sequence model to predict
items from the middle of a history it has seen both sides of, which is not what a visitor's
next click is.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from pytorch_models.data.interactions import Interactions, index_of, unique_pairs
from pytorch_models.data.movielens import movies_read, release_detect
from pytorch_models.data.movielens_ratings import ratings_chunks

log = logging.getLogger(__name__)


def time_order(rows: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """The order of `rows` ((E, 2) [user row, item row]) by user, then time, then item row
    (MovieLens gives a user several ratings in the same second)."""
    return np.lexsort((rows[:, 1], stamps, rows[:, 0]))


def split_by_time(rows: np.ndarray, stamps: np.ndarray, n_users: int, test_fraction: float,
                  train_only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train rows, their stamps, test rows): each user's latest round(test_fraction · count)
    interactions held out, at least one kept in train, none of the user rows `train_only`;
    train in (user, time) order."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
    stamps = np.asarray(stamps, dtype=np.int64)
    order = time_order(rows, stamps)
    rows, stamps = rows[order], stamps[order]
    counts = np.bincount(rows[:, 0], minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(rows)) - starts[rows[:, 0]]
    n_test = np.minimum(np.rint(counts * test_fraction).astype(np.int64), np.maximum(counts - 1, 0))
    if train_only is not None:
        n_test[train_only] = 0
    is_test = rank >= (counts - n_test)[rows[:, 0]]
    return rows[~is_test], stamps[~is_test], rows[is_test]


def user_sequences(train: np.ndarray, stamps: np.ndarray, n_users: int) -> list[np.ndarray]:
    """Each user's train item rows in time order (ties by item row); [] for a user with none."""
    order = time_order(train, stamps)
    users, items = train[order, 0], train[order, 1]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))])
    return [items[bounds[u]:bounds[u + 1]] for u in range(n_users)]


def load_movielens_by_time(data_dir: str | Path, *, test_fraction: float = 0.2) -> Interactions:
    """MovieLens as `interactions.load_movielens` reads it (every rating an interaction, the same
    users and items in the same order), held out by time: each user's latest `test_fraction`.
    `train_stamps` keeps when each train interaction happened."""
    release = release_detect(data_dir)
    movie_ids = np.asarray([movie.movie_id for movie in movies_read(release)], dtype=np.int64)
    chunks = list(ratings_chunks(release))
    users = np.concatenate([c.users for c in chunks]) if chunks else np.zeros(0, np.int64)
    movies = np.concatenate([c.movies for c in chunks]) if chunks else np.zeros(0, np.int64)
    stamps = np.concatenate([c.stamps for c in chunks]) if chunks else np.zeros(0, np.int64)
    item_ids = np.concatenate([movie_ids, np.setdiff1d(np.unique(movies), movie_ids)])
    data = interactions_by_time(np.unique(users), item_ids, np.stack([users, movies], axis=1), stamps,
                                test_fraction=test_fraction)
    log.info("movielens %s by time: %d users, %d items, %d train, %d test", Path(data_dir).name,
             data.n_users, data.n_items, len(data.train), len(data.test))
    return data


def interactions_by_time(user_ids: np.ndarray, item_ids: np.ndarray, pairs: np.ndarray, stamps: np.ndarray,
                         *, test_fraction: float, train_only=()) -> Interactions:
    """`Interactions` from external ids (`interactions.interactions_from_pairs`'s arguments, with
    each pair's time in `stamps`, integer seconds), held out by time: each user's latest
    `test_fraction`, none of the users `train_only` (external ids). A pair given twice counts
    once, at its first time. `train_stamps` keeps when each train interaction happened."""
    user_ids = np.asarray(user_ids, dtype=np.int64)
    item_ids = np.asarray(item_ids, dtype=np.int64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    stamps = np.asarray(stamps, dtype=np.int64)
    rows = np.stack([index_of(user_ids, pairs[:, 0], "user"), index_of(item_ids, pairs[:, 1], "item")], axis=1)
    order = time_order(rows, stamps)
    kept = order[unique_pairs(rows[order], return_index=True)[1]]  # each pair's first time
    kept_users = index_of(user_ids, np.asarray(train_only, dtype=np.int64), "user") if len(train_only) else None
    train, train_stamps, test = split_by_time(rows[kept], stamps[kept], len(user_ids), test_fraction, kept_users)
    return Interactions(n_users=len(user_ids), n_items=len(item_ids), train=train, test=test,
                        item_ids=item_ids, user_ids=user_ids, train_stamps=train_stamps,
                        split={"by": "time", "test_fraction": test_fraction})
