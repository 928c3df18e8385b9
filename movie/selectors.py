"""Reads: the catalogue, a visitor's history, paper reviews, the training snapshot."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import Count, Max, Prefetch

from movie.models import DatasetRating, Genre, Interaction, Movie, MovieTag, PaperReview
from predictors.training import TrainingData

CATALOGUE_PAGE_SIZE = 48
HISTORY_LIMIT = 50
# How long a process keeps what every page reads and an import or the admin changes rarely.
PAGE_DATA_S = 60
# Rows fetched per round trip when streaming the ratings for training.
SNAPSHOT_CHUNK = 10_000


def training_snapshot() -> TrainingData:
    """Every movie with its features and every imported rating, for `manage.py train`."""
    genres: dict[int, list[str]] = defaultdict(list)
    for movie_id, name in Movie.genres.through.objects.order_by("movie_id", "genre__name").values_list(
        "movie_id", "genre__name"
    ):
        genres[movie_id].append(name)
    # Sorted here, not by the database's collation, so the order (most applied first, then
    # name) is the one `pytorch_models.data.movie_tags` gives the same files.
    tags: dict[int, list[str]] = defaultdict(list)
    for movie_id, _, name in sorted((m, -users, name) for m, name, users in
                                    MovieTag.objects.values_list("movie_id", "name", "users")):
        tags[movie_id].append(name)
    movies = list(Movie.objects.order_by("id").values_list("id", "title", "year"))
    pairs = list(
        DatasetRating.objects.order_by("dataset_user", "movie_id")
        .values_list("dataset_user", "movie_id")
        .iterator(chunk_size=SNAPSHOT_CHUNK)
    )
    return TrainingData(
        movie_ids=[m[0] for m in movies],
        titles=[m[1] for m in movies],
        genres=[genres.get(m[0], []) for m in movies],
        years=[m[2] for m in movies],
        pairs=pairs,
        tags=[tags.get(m[0], []) for m in movies] if tags else None,
    )


def _with_genres(queryset):
    return queryset.prefetch_related(Prefetch("genres", queryset=Genre.objects.order_by("name")))


def movie_get(movie_id: int) -> Movie | None:
    return _with_genres(Movie.objects.filter(pk=movie_id)).first()


def movies_by_ids(ids: Iterable[int]) -> list[Movie]:
    """The movies with these ids, in the order given; unknown ids are left out.

    Their genres are not loaded: these rows become posters and JSON items, which show none
    (prefetching them was 3 of the 4 ms this took for 20 movies).
    """
    ids = list(ids)
    found = Movie.objects.filter(pk__in=ids).in_bulk()
    return [found[i] for i in ids if i in found]


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


def catalogue_page(*, genre: str = "", query: str = "", page: int = 1, sort: str = "popular") -> Page:
    """One page of 48 movies in the order `sort` names (CATALOGUE_SORTS); raises
    django.core.paginator.EmptyPage past the end.

    Genres are not loaded: the poster grid shows none.
    """
    movies = Movie.objects.order_by(*CATALOGUE_SORTS[sort])
    if genre:
        movies = movies.filter(genres__name=genre)
    if query:
        movies = movies.filter(title__icontains=query)
    paginator = Paginator(movies, CATALOGUE_PAGE_SIZE, allow_empty_first_page=True)
    # The count reads as many rows as the page (a title search: every title) and changes only
    # with an import: kept a minute, like the genres.
    key = "catalogue-count:" + hashlib.sha256(f"{genre}\0{query}".encode()).hexdigest()
    paginator.count = cache.get_or_set(key, movies.count, PAGE_DATA_S)
    return paginator.page(page)


def popular_movies(*, k: int, exclude: Iterable[int] = ()) -> list[tuple[Movie, float]]:
    """The k most rated movies of the imported data, with their rating counts."""
    movies = (
        Movie.objects.exclude(pk__in=list(exclude))
        .annotate(ratings=Count("dataset_ratings"))
        .order_by("-ratings", "id")[:k]
    )
    return [(movie, float(movie.ratings)) for movie in movies]


def visitor_history(visitor: str, *, limit: int = HISTORY_LIMIT) -> list[Interaction]:
    """The visitor's latest interaction per movie, newest first (with `movie` loaded)."""
    rows = (
        Interaction.objects.filter(visitor=visitor)
        .select_related("movie")
        .order_by("-created_at", "-id")
    )
    latest: dict[int, Interaction] = {}
    for row in rows.iterator(chunk_size=500):
        if row.movie_id not in latest:
            latest[row.movie_id] = row
            if len(latest) >= limit:
                break
    return list(latest.values())


def visitor_history_and_movie_ids(visitor: str) -> tuple[list[Interaction], list[int]]:
    """`visitor_history` and `visitor_movie_ids` together, in one query when the history is
    shorter than its limit (then it already names every movie): what a recommendation page
    shows and what it must exclude."""
    history = visitor_history(visitor)
    if len(history) < HISTORY_LIMIT:
        return history, [entry.movie_id for entry in history]
    return history, visitor_movie_ids(visitor)


def visitor_interactions() -> list[tuple[str, int]]:
    """Every visitor's current history as (visitor, movie id) pairs: what a retrain adds."""
    return list(Interaction.objects.values_list("visitor", "movie_id").distinct())


def visitors_recent(since) -> dict[str, str]:
    """Visitors with history written after `since` (a datetime) → their newest event's
    timestamp, as the click log writes it (what the live sweep compares watermarks with)."""
    rows = (
        Interaction.objects.filter(created_at__gte=since)
        .values("visitor")
        .annotate(newest=Max("created_at"))
        .values_list("visitor", "newest")
    )
    return {visitor: newest.strftime("%Y-%m-%dT%H:%M:%S.%fZ") for visitor, newest in rows}


def visitor_movie_ids(visitor: str) -> list[int]:
    """Every movie the visitor has clicked or rated (what recommendations must exclude)."""
    return list(Interaction.objects.filter(visitor=visitor).values_list("movie_id", flat=True).distinct())


def paper_review_list() -> list[PaperReview]:
    return list(PaperReview.objects.order_by("title"))


def paper_review_get(slug: str) -> PaperReview | None:
    return PaperReview.objects.filter(slug=slug).first()


def paper_review_for_model(model_name: str) -> PaperReview | None:
    """Every recommendation page links its model's review; reviews change only by a data
    migration or the admin, so a process may show an edit up to a minute late."""
    return cache.get_or_set(f"review:{model_name}", lambda: PaperReview.objects.filter(model_name=model_name).first(),
                            PAGE_DATA_S)
