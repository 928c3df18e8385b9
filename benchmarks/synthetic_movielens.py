"""A synthetic MovieLens release in ml-25m's format, of any size, for the import's scale tests.

    python -m benchmarks.synthetic_movielens OUT --ratings 1000000 [--seed 0]

Writes OUT/movies.csv, ratings.csv, tags.csv and links.csv with ml-25m's headers and layout
(ratings sorted by user then movie, half stars with one decimal, Unix timestamps; titles
"Name (Year)", quoted where they hold a comma; genres `|`-joined). The shape follows ml-25m's
published figures, scaled by f = ratings / 25,000,095:
- users: 162,541 f (so the mean stays ~154 ratings a user), at least 20 ratings each: 20 plus
  a share of the rest by a lognormal weight (sigma 1.39: ml-25m's median of ~71 beside its mean
  of 154) less its 15th percentile, so ~15% of users have exactly 20 (ml-25m keeps the users
  with 20 or more), at most half the movies;
- movies: 62,423 sqrt(f), at least 100: catalogues grow slower than ratings (ml-latest-small
  has 9,742 movies for 100k ratings, ml-25m 62,423 for 25M);
- popularity: a movie of popularity rank r is drawn with weight (r + 300)^-2: the most rated
  movie gets ~0.33% of the ratings at any size (in ml-25m, 81,491 ratings: half of its users),
  the median movie a few, some none (ml-25m rates 59,047 of its 62,423 movies). Each user's
  movies are distinct, drawn in that law without replacement;
- ratings: ml-25m's own shares of each half star, given by a latent movie quality plus a user
  bias plus noise mapped through those shares, so movies' means differ and the marginal is
  ml-25m's exactly; timestamps from 1995-01-09 to 2019-11-21, each user's within a span of
  their own;
- tags: 1,093,360 f applications by 9% of the users (ml-25m: 14,592 taggers), of 73,050 sqrt(f)
  distinct tags, both drawn Zipf-like; 20 genres, "(no genres listed)" included.
Deterministic for a seed; memory bounded by BLOCK_RATINGS. Prints a table; the last line is one
JSON object (counts, seconds, file sizes).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtr
from tqdm import tqdm

ML25M_RATINGS, ML25M_USERS, ML25M_MOVIES = 25_000_095, 162_541, 62_423
ML25M_TAGS, ML25M_TAG_NAMES, TAGGER_SHARE = 1_093_360, 73_050, 14_592 / 162_541
FIRST_STAMP, LAST_STAMP = 789_652_009, 1_574_327_703  # ml-25m's first and last rating
MIN_RATINGS = 20
ACTIVITY_SIGMA = 1.39
AT_MINIMUM = 0.15  # users with exactly MIN_RATINGS
POPULARITY_EXPONENT, POPULARITY_OFFSET = 2.0, 300
# ml-25m's ratings.csv: how many of each half star, 0.5 to 5.0 (they sum to 25,000,095).
STAR_COUNTS = (393_068, 776_815, 399_490, 1_640_868, 1_262_797, 4_896_928, 3_177_318, 6_639_798,
               2_200_539, 3_612_474)
# Genres and their weights, roughly each genre's count of movies in ml-25m's movies.csv.
GENRES = {"Drama": 25_606, "Comedy": 16_870, "Thriller": 8_654, "Romance": 7_719, "Action": 7_348,
          "Horror": 5_989, "Documentary": 5_605, "Crime": 5_319, "Adventure": 4_145, "Sci-Fi": 3_595,
          "Children": 2_935, "Animation": 2_929, "Mystery": 2_925, "Fantasy": 2_731, "War": 1_874,
          "Western": 1_399, "Musical": 1_054, "Film-Noir": 353, "IMAX": 195}
NO_GENRES, NO_GENRES_SHARE = "(no genres listed)", 5_062 / 62_423
GENRES_PER_MOVIE = (0.45, 0.33, 0.16, 0.06)  # one, two, three, four genres
TAG_WORDS = ("atmospheric", "funny", "dark", "classic", "twist ending", "visually appealing",
             "based on a book", "thought-provoking", "dystopia", "sci-fi", "romance", "satire",
             "surreal", "quirky", "violence", "time travel", "psychology", "cult film", "soundtrack",
             "animation", "nudity", "heist", "slow", "war", "philosophical", "space", "revenge",
             "mindfuck", "stylized", "Pixar", "superhero", "noir", "murder", "comedy", "drama")
WORDS = ("Silent", "River", "Night", "Lost", "City", "Last", "Summer", "Dark", "Road", "Secret",
         "Blue", "House", "War", "Love", "Stranger", "Island", "Return", "Fire", "Winter", "Dream")
# Ratings per block of users written at once: ~90 MB of arrays and text at its peak.
BLOCK_RATINGS = 1_000_000


@dataclass(frozen=True)
class Shape:
    ratings: int
    users: int
    movies: int
    tags: int
    tag_names: int
    taggers: int
    most_per_user: int

    @classmethod
    def scaled(cls, ratings: int) -> Shape:
        if ratings < MIN_RATINGS:
            raise ValueError(f"--ratings must be at least {MIN_RATINGS}: a user rates {MIN_RATINGS} movies")
        f = ratings / ML25M_RATINGS
        movies = max(100, round(ML25M_MOVIES * math.sqrt(f)))
        most = movies // 2
        users = min(max(round(ML25M_USERS * f), math.ceil(ratings / most)), ratings // MIN_RATINGS)
        tag_names = max(50, round(ML25M_TAG_NAMES * math.sqrt(f)))
        return cls(ratings, users, movies, round(ML25M_TAGS * f), tag_names,
                   max(1, round(users * TAGGER_SHARE)), most)


def activity(shape: Shape, rng: np.random.Generator) -> np.ndarray:
    """(users,) ratings of each user: 20 + a lognormal share of the rest, capped, summing to the total."""
    extra_total = shape.ratings - MIN_RATINGS * shape.users
    room = np.full(shape.users, shape.most_per_user - MIN_RATINGS, dtype=np.int64)
    weights = rng.lognormal(0.0, ACTIVITY_SIGMA, shape.users)
    weights = np.maximum(weights - np.quantile(weights, AT_MINIMUM), 0.0) + 1e-12
    extra = np.zeros(shape.users, dtype=np.int64)
    while (left := extra_total - int(extra.sum())) > 0:  # water-filling: users at the cap take no more
        open_ = extra < room
        share = np.where(open_, weights, 0.0)
        add = np.minimum(np.floor(left * share / share.sum()).astype(np.int64), room - extra)
        if add.sum() == 0:  # the last few: one each to open users, heaviest first
            order = np.argsort(-share, kind="stable")[:left]
            add[order[open_[order]]] = 1
        extra += add
    return MIN_RATINGS + extra


def popularity(movies: int) -> np.ndarray:
    """(movies,) cumulative draw probabilities in popularity rank order."""
    weights = (np.arange(1, movies + 1) + POPULARITY_OFFSET) ** -POPULARITY_EXPONENT
    return np.cumsum(weights / weights.sum())


def user_movies(count: int, cumulative: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`count` distinct popularity ranks drawn without replacement (first draws kept)."""
    movies = len(cumulative)
    if count > movies // 50:  # a heavy user: Gumbel top-k, O(movies)
        probabilities = np.diff(cumulative, prepend=0.0)
        keys = np.log(probabilities) + rng.gumbel(size=movies)
        return np.argpartition(-keys, count - 1)[:count]
    chosen = np.empty(0, dtype=np.int64)
    while len(chosen) < count:
        draws = np.searchsorted(cumulative, rng.random(2 * count + 16) * cumulative[-1])
        both = np.concatenate([chosen, np.minimum(draws, movies - 1)])
        unique, first = np.unique(both, return_index=True)
        chosen = both[np.sort(first)]
    return chosen[:count]


def ratings_write(shape: Shape, folder: Path, rng: np.random.Generator, rank_to_movie: np.ndarray,
                  quality: np.ndarray, *, progress: bool) -> dict[str, float]:
    """ratings.csv, a block of users at a time; returns figures of the shape it got."""
    per_user = activity(shape, rng)
    cumulative = popularity(shape.movies)
    stars = np.cumsum(STAR_COUNTS) / sum(STAR_COUNTS)
    per_movie = np.zeros(shape.movies + 1, dtype=np.int64)
    with (folder / "ratings.csv").open("w", newline="") as handle, \
            tqdm(total=shape.ratings, desc="ratings", unit=" ratings", disable=not progress) as bar:
        handle.write("userId,movieId,rating,timestamp\n")
        user = 0
        while user < shape.users:
            last = int(np.searchsorted(np.cumsum(per_user[user:]), BLOCK_RATINGS)) + user + 1
            block = range(user, min(last, shape.users))
            movies = [np.sort(rank_to_movie[user_movies(int(per_user[u]), cumulative, rng)]) for u in block]
            users = np.repeat(np.arange(block.start + 1, block.stop + 1), per_user[block.start:block.stop])
            movie_ids = np.concatenate(movies)
            bias = np.repeat(rng.normal(0.0, 0.5, len(block)), per_user[block.start:block.stop])
            latent = (quality[movie_ids] + bias + rng.normal(0.0, 1.0, len(movie_ids))) / math.sqrt(1.61)
            rating = (np.searchsorted(stars, ndtr(latent)) + 1) / 2
            counts = per_user[block.start:block.stop]
            start = np.repeat(rng.uniform(FIRST_STAMP, LAST_STAMP, len(block)), counts)
            span = np.repeat(rng.exponential(200 * 86_400, len(block)), counts)
            stamps = np.minimum(start + rng.random(len(movie_ids)) * span, LAST_STAMP).astype(np.int64)
            pd.DataFrame({"u": users, "m": movie_ids, "r": np.minimum(rating, 5.0), "t": stamps}).to_csv(
                handle, header=False, index=False, float_format="%.1f")
            per_movie += np.bincount(movie_ids, minlength=shape.movies + 1)
            bar.update(len(movie_ids))
            user = block.stop
    rated = per_movie[1:]
    return {"per_user_min": int(per_user.min()), "per_user_median": float(np.median(per_user)),
            "per_user_max": int(per_user.max()), "movies_rated": int((rated > 0).sum()),
            "per_movie_median": float(np.median(rated)),
            "top_movie_user_share": round(float(rated.max()) / shape.users, 3)}


def movies_write(shape: Shape, folder: Path, rng: np.random.Generator) -> None:
    genre_names, weights = list(GENRES), np.array(list(GENRES.values()), dtype=float)
    with (folder / "movies.csv").open("w", newline="") as movies, \
            (folder / "links.csv").open("w", newline="") as links:
        movie_rows = csv.writer(movies, lineterminator="\n")
        link_rows = csv.writer(links, lineterminator="\n")
        movie_rows.writerow(["movieId", "title", "genres"])
        link_rows.writerow(["movieId", "imdbId", "tmdbId"])
        for movie in range(1, shape.movies + 1):
            name = " ".join(rng.choice(WORDS, size=int(rng.integers(1, 4))))
            title = f"{name} {movie}, The" if movie % 10 == 0 else f"{name} {movie}"  # some need quotes
            year = max(1902, 2019 - int(rng.exponential(20)))
            genres = NO_GENRES
            if rng.random() >= NO_GENRES_SHARE:
                count = int(rng.choice(len(GENRES_PER_MOVIE), p=GENRES_PER_MOVIE)) + 1
                picked = rng.choice(len(genre_names), size=count, replace=False, p=weights / weights.sum())
                genres = "|".join(genre_names[i] for i in sorted(picked))
            movie_rows.writerow([movie, f"{title} ({year})", genres])
            link_rows.writerow([movie, f"{100_000 + 7 * movie:07d}", 1_000 + movie])


def tag_name(index: int) -> str:
    """The index-th distinct tag: the words alone, then pairs of them, then numbered pairs."""
    n = len(TAG_WORDS)
    if index < n:
        return TAG_WORDS[index]
    round_, pair = divmod(index - n, n * n)
    text = f"{TAG_WORDS[pair // n]} {TAG_WORDS[pair % n]}"
    return f"{text} {round_ + 1}" if round_ else text


def tags_write(shape: Shape, folder: Path, rng: np.random.Generator, rank_to_movie: np.ndarray) -> None:
    taggers = np.sort(rng.choice(np.arange(1, shape.users + 1), size=shape.taggers, replace=False))
    who = 1.0 / np.arange(1, shape.taggers + 1)  # a few taggers apply most tags
    users = taggers[rng.permutation(shape.taggers)][rng.choice(shape.taggers, shape.tags, p=who / who.sum())]
    cumulative = popularity(shape.movies)
    ranks = np.searchsorted(cumulative, rng.random(shape.tags) * cumulative[-1])
    movies = rank_to_movie[np.minimum(ranks, shape.movies - 1)]
    which = 1.0 / np.arange(1, shape.tag_names + 1) ** 1.1
    names = rng.choice(shape.tag_names, shape.tags, p=which / which.sum())
    stamps = rng.integers(FIRST_STAMP, LAST_STAMP, shape.tags)
    order = np.lexsort((movies, users))
    text = np.array([tag_name(i) for i in range(shape.tag_names)], dtype=object)
    pd.DataFrame({"userId": users[order], "movieId": movies[order], "tag": text[names[order]],
                  "timestamp": stamps[order]}).to_csv(folder / "tags.csv", index=False)


def release_write(folder: Path, ratings: int, *, seed: int = 0, progress: bool = True) -> dict:
    """Write the release; returns its figures (the JSON line's)."""
    started = time.perf_counter()
    shape = Shape.scaled(ratings)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rank_to_movie = rng.permutation(shape.movies) + 1  # popularity rank -> movieId
    quality = np.concatenate([[0.0], rng.normal(0.0, 0.6, shape.movies)])  # by movieId
    movies_write(shape, folder, rng)
    figures = ratings_write(shape, folder, rng, rank_to_movie, quality, progress=progress)
    tags_write(shape, folder, rng, rank_to_movie)
    sizes = {p.name: p.stat().st_size for p in sorted(folder.glob("*.csv"))}
    return {**asdict(shape), **figures, "seed": seed, "seconds": round(time.perf_counter() - started, 1),
            "bytes": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the release into (made if missing)")
    parser.add_argument("--ratings", type=int, required=True, help="how many ratings, e.g. 1000000")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        figures = release_write(args.out, args.ratings, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"\nsynthetic MovieLens release in {args.out} (seed {args.seed}), ml-25m's shape scaled by "
          f"{args.ratings / ML25M_RATINGS:.4f}")
    print(f"{'':<24}{'this release':>14}{'ml-25m':>12}")
    published = [("ratings", "ratings", ML25M_RATINGS), ("users", "users", ML25M_USERS),
                 ("movies", "movies", ML25M_MOVIES), ("tag applications", "tags", ML25M_TAGS),
                 ("ratings/user min", "per_user_min", MIN_RATINGS)]
    for label, key, ml25m in published:
        print(f"{label:<24}{figures[key]:>14,}{ml25m:>12,}")
    for label, key in [("movies rated", "movies_rated"), ("tag vocabulary", "tag_names"),
                       ("ratings/user median", "per_user_median"), ("ratings/user max", "per_user_max"),
                       ("ratings/movie median", "per_movie_median"),
                       ("top movie: users' share", "top_movie_user_share")]:
        print(f"{label:<24}{figures[key]:>14,}")
    for name, size in figures["bytes"].items():
        print(f"{name:<24}{size / 1e6:>12.1f}MB")
    print(f"written in {figures['seconds']} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
