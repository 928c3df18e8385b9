"""Interaction data sets, the per-user hold-out split and MovieLens item features
(genres, year, title words and the tags of tags.csv).

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
import pandas as pd
import torch

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

_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass
class Interactions:
    """Implicit user–item interactions split into train and test.

    train, test: (E, 2) int64 arrays of [user row, item row].
    item_ids: (n_items,) external id of each item row; user_ids: (n_users,) the same for users.
    split: how the hold-out was drawn (recorded in checkpoints so evaluation reuses it).
    """

    n_users: int
    n_items: int
    train: np.ndarray
    test: np.ndarray
    item_ids: np.ndarray
    user_ids: np.ndarray
    split: dict = field(default_factory=dict)


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
    def from_tensors(cls, tensors: dict[str, torch.Tensor], meta: dict) -> "ItemFeatures":
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


def _index_of(ids: np.ndarray, values: np.ndarray, what: str) -> np.ndarray:
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
        [_index_of(user_ids, pairs[:, 0], "user"), _index_of(item_ids, pairs[:, 1], "item")], axis=1
    )
    rows = np.unique(rows, axis=0)
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


@dataclass
class MovieTable:
    """The movie catalogue of a MovieLens folder, in file order."""

    movie_ids: np.ndarray
    titles: list[str]
    genres: list[list[str]]


def _split_genres(text: str) -> list[str]:
    return [g for g in str(text).split("|") if g and g != "(no genres listed)"]


def read_movielens_movies(data_dir: str | Path) -> MovieTable:
    """movies.csv (latest-small, 25m), movies.dat (1m) or u.item (100k)."""
    data_dir = Path(data_dir)
    if (data_dir / "movies.csv").exists():
        frame = pd.read_csv(data_dir / "movies.csv", dtype={"title": str, "genres": str})
        genres = [_split_genres(g) for g in frame["genres"].fillna("")]
        return MovieTable(frame["movieId"].to_numpy(np.int64), frame["title"].tolist(), genres)
    if (data_dir / "movies.dat").exists():
        ids, titles, genres = [], [], []
        with open(data_dir / "movies.dat", encoding="latin-1") as lines:
            for line in lines:
                parts = line.rstrip("\r\n").split("::")
                if len(parts) == 3:
                    ids.append(int(parts[0]))
                    titles.append(parts[1])
                    genres.append(_split_genres(parts[2]))
        return MovieTable(np.asarray(ids, dtype=np.int64), titles, genres)
    if (data_dir / "u.item").exists():
        names = []
        if (data_dir / "u.genre").exists():
            with open(data_dir / "u.genre", encoding="latin-1") as lines:
                names = [line.split("|")[0] for line in lines if "|" in line]
        ids, titles, genres = [], [], []
        with open(data_dir / "u.item", encoding="latin-1") as lines:
            for line in lines:
                parts = line.rstrip("\r\n").split("|")
                if len(parts) < 5:
                    continue
                flags = parts[5:]
                ids.append(int(parts[0]))
                titles.append(parts[1])
                genres.append(
                    [names[j] if j < len(names) else f"genre{j}" for j, f in enumerate(flags) if f == "1"]
                )
        genres = [[g for g in gs if g != "unknown"] for gs in genres]
        return MovieTable(np.asarray(ids, dtype=np.int64), titles, genres)
    raise FileNotFoundError(f"no movies.csv, movies.dat or u.item in {data_dir}")


def _read_movielens_ratings(data_dir: Path) -> np.ndarray:
    if (data_dir / "ratings.csv").exists():
        frame = pd.read_csv(data_dir / "ratings.csv", usecols=["userId", "movieId"], dtype=np.int64)
        return frame.to_numpy()
    if (data_dir / "ratings.dat").exists():
        frame = pd.read_csv(
            data_dir / "ratings.dat", sep="::", engine="python", header=None, usecols=[0, 1], dtype=np.int64
        )
        return frame.to_numpy()
    if (data_dir / "u.data").exists():
        frame = pd.read_csv(data_dir / "u.data", sep="\t", header=None, usecols=[0, 1], dtype=np.int64)
        return frame.to_numpy()
    raise FileNotFoundError(f"no ratings.csv, ratings.dat or u.data in {data_dir}")


def load_movielens(data_dir: str | Path, *, test_fraction: float = 0.2, seed: int = 0) -> Interactions:
    """MovieLens as implicit feedback: every rating is an interaction.

    Items are all movies of the catalogue (so unrated movies exist as items), in catalogue
    order, plus any rated movie missing from it; users are the raters sorted by id.
    """
    data_dir = Path(data_dir)
    movies = read_movielens_movies(data_dir)
    ratings = _read_movielens_ratings(data_dir)
    missing = np.setdiff1d(np.unique(ratings[:, 1]), movies.movie_ids)
    item_ids = np.concatenate([movies.movie_ids, missing])
    user_ids = np.unique(ratings[:, 0])
    result = interactions_from_pairs(user_ids, item_ids, ratings, test_fraction=test_fraction, seed=seed)
    log.info(
        "movielens %s: %d users, %d items, %d train, %d test",
        data_dir.name, result.n_users, result.n_items, len(result.train), len(result.test),
    )
    return result


def title_year(title: str) -> int | None:
    """The year MovieLens appends to titles, "Heat (1995)" -> 1995."""
    found = _YEAR_IN_TITLE.search(title.strip())
    return int(found.group(1)) if found else None


def tag_normalise(text: str) -> str:
    """How tags are compared: lower case, no outer spaces, inner runs of spaces as one."""
    return " ".join(str(text).lower().split())


def read_movielens_tags(data_dir: str | Path) -> list[tuple[int, int, str]]:
    """(userId, movieId, normalised tag) of tags.csv (ml-latest, ml-25m) or tags.dat (ml-10m);
    empty when the release has no tags (ml-1m, ml-100k). Blank tags are dropped.

    The one tag parser: the CLI's features and the site's import both read tags through it.
    """
    data_dir = Path(data_dir)
    if (data_dir / "tags.csv").exists():
        frame = pd.read_csv(data_dir / "tags.csv", usecols=["userId", "movieId", "tag"],
                            dtype={"userId": np.int64, "movieId": np.int64, "tag": str}, keep_default_na=False)
    elif (data_dir / "tags.dat").exists():
        frame = pd.read_csv(data_dir / "tags.dat", sep="::", engine="python", header=None, usecols=[0, 1, 2],
                            names=["userId", "movieId", "tag"], dtype={"tag": str}, keep_default_na=False,
                            encoding="utf-8", quoting=3)
    else:
        return []
    rows = ((int(u), int(m), tag_normalise(t)) for u, m, t in frame.itertuples(index=False))
    return [row for row in rows if row[2]]


def movie_tags(rows: Sequence[tuple[int, int, str]]) -> dict[int, list[tuple[str, int]]]:
    """movieId -> [(tag, how many distinct users applied it)], most applied first, then by name."""
    users: dict[tuple[int, str], set[int]] = {}
    for user, movie, tag in rows:
        users.setdefault((movie, tag), set()).add(user)
    tags: dict[int, list[tuple[str, int]]] = {}
    for (movie, tag), who in users.items():
        tags.setdefault(movie, []).append((tag, len(who)))
    return {movie: sorted(pairs, key=lambda p: (-p[1], p[0])) for movie, pairs in tags.items()}


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
    text = _YEAR_IN_TITLE.sub("", title.strip()).lower()
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
    return ItemFeatures(multi_hot, year, bucket, words, names, n_title_buckets, N_YEAR_BUCKETS, tag_ids, n_tag_buckets)


def load_movielens_features(data_dir: str | Path, item_ids: np.ndarray) -> ItemFeatures:
    """Features for `item_ids` (rows of an Interactions) from a MovieLens catalogue."""
    movies = read_movielens_movies(data_dir)
    row = {int(m): i for i, m in enumerate(movies.movie_ids)}
    tagged = movie_tags(read_movielens_tags(data_dir))
    titles, genres, tags = [], [], []
    for m in item_ids:
        i = row.get(int(m))
        titles.append(movies.titles[i] if i is not None else "")
        genres.append(movies.genres[i] if i is not None else [])
        tags.append([tag for tag, _ in tagged.get(int(m), [])])
    return movielens_item_features(titles, genres, [title_year(t) for t in titles], tags if tagged else None)
