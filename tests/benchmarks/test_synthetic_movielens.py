"""benchmarks.synthetic_movielens: a release the MovieLens reader reads as ml-25m's format, with
the shape the generator promises (every user 20+ ratings, distinct pairs, half stars, ml-25m's
time range), the same bytes for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.synthetic_movielens import (
    FIRST_STAMP,
    LAST_STAMP,
    ML25M_MOVIES,
    ML25M_RATINGS,
    ML25M_TAGS,
    ML25M_USERS,
    Shape,
    activity,
    release_write,
    tag_name,
)
from pytorch_models.data.movielens import movie_tags, movies_read, release_detect, tags_read
from pytorch_models.data.movielens_ratings import ratings_chunks

HEADERS = {"movies.csv": "movieId,title,genres", "ratings.csv": "userId,movieId,rating,timestamp",
           "tags.csv": "userId,movieId,tag,timestamp", "links.csv": "movieId,imdbId,tmdbId"}


def test_full_size_is_ml25m_and_smaller_sizes_scale():
    full = Shape.scaled(ML25M_RATINGS)
    assert (full.users, full.movies, full.tags) == (ML25M_USERS, ML25M_MOVIES, ML25M_TAGS)
    one_m = Shape.scaled(1_000_000)
    assert (one_m.users, one_m.movies) == (6_502, 12_485)  # users x0.04, movies x sqrt(0.04)
    assert Shape.scaled(20).users == 1
    with pytest.raises(ValueError, match="at least 20"):
        Shape.scaled(19)


@pytest.mark.parametrize("ratings", [20, 45, 3_000, 100_000])
def test_activity_sums_to_the_ratings_between_20_and_the_cap(ratings):
    shape = Shape.scaled(ratings)
    per_user = activity(shape, np.random.default_rng(1))
    assert per_user.sum() == ratings and len(per_user) == shape.users
    assert per_user.min() >= 20 and per_user.max() <= shape.most_per_user


def test_tag_names_are_distinct():
    names = [tag_name(i) for i in range(5_000)]
    assert len(set(names)) == len(names)


def test_release_reads_as_ml25m_with_the_promised_shape(tmp_path):
    figures = release_write(tmp_path / "a", 3_000, seed=7, progress=False)
    release = release_detect(tmp_path / "a")
    assert release.format == "csv" and release.links is not None and release.tags is not None
    for name, header in HEADERS.items():
        assert (tmp_path / "a" / name).read_text().split("\n", 1)[0] == header

    movies = list(movies_read(release))
    chunks = list(ratings_chunks(release))
    users = np.concatenate([c.users for c in chunks])
    movie_ids = np.concatenate([c.movies for c in chunks])
    ratings = np.concatenate([c.ratings for c in chunks])
    stamps = np.concatenate([c.stamps for c in chunks])
    assert (len(movies), len(users), users.max()) == (figures["movies"], 3_000, figures["users"])
    assert np.bincount(users)[1:].min() >= 20
    pairs = users * 10**6 + movie_ids
    assert len(np.unique(pairs)) == len(pairs) and (np.diff(pairs) > 0).all()  # sorted by user, movie
    assert set(movie_ids.tolist()) <= {m.movie_id for m in movies}
    assert set((ratings * 2).tolist()) <= set(range(1, 11)) and len(set(ratings.tolist())) >= 8
    assert stamps.min() >= FIRST_STAMP and stamps.max() <= LAST_STAMP
    assert sum(len(m.genres) == 0 for m in movies) > 0 and all(m.year for m in movies)
    assert any("," in m.title for m in movies)  # quoted titles read back whole
    tags = tags_read(release)
    assert len(tags) == figures["tags"] and movie_tags(tags)


def test_same_seed_same_bytes_other_seed_other_release(tmp_path):
    for folder, seed in (("a", 3), ("b", 3), ("c", 4)):
        release_write(tmp_path / folder, 2_000, seed=seed, progress=False)
    for name in HEADERS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "ratings.csv").read_bytes() != (tmp_path / "c" / "ratings.csv").read_bytes()
