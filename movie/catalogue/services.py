"""Writes of the catalogue: importing MovieLens, and the movies' sort keys it leaves.

What visitors do (clicks, ratings, impressions, history moves) is written by `movie.tracking`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from django.db import connection, transaction
from django.db.models import Count, Sum
from tqdm import tqdm

from movie.catalogue.models import DatasetRating, Genre, Movie, MovieTag
from pytorch_models.data.movielens import (
    MovieLensFormatError,
    MovieRow,
    RatingRow,
    count_lines,
    movie_tags,
    movies_read,
    ratings_read,
    release_detect,
    tags_read,
)

log = logging.getLogger(__name__)

# Rows per statement: 5,000 ratings are ~300 kB of SQL, far below MariaDB's default
# max_allowed_packet (16 MB). With it ml-latest-small imports into MariaDB 10.11 in 3.4 s
# (9,742 movies, 100,836 ratings) and a re-run that changes nothing takes 1.9 s.
BATCH_SIZE = 5_000
MOVIE_FIELDS = ("title", "year", "imdb_id", "tmdb_id")

__all__ = ["ImportResult", "MovieLensFormatError", "movie_stats_write", "movielens_import"]


@dataclass(frozen=True)
class ImportResult:
    format: str
    movies_created: int
    movies_updated: int
    genres_created: int
    ratings_before: int
    ratings_after: int
    ratings_skipped: int  # ratings of movies the movie file does not list
    tags_stored: int = 0  # (movie, tag) pairs after the import

    @property
    def ratings_created(self) -> int:
        return self.ratings_after - self.ratings_before


def movielens_import(*, path: Path | str, progress: bool = True) -> ImportResult:
    """Import (or re-import) a MovieLens folder. Idempotent: a second run changes nothing.

    Everything happens in one transaction, so a file that fails to parse half-way leaves
    the database as it was. Raises MovieLensFormatError for a missing or unknown folder.
    """
    release = release_detect(Path(path))
    log.info("importing MovieLens (%s format) from %s", release.format, path)
    with transaction.atomic():
        movies = list(movies_read(release))
        genres_created = _genres_upsert(movies)
        movies_created, movies_updated = _movies_upsert(movies, progress=progress)
        _movie_genres_sync(movies)
        ratings_before = DatasetRating.objects.count()
        skipped = _ratings_upsert(release, {m.movie_id for m in movies}, progress=progress)
        ratings_after = DatasetRating.objects.count()
        movie_stats_write()
        tags_stored = _movie_tags_sync(release, {m.movie_id for m in movies})
    result = ImportResult(
        release.format, movies_created, movies_updated, genres_created, ratings_before, ratings_after,
        skipped, tags_stored,
    )
    log.info("MovieLens import done: %s", result)
    return result


# The prior behind Movie.rating_score: the catalogue's mean rating, worth this many ratings.
RATING_PRIOR = 10


def movie_stats_write(movie_model=Movie, rating_model=DatasetRating) -> int:
    """Write every movie's `ratings_count` and `rating_score` from the imported ratings; the
    models are parameters so migration movie.0005 can run it on its historical models. Returns the
    number of movies written."""
    stats = {
        row["movie_id"]: (row["n"], row["total"])
        for row in rating_model.objects.values("movie_id").annotate(n=Count("id"), total=Sum("rating"))
    }
    n_all = sum(n for n, _ in stats.values())
    mean = sum(total for _, total in stats.values()) / n_all if n_all else 0.0
    movies = list(movie_model.objects.only("id"))
    for movie in movies:
        n, total = stats.get(movie.id, (0, 0.0))
        movie.ratings_count = n
        movie.rating_score = (RATING_PRIOR * mean + total) / (RATING_PRIOR + n)
    movie_model.objects.bulk_update(movies, ["ratings_count", "rating_score"], batch_size=BATCH_SIZE)
    return len(movies)


def _genres_upsert(movies: list[MovieRow]) -> int:
    wanted = {name for movie in movies for name in movie.genres}
    existing = set(Genre.objects.values_list("name", flat=True))
    missing = sorted(wanted - existing)
    Genre.objects.bulk_create([Genre(name=name) for name in missing], batch_size=BATCH_SIZE)
    return len(missing)


def _movies_upsert(movies: list[MovieRow], *, progress: bool) -> tuple[int, int]:
    existing = {row[0]: row[1:] for row in Movie.objects.values_list("id", *MOVIE_FIELDS)}
    to_create, to_update = [], []
    for row in movies:
        values = (row.title, row.year, row.imdb_id, row.tmdb_id)
        if row.movie_id not in existing:
            to_create.append(Movie(id=row.movie_id, **dict(zip(MOVIE_FIELDS, values, strict=True))))
        elif existing[row.movie_id] != values:
            to_update.append(Movie(id=row.movie_id, **dict(zip(MOVIE_FIELDS, values, strict=True))))
    with tqdm(total=len(movies), desc="movies", unit=" movies", disable=not progress) as bar:
        for batch in _batches(to_create):
            Movie.objects.bulk_create(batch)
            bar.update(len(batch))
        for batch in _batches(to_update):
            Movie.objects.bulk_update(batch, MOVIE_FIELDS)
            bar.update(len(batch))
        bar.update(len(movies) - bar.n)
    return len(to_create), len(to_update)


def _movie_genres_sync(movies: list[MovieRow]) -> None:
    """Make each movie's genres exactly those of the file (adds and removes links)."""
    through = Movie.genres.through
    genre_ids = dict(Genre.objects.values_list("name", "id"))
    wanted = {(m.movie_id, genre_ids[name]) for m in movies for name in m.genres}
    ids = {m.movie_id for m in movies}
    existing = {
        (movie_id, genre_id): pk
        for pk, movie_id, genre_id in through.objects.values_list("id", "movie_id", "genre_id")
        if movie_id in ids
    }
    stale = [pk for pair, pk in existing.items() if pair not in wanted]
    for batch in _batches(stale):
        through.objects.filter(id__in=batch).delete()
    new = [through(movie_id=m, genre_id=g) for m, g in sorted(wanted - existing.keys())]
    through.objects.bulk_create(new, batch_size=BATCH_SIZE)


def _movie_tags_sync(release, movie_ids: set[int]) -> int:
    """Make the tags of the release's movies exactly those of its tags file (none when it has
    none), each with how many users applied it; returns how many (movie, tag) pairs there are."""
    tagged = movie_tags(tags_read(release))
    wanted = {(m, tag): users for m, pairs in tagged.items() if m in movie_ids for tag, users in pairs}
    existing = {
        (movie_id, name): (pk, users)
        for pk, movie_id, name, users in MovieTag.objects.values_list("id", "movie_id", "name", "users")
        if movie_id in movie_ids
    }
    stale = [pk for key, (pk, _) in existing.items() if key not in wanted]
    for batch in _batches(stale):
        MovieTag.objects.filter(id__in=batch).delete()
    changed = [MovieTag(id=pk, users=wanted[key]) for key, (pk, users) in existing.items()
               if key in wanted and wanted[key] != users]
    MovieTag.objects.bulk_update(changed, ["users"], batch_size=BATCH_SIZE)
    new = [MovieTag(movie_id=m, name=tag, users=users) for (m, tag), users in sorted(wanted.items())
           if (m, tag) not in existing]
    MovieTag.objects.bulk_create(new, batch_size=BATCH_SIZE)
    return len(wanted)


def _ratings_upsert(release, movie_ids: set[int], *, progress: bool) -> int:
    """Insert new ratings and update changed ones, one batch of the file at a time.

    Ratings files are sorted by user, so each batch touches a few users: reading their
    existing ratings per batch keeps memory flat even for ml-25m.
    """
    skipped = 0
    total = max(count_lines(release.ratings) - (1 if release.format == "csv" else 0), 0)
    with tqdm(total=total, desc="ratings", unit=" ratings", disable=not progress) as bar:
        for batch in _batches(ratings_read(release)):
            known = [r for r in batch if r.movie_id in movie_ids]
            skipped += len(batch) - len(known)
            _ratings_batch_write(known)
            bar.update(len(batch))
    if skipped:
        log.warning("skipped %d ratings of movies missing from %s", skipped, release.movies.name)
    return skipped


def _ratings_batch_write(rows: list[RatingRow]) -> None:
    existing = {
        (user, movie): (pk, rating, rated_at)
        for pk, user, movie, rating, rated_at in DatasetRating.objects.filter(
            dataset_user__in={r.dataset_user for r in rows}
        ).values_list("id", "dataset_user", "movie_id", "rating", "rated_at")
    }
    new, changed = {}, []
    for r in rows:
        old = existing.get((r.dataset_user, r.movie_id))
        if old is None:
            new[(r.dataset_user, r.movie_id)] = r  # a repeated pair in one file: the last wins
        elif old[1:] != (r.rating, r.rated_at):
            changed.append(DatasetRating(id=old[0], rating=r.rating, rated_at=r.rated_at))
    _ratings_insert(list(new.values()))
    DatasetRating.objects.bulk_update(changed, ["rating", "rated_at"], batch_size=BATCH_SIZE)


def _ratings_insert(rows: list[RatingRow]) -> None:
    # One executemany instead of bulk_create: the ORM spent 5.5 of 8 s preparing values
    # for ml-latest-small; the driver batches these into multi-row INSERTs (MySQL) or a
    # prepared statement (SQLite). Insert-only, so no dialect-specific upsert SQL.
    if not rows:
        return
    meta = DatasetRating._meta
    columns = [meta.get_field(name).column for name in ("dataset_user", "movie", "rating", "rated_at")]
    quote = connection.ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES (%s, %s, %s, %s)".format(
        quote(meta.db_table), ", ".join(quote(c) for c in columns)
    )
    adapt = connection.ops.adapt_datetimefield_value
    params = [(r.dataset_user, r.movie_id, r.rating, adapt(r.rated_at)) for r in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _batches(items, size: int = BATCH_SIZE):
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
