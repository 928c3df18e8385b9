"""Interaction data sets, the per-user hold-out split and MovieLens item features
(genres, year, title words and the tags of tags.csv). The MovieLens files themselves are
read by `pytorch_models.data.movielens`.

Everything here returns index arrays: users are rows 0..n_users-1, items 0..n_items-1,
and `user_ids` / `item_ids` map a row back to the external id (userId, movieId).
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pytorch_models.data.movielens import (
    movie_tags,
    movies_read,
    release_detect,
    tags_read,
    title_parse,
)
from pytorch_models.data.movielens_ratings import rating_pairs

log = logging.getLogger(__name__)

# Fixed ranges so features of the same movie agree across data sets and the Django side.
YEAR_MIN, YEAR_MAX = 1900, 2030
N_YEAR_BUCKETS = 15  # 0 = unknown, then one per decade from 1900
N_TITLE_BUCKETS = 4096  # hashed title words; 0 is padding
MAX_TITLE_WORDS = 8
# Tags, hashed like title words (stable across retrains, so a warm start's rows keep their
# meaning). A tag counts once it is on MIN_TAG_MOVIES movies: a tag on a single movie is,
# to the model, a second id embedding of that movie. ml-latest-small: 1,475 distinct
# normalised tags, 542 on 2+ movies, covering 1,343 movies; 99% of those carry <= 11 kept
# tags, and the MAX_TAGS kept are those most users applied.
N_TAG_BUCKETS = 2048
MAX_TAGS = 16
MIN_TAG_MOVIES = 2

_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class Interactions:
    """Implicit user–item interactions split into train and test.

    train, test: (E, 2) int64 arrays of [user row, item row].
    item_ids: (n_items,) external id of each item row; user_ids: (n_users,) the same for users.
    split: how the hold-out was drawn (recorded in checkpoints so evaluation reuses it).
    negatives: (N, 2) [user row, item row] the user said it does not want (a site visitor's
    "Not interested"): BPR draws them as that user's negatives; None: none.
    train_stamps: (E,) int64 seconds of each train row, where the data has them (a sequence
    model needs the order: `data.sequences`); None: unordered.
    """

    n_users: int
    n_items: int
    train: np.ndarray
    test: np.ndarray
    item_ids: np.ndarray
    user_ids: np.ndarray
    split: dict = field(default_factory=dict)
    negatives: np.ndarray | None = None
    train_stamps: np.ndarray | None = None


@dataclass
class ItemFeatures:
    """Content features of items, one row per item.

    genres: (n_items, G) float multi-hot; year: (n_items,) float in [0, 1] (0.5 when unknown);
    year_bucket: (n_items,) int64 decade bucket (0 unknown); title_words: (n_items, T) int64
    hashed word ids (0 = padding); tags: (n_items, M) int64 hashed tag ids (0 = padding), or
    None where no tags were given (checkpoints from before tags, data sets without them).
    """

    genres: torch.Tensor
    year: torch.Tensor
    year_bucket: torch.Tensor
    title_words: torch.Tensor
    genre_names: list[str]
    n_title_buckets: int = N_TITLE_BUCKETS
    n_year_buckets: int = N_YEAR_BUCKETS
    tags: torch.Tensor | None = None
    n_tag_buckets: int = 0

    def tensors(self) -> dict[str, torch.Tensor]:
        tables = {
            "genres": self.genres,
            "year": self.year,
            "year_bucket": self.year_bucket,
            "title_words": self.title_words,
        }
        return tables if self.tags is None else {**tables, "tags": self.tags}

    def meta(self) -> dict:
        return {
            "genre_names": self.genre_names,
            "n_title_buckets": self.n_title_buckets,
            "n_year_buckets": self.n_year_buckets,
            "n_tag_buckets": self.n_tag_buckets,
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], meta: dict) -> ItemFeatures:
        return cls(**tensors, **meta)


def split_per_user(
    pairs: np.ndarray, n_users: int, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out round(test_fraction * count) random interactions of each user.

    A user keeps at least one interaction in train (so users with one interaction keep it).
    Seeded: the same pairs, fraction and seed give the same split. Returns (train, test).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if test_fraction <= 0 or len(pairs) == 0:
        return pairs.copy(), np.zeros((0, 2), dtype=np.int64)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(pairs)), pairs[:, 0]))  # by user, random within user
    users = pairs[order, 0]
    counts = np.bincount(users, minlength=n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(pairs)) - starts[users]
    n_test = np.minimum(np.rint(counts * test_fraction).astype(np.int64), np.maximum(counts - 1, 0))
    is_test = rank < n_test[users]
    return pairs[order[~is_test]], pairs[order[is_test]]


def unique_pairs(pairs: np.ndarray, *, return_index: bool = False):
    """np.unique(pairs, axis=0) of (E, 2) non-negative int64 pairs, the same rows in the same
    order (by the first column, then the second), and with `return_index` each one's first
    position: through one int64 key per pair, where axis=0 sorts rows as opaque bytes (at 25M
    ratings 10-20 s, several times per retrain)."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    span = int(pairs[:, 1].max()) + 1 if len(pairs) else 1
    if len(pairs) and (pairs.min() < 0 or int(pairs[:, 0].max()) >= np.iinfo(np.int64).max // span):
        return np.unique(pairs, axis=0, return_index=return_index)
    keys, first = np.unique(pairs[:, 0] * span + pairs[:, 1], return_index=True)
    rows = np.stack([keys // span, keys % span], axis=1)
    return (rows, first) if return_index else rows


def index_of(ids: np.ndarray, values: np.ndarray, what: str) -> np.ndarray:
    """The row in `ids` of each of `values`; ValueError naming `what` when one is missing."""
    order = np.argsort(ids, kind="stable")
    pos = np.searchsorted(ids[order], values)
    pos = np.clip(pos, 0, len(ids) - 1)
    found = ids[order][pos] == values
    if not found.all():
        raise ValueError(f"{(~found).sum()} {what} ids are not in the given id list")
    return order[pos]


def interactions_from_pairs(
    user_ids: Sequence[int] | np.ndarray,
    item_ids: Sequence[int] | np.ndarray,
    pairs: np.ndarray,
    *,
    test_fraction: float = 0.0,
    seed: int = 0,
) -> Interactions:
    """Build `Interactions` from external ids (e.g. rows of the site's database).

    user_ids: (n_users,) external user ids, one per user row; item_ids: (n_items,) external
    movie ids, one per item row (items without interactions are fine); pairs: (E, 2) of
    [external user id, external item id]. Duplicates are dropped; test_fraction=0 puts
    everything in train.
    """
    user_ids = np.asarray(user_ids, dtype=np.int64)
    item_ids = np.asarray(item_ids, dtype=np.int64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    rows = np.stack(
        [index_of(user_ids, pairs[:, 0], "user"), index_of(item_ids, pairs[:, 1], "item")], axis=1
    )
    rows = unique_pairs(rows)
    train, test = split_per_user(rows, len(user_ids), test_fraction, seed)
    return Interactions(
        n_users=len(user_ids),
        n_items=len(item_ids),
        train=train,
        test=test,
        item_ids=item_ids,
        user_ids=user_ids,
        split={"test_fraction": test_fraction, "seed": seed},
    )


def _read_pairs_file(path: Path) -> np.ndarray:
    users, items = [], []
    with open(path) as lines:
        for line in lines:
            ids = line.split()
            if len(ids) > 1:
                items.extend(ids[1:])
                users.extend([ids[0]] * (len(ids) - 1))
    return np.stack([np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)], axis=1)


def load_gowalla(data_dir: str | Path) -> Interactions:
    """The LightGCN paper's Gowalla split: `train.txt` / `test.txt`, lines `user item item ...`."""
    data_dir = Path(data_dir)
    train = _read_pairs_file(data_dir / "train.txt")
    test = _read_pairs_file(data_dir / "test.txt")
    n_users = int(max(train[:, 0].max(), test[:, 0].max(initial=0))) + 1
    n_items = int(max(train[:, 1].max(), test[:, 1].max(initial=0))) + 1
    log.info("gowalla: %d users, %d items, %d train, %d test", n_users, n_items, len(train), len(test))
    return Interactions(
        n_users=n_users,
        n_items=n_items,
        train=train,
        test=test,
        item_ids=np.arange(n_items, dtype=np.int64),
        user_ids=np.arange(n_users, dtype=np.int64),
        split={"given": "train.txt/test.txt"},
    )


def load_dataset(dataset: str, data_dir: str | Path, *, test_fraction: float = 0.2,
                 seed: int = 0) -> tuple[Interactions, ItemFeatures | None]:
    """(Interactions, ItemFeatures or None) for `gowalla` or `movielens`."""
    if dataset == "gowalla":
        return load_gowalla(data_dir), None
    if dataset == "movielens":
        data = load_movielens(data_dir, test_fraction=test_fraction, seed=seed)
        return data, load_movielens_features(data_dir, data.item_ids)
    raise ValueError(f"unknown dataset {dataset!r}")


def load_movielens(data_dir: str | Path, *, test_fraction: float = 0.2, seed: int = 0) -> Interactions:
    """MovieLens as implicit feedback: every rating is an interaction.

    Items are all movies of the catalogue (so unrated movies exist as items), in catalogue
    order, plus any rated movie missing from it; users are the raters sorted by id.
    """
    release = release_detect(data_dir)
    movie_ids = np.asarray([movie.movie_id for movie in movies_read(release)], dtype=np.int64)
    ratings = rating_pairs(release)
    missing = np.setdiff1d(np.unique(ratings[:, 1]), movie_ids)
    item_ids = np.concatenate([movie_ids, missing])
    user_ids = np.unique(ratings[:, 0])
    result = interactions_from_pairs(user_ids, item_ids, ratings, test_fraction=test_fraction, seed=seed)
    log.info(
        "movielens %s: %d users, %d items, %d train, %d test",
        Path(data_dir).name, result.n_users, result.n_items, len(result.train), len(result.test),
    )
    return result


def _tag_ids(
    tags: Sequence[Sequence[str]], n_buckets: int, max_tags: int, min_movies: int
) -> torch.Tensor:
    """(n_items, max_tags) hashed ids of each item's tags that are on >= min_movies items."""
    spread: dict[str, int] = {}
    for item_tags in tags:
        for tag in set(item_tags):
            spread[tag] = spread.get(tag, 0) + 1
    ids = torch.zeros(len(tags), max_tags, dtype=torch.int64)
    for i, item_tags in enumerate(tags):
        kept = [t for t in dict.fromkeys(item_tags) if spread[t] >= min_movies][:max_tags]
        ids[i, : len(kept)] = torch.tensor([_bucket(t, n_buckets) for t in kept], dtype=torch.int64)
    return ids


def _bucket(text: str, n_buckets: int) -> int:
    # crc32, not hash(): Python's string hash is salted per process.
    return 1 + zlib.crc32(text.encode()) % (n_buckets - 1)


def _title_words(title: str, n_buckets: int, max_words: int) -> list[int]:
    text, _ = title_parse(title)
    text = text.lower()
    return [_bucket(w, n_buckets) for w in _WORD.findall(text)][:max_words]


def movielens_item_features(
    titles: Sequence[str],
    genres: Sequence[Sequence[str]],
    years: Sequence[int | None],
    tags: Sequence[Sequence[str]] | None = None,
    *,
    genre_names: Sequence[str] | None = None,
    n_title_buckets: int = N_TITLE_BUCKETS,
    max_title_words: int = MAX_TITLE_WORDS,
    n_tag_buckets: int = N_TAG_BUCKETS,
    max_tags: int = MAX_TAGS,
    min_tag_movies: int = MIN_TAG_MOVIES,
) -> ItemFeatures:
    """Item features from plain lists, one entry per item row (callable with database rows).

    genre_names fixes the genre column order; by default the sorted set of genres seen.
    tags: each item's normalised tags, most applied first (`movie_tags`); only tags on at
    least min_tag_movies items are kept, the first max_tags of them. None: no tag feature.
    """
    names = sorted({g for gs in genres for g in gs}) if genre_names is None else list(genre_names)
    column = {g: j for j, g in enumerate(names)}
    n = len(titles)
    multi_hot = torch.zeros(n, max(len(names), 1))
    for i, gs in enumerate(genres):
        for g in gs:
            if g in column:
                multi_hot[i, column[g]] = 1.0
    year = torch.full((n,), 0.5)
    bucket = torch.zeros(n, dtype=torch.int64)
    for i, y in enumerate(years):
        if y is not None:
            y = min(max(int(y), YEAR_MIN), YEAR_MAX)
            year[i] = (y - YEAR_MIN) / (YEAR_MAX - YEAR_MIN)
            bucket[i] = 1 + min((y - YEAR_MIN) // 10, N_YEAR_BUCKETS - 2)
    words = torch.zeros(n, max_title_words, dtype=torch.int64)
    for i, title in enumerate(titles):
        ids = _title_words(title, n_title_buckets, max_title_words)
        words[i, : len(ids)] = torch.tensor(ids, dtype=torch.int64)
    if tags is None:
        return ItemFeatures(multi_hot, year, bucket, words, names, n_title_buckets, N_YEAR_BUCKETS)
    if len(tags) != n:
        raise ValueError(f"{len(tags)} tag lists for {n} items")
    tag_ids = _tag_ids(tags, n_tag_buckets, max_tags, min_tag_movies)
    return ItemFeatures(multi_hot, year, bucket, words, names, n_title_buckets, N_YEAR_BUCKETS, tag_ids,
                        n_tag_buckets)


def load_movielens_features(data_dir: str | Path, item_ids: np.ndarray) -> ItemFeatures:
    """Features for `item_ids` (rows of an Interactions) from a MovieLens catalogue: the
    titles, years, genres and tags the site's import stores, so both give the same features."""
    release = release_detect(data_dir)
    movies = {movie.movie_id: movie for movie in movies_read(release)}
    tagged = movie_tags(tags_read(release))
    known = [movies.get(int(m)) for m in item_ids]
    return movielens_item_features(
        [movie.title if movie else "" for movie in known],
        [movie.genres if movie else () for movie in known],
        [movie.year if movie else None for movie in known],
        [[tag for tag, _ in tagged.get(int(m), [])] for m in item_ids] if tagged else None,
    )
