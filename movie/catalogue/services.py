"""Writes of the catalogue: importing MovieLens, and the movies' sort keys it leaves. The
ratings, the part that grows to millions of rows, are written by `movie.catalogue.ratings_import`.

What visitors do (clicks, ratings, impressions, history moves) is written by `movie.tracking`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone
from tqdm import tqdm

from movie.catalogue.models import DatasetRating, DatasetUser, Genre, Movie, MovieLensImport, MovieTag
from movie.catalogue.ratings_import import (
    CHUNK_BYTES,
    import_record_begin,
    ratings_check,
    ratings_write,
    release_key,
)
from pytorch_models.data.movielens import (
    MovieLensFormatError,
    MovieRow,
    UserRow,
    movie_tags,
    movies_read,
    release_detect,
    tags_read,
    users_read,
)

log = logging.getLogger(__name__)

# Rows per statement of the small tables (movies, genre links, tags, users): 5,000 movies are
# ~300 kB of SQL, far below MariaDB's default max_allowed_packet (16 MB).
BATCH_SIZE = 5_000
MOVIE_FIELDS = ("title", "year", "imdb_id", "tmdb_id")
USER_FIELDS = ("gender", "age", "occupation", "zip_code")

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
    users_created: int = 0  # dataset users with demographics (ml-1m, ml-100k)
    users_updated: int = 0
    ratings_resumed: int = 0  # ratings an earlier, interrupted run of this release had committed
    already_imported: bool = False  # an earlier run finished this release: its ratings were not read

    @property
    def ratings_created(self) -> int:
        return self.ratings_after - self.ratings_before


def movielens_import(*, path: Path | str, progress: bool = True, chunk_bytes: int = CHUNK_BYTES
                     ) -> ImportResult:
    """Import (or re-import) a MovieLens folder. Idempotent: a second run changes nothing.

    Every file is read and checked before anything is written, so a bad release (a line that
    does not parse) leaves the database as it was; MovieLensFormatError names the line. Then the
    catalogue (genres, movies, their genres, the users' demographics) is written in one
    transaction, the ratings a chunk of `chunk_bytes` of the file per transaction (resumable: a
    run killed half-way goes on, when run again, at the first chunk it had not committed), and
    the movies' sort keys and tags in a last one, which marks the release imported: run again on
    the same files, it reads no rating.
    """
    release = release_detect(Path(path))
    log.info("importing MovieLens (%s format) from %s", release.format, path)
    key = release_key(release)
    movies = list(movies_read(release))
    users = list(users_read(release))
    tagged = movie_tags(tags_read(release))
    movie_ids = {m.movie_id for m in movies}
    if not MovieLensImport.objects.filter(key=key).exists():
        ratings_check(release, progress=progress)
    ratings_before = DatasetRating.objects.count()
    with transaction.atomic():
        genres_created = _genres_upsert(movies)
        movies_created, movies_updated = _movies_upsert(movies, progress=progress)
        _movie_genres_sync(movies)
        users_created, users_updated = _users_upsert(users)
        record = import_record_begin(release=release, key=key, path=str(path))
    already = record.finished_at is not None
    resumed = 0 if already else record.ratings_rows
    if resumed:
        log.info("resuming the ratings of %s after %d ratings", path, resumed)
    if not already:
        ratings_write(release, record, movie_ids, progress=progress, chunk_bytes=chunk_bytes)
    with transaction.atomic():
        if not already:
            movie_stats_write()
            MovieLensImport.objects.filter(pk=record.pk).update(finished_at=timezone.now())
        tags_stored = _movie_tags_sync(tagged, movie_ids)
    result = ImportResult(
        release.format, movies_created, movies_updated, genres_created, ratings_before,
        DatasetRating.objects.count(), record.ratings_skipped, tags_stored, users_created, users_updated,
        resumed, already,
    )
    log.info("MovieLens import done: %s", result)
    return result


# The prior behind Movie.rating_score: the catalogue's mean rating, worth this many ratings.
RATING_PRIOR = 10


def movie_stats_write(movie_model=Movie, rating_model=DatasetRating) -> int:
    """Write every movie's `ratings_count` and `rating_score` from the imported ratings, in SQL: a
    GROUP BY over the ratings joined to the movies (bulk_update's CASE of 5,000 ids took 8.7 s for
    5,583 movies on MariaDB, growing with the square of the batch). The models are parameters so
    migration movie.0005 can run it on its historical models. Returns the number of movies."""
    totals = rating_model.objects.aggregate(n=Count("pk"), total=Sum("rating"))
    mean = totals["total"] / totals["n"] if totals["n"] else 0.0
    quote = connection.ops.quote_name
    movies, ratings = quote(movie_model._meta.db_table), quote(rating_model._meta.db_table)
    movie_pk = quote(movie_model._meta.pk.column)
    movie_fk, rating = (quote(rating_model._meta.get_field(name).column) for name in ("movie", "rating"))
    count, score = (quote(movie_model._meta.get_field(name).column)
                    for name in ("ratings_count", "rating_score"))
    # On MariaDB the GROUP BY otherwise walks the movie index and reads each rating's row behind
    # it at random: over 12 minutes at 25M ratings with a 128 MB buffer pool, where a scan in
    # the table's own order and a temporary table of the 62,000 movies took 17 s.
    scan = " FORCE INDEX (PRIMARY)" if connection.vendor == "mysql" else ""
    per_movie = (f"SELECT {movie_fk} AS movie, COUNT(*) AS n, SUM({rating}) AS total FROM {ratings}{scan} "
                 f"GROUP BY {movie_fk}")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {movies} SET {count} = 0, {score} = %s", [mean])  # the unrated ones
        if connection.vendor == "mysql":
            cursor.execute(f"UPDATE {movies} JOIN ({per_movie}) AS r ON r.movie = {movies}.{movie_pk} "
                           f"SET {count} = r.n, {score} = (%s + r.total) / (%s + r.n)",
                           [RATING_PRIOR * mean, RATING_PRIOR])
        else:  # SQLite 3.33+, PostgreSQL
            cursor.execute(f"UPDATE {movies} SET {count} = r.n, {score} = (%s + r.total) / (%s + r.n) "
                           f"FROM ({per_movie}) AS r WHERE r.movie = {movies}.{movie_pk}",
                           [RATING_PRIOR * mean, RATING_PRIOR])
    return movie_model.objects.count()


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


def _movie_tags_sync(tagged: dict[int, list[tuple[str, int]]], movie_ids: set[int]) -> int:
    """Make the tags of the release's movies exactly those of its tags file (none when it has
    none), each with how many users applied it; returns how many (movie, tag) pairs there are."""
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


def _users_upsert(users: list[UserRow]) -> tuple[int, int]:
    """Create the release's users and update those whose demographics changed."""
    existing = {row[0]: row[1:] for row in DatasetUser.objects.values_list("dataset_user", *USER_FIELDS)}
    to_create, to_update = [], []
    for row in users:
        values = (row.gender, row.age, row.occupation, row.zip_code)
        if row.dataset_user not in existing:
            to_create.append(DatasetUser(dataset_user=row.dataset_user, **dict(zip(USER_FIELDS, values,
                                                                                    strict=True))))
        elif existing[row.dataset_user] != values:
            to_update.append((row.dataset_user, values))
    DatasetUser.objects.bulk_create(to_create, batch_size=BATCH_SIZE)
    for user, values in to_update:
        DatasetUser.objects.filter(dataset_user=user).update(**dict(zip(USER_FIELDS, values, strict=True)))
    return len(to_create), len(to_update)


def _batches(items, size: int = BATCH_SIZE):
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
