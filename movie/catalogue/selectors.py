"""Reads of the catalogue: movies and genres, a catalogue page, paper reviews, the training
snapshot. A visitor's history is `movie.tracking.selectors`'."""

from __future__ import annotations

import hashlib
import time
from array import array
from collections import defaultdict
from collections.abc import Iterable

import numpy as np
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import BigIntegerField, Count, Func, Prefetch, Q

from movie.catalogue.models import DatasetRating, Genre, Movie, MovieTag, PaperReview
from movie.catalogue.titles import query_article_split
from predictors.training import TrainingData

CATALOGUE_PAGE_SIZE = 48
# How long a process keeps what every page reads and an import or the admin changes rarely.
PAGE_DATA_S = 60
# Rows fetched per round trip when streaming the ratings for training.
SNAPSHOT_CHUNK = 10_000


class EpochSeconds(Func):
    """A datetime column as whole seconds since 1970 (UTC, as Django stores it), computed by the
    database: 25 million datetimes through the ORM would take minutes."""

    output_field = BigIntegerField()

    def as_mysql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, **extra,
                           template="TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', %(expressions)s)")

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, **extra,
                           template="CAST(ROUND((julianday(%(expressions)s) - 2440587.5) * 86400) "
                                    "AS INTEGER)")


def training_snapshot(*, stamps: bool = False) -> TrainingData:
    """Every movie with its features and every imported rating (an (E, 2) int64 array of user
    and movie: at 25M ratings 400 MB, where a list of tuples held about 3 GB), for `manage.py
    train`; with `stamps`, when each was rated (what the sequence models train on, 8 bytes a
    rating)."""
    genres: dict[int, list[str]] = defaultdict(list)
    for movie_id, name in Movie.genres.through.objects.order_by("movie_id", "genre__name").values_list(
        "movie_id", "genre__name"
    ):
        genres[movie_id].append(name)
    # Sorted here, not by the database's collation, so the order (most applied first, then
    # name) is the one `pytorch_models.data.movielens.movie_tags` gives the same files.
    tags: dict[int, list[str]] = defaultdict(list)
    for movie_id, _, name in sorted((m, -users, name) for m, name, users in
                                    MovieTag.objects.values_list("movie_id", "name", "users")):
        tags[movie_id].append(name)
    movies = list(Movie.objects.order_by("id").values_list("id", "title", "year"))
    ratings = DatasetRating.objects.order_by("dataset_user", "movie_id")
    columns = ("dataset_user", "movie_id", *(["at"] if stamps else []))
    if stamps:
        ratings = ratings.annotate(at=EpochSeconds("rated_at"))
    flat = array("q")
    for row in ratings.values_list(*columns).iterator(chunk_size=SNAPSHOT_CHUNK):
        flat.extend(row)
    table = np.frombuffer(flat, dtype=np.int64).reshape(-1, len(columns))
    return TrainingData(
        movie_ids=[m[0] for m in movies],
        titles=[m[1] for m in movies],
        genres=[genres.get(m[0], []) for m in movies],
        years=[m[2] for m in movies],
        pairs=np.ascontiguousarray(table[:, :2]),
        tags=[tags.get(m[0], []) for m in movies] if tags else None,
        stamps=table[:, 2].copy() if stamps else None,
    )


def _with_genres(queryset):
    return queryset.prefetch_related(Prefetch("genres", queryset=Genre.objects.order_by("name")))


# Movie rows are kept per process for PAGE_DATA_S, like the genres: every page shows 12 to 68
# of them, and reading them was a quarter of a movie page's CPU (the row and its genres) and a
# sixth of a recommendation page's. A change saved through the ORM (the admin, an import's
# saves) drops the row here at once (`movie_rows_forget`); other processes show it within the
# minute. At most one entry per movie of the catalogue (an expired one is replaced when read).
# The rows are shared between requests and threads: read them, never assign to them.
_movie_rows: dict[int, tuple[float, Movie]] = {}  # id -> (expires, row without genres)
_movie_pages: dict[int, tuple[float, Movie]] = {}  # id -> (expires, row with its genres)


def _kept(rows: dict[int, tuple[float, Movie]], movie_id: int, now: float) -> Movie | None:
    found = rows.get(movie_id)
    return found[1] if found is not None and found[0] > now else None


def movie_get(movie_id: int) -> Movie | None:
    """The movie with its genres (ordered by name), or None."""
    now = time.monotonic()
    movie = _kept(_movie_pages, movie_id, now)
    if movie is None:
        movie = _with_genres(Movie.objects.filter(pk=movie_id)).first()
        if movie is not None:
            _movie_pages[movie_id] = (now + PAGE_DATA_S, movie)
    return movie


def movies_by_ids(ids: Iterable[int]) -> list[Movie]:
    """The movies with these ids, in the order given; unknown ids are left out.

    Their genres are not loaded: these rows become posters and JSON items, which show none
    (prefetching them was 3 of the 4 ms this took for 20 movies).
    """
    ids, now = list(ids), time.monotonic()
    found = {i: movie for i in ids if (movie := _kept(_movie_rows, i, now)) is not None}
    if missing := [i for i in ids if i not in found]:
        for movie_id, movie in Movie.objects.filter(pk__in=missing).in_bulk().items():
            found[movie_id] = movie
            _movie_rows[movie_id] = (now + PAGE_DATA_S, movie)
    return [found[i] for i in ids if i in found]


def movie_rows_forget(movie_id: int | None = None) -> None:
    """Drop one movie's kept rows (None: every movie's). The catalogue app's `ready()` calls it
    when a movie is saved or deleted, or its genres change."""
    if movie_id is None:
        _movie_rows.clear()
        _movie_pages.clear()
    else:
        _movie_rows.pop(movie_id, None)
        _movie_pages.pop(movie_id, None)


def page_data_clear() -> None:
    """Forget everything kept per process for the pages (the tests start each test so)."""
    cache.clear()
    _movie_rows.clear()
    _movie_pages.clear()


def genre_list() -> list[Genre]:
    """Every catalogue page lists the genres; they change only on an import (a minute late)."""
    return cache.get_or_set("genres", lambda: list(Genre.objects.order_by("name")), PAGE_DATA_S)


# The catalogue's orders, each served by an index on Movie (the first is the home page's).
CATALOGUE_SORTS = {
    "popular": ("-ratings_count", "id"),
    "newest": ("-year", "id"),  # movies without a year last (MySQL and SQLite sort NULL lowest)
    "rated": ("-rating_score", "id"),
    "title": ("title", "id"),
}


def title_search(query: str) -> Q:
    """Titles holding `query` as stored ("Matrix, The") or as shown ("The Matrix")."""
    found = Q(title__icontains=query)
    split = query_article_split(query)
    if split is not None:
        article, rest = split
        found |= Q(title__icontains=rest) & Q(title__icontains=f", {article}")
    return found


def catalogue_page(*, genre: str = "", query: str = "", page: int = 1, sort: str = "popular") -> Page:
    """One page of 48 movies in the order `sort` names (CATALOGUE_SORTS); raises
    django.core.paginator.EmptyPage past the end.

    Genres are not loaded: the poster grid shows none.
    """
    movies = Movie.objects.order_by(*CATALOGUE_SORTS[sort])
    if genre:
        movies = movies.filter(genres__name=genre)
    if query:
        movies = movies.filter(title_search(query))
    paginator = Paginator(movies, CATALOGUE_PAGE_SIZE, allow_empty_first_page=True)
    # The count and the page's movie ids read as many rows as the page (a title search: every
    # title) and change only with an import or an edit: kept a minute, like the genres, and
    # the rows come from `movies_by_ids`. The cache holds a bounded number of keys (locmem
    # culls), so made-up searches cannot grow it.
    key = hashlib.sha256(f"{genre}\0{query}".encode()).hexdigest()
    paginator.count = cache.get_or_set("catalogue-count:" + key, movies.count, PAGE_DATA_S)
    number = paginator.validate_number(page)
    start = (number - 1) * CATALOGUE_PAGE_SIZE
    ids = cache.get_or_set(
        f"catalogue-ids:{key}:{sort}:{number}",
        lambda: list(movies.values_list("id", flat=True)[start:start + CATALOGUE_PAGE_SIZE]),
        PAGE_DATA_S,
    )
    return Page(movies_by_ids(ids), number, paginator)


def popular_movies(*, k: int, exclude: Iterable[int] = ()) -> list[tuple[Movie, float]]:
    """The k most rated movies of the imported data, with their rating counts."""
    movies = (
        Movie.objects.exclude(pk__in=list(exclude))
        .annotate(ratings=Count("dataset_ratings"))
        .order_by("-ratings", "id")[:k]
    )
    return [(movie, float(movie.ratings)) for movie in movies]


def paper_review_list() -> list[PaperReview]:
    return list(PaperReview.objects.order_by("title"))


def paper_review_get(slug: str) -> PaperReview | None:
    return PaperReview.objects.filter(slug=slug).first()


def paper_review_for_model(model_name: str) -> PaperReview | None:
    """Every recommendation page links its model's review; reviews change only by a data
    migration or the admin, so a process may show an edit up to a minute late."""
    return cache.get_or_set(f"review:{model_name}",
                            lambda: PaperReview.objects.filter(model_name=model_name).first(), PAGE_DATA_S)
