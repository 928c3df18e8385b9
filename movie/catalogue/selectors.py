"""Reads: the catalogue, a visitor's history, paper reviews, the training snapshot."""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connections, router
from django.db.models import Count, Max, Prefetch
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from movie.models import DatasetRating, Genre, Interaction, Movie, MovieTag, PaperReview
from predictors import TS_FORMAT
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
    # name) is the one `pytorch_models.data.movielens.movie_tags` gives the same files.
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


# Movie rows are kept per process for PAGE_DATA_S, like the genres: every page shows 12 to 68
# of them, and reading them was a quarter of a movie page's CPU (the row and its genres) and a
# sixth of a recommendation page's. A change saved through the ORM (the admin, an import's
# saves) drops the row here at once (`_movie_changed`); other processes show it within the
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


@receiver([post_save, post_delete], sender=Movie)
@receiver(m2m_changed, sender=Movie.genres.through)
def _movie_changed(sender, instance, **kwargs) -> None:
    """Drop a saved or deleted movie (or one whose genres changed) from this process's rows;
    a genre's side of the relation (instance a Genre) drops them all."""
    if isinstance(instance, Movie):
        _movie_rows.pop(instance.pk, None)
        _movie_pages.pop(instance.pk, None)
    else:
        _movie_rows.clear()
        _movie_pages.clear()


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


@dataclass(frozen=True)
class HistoryEntry:
    """A movie in a visitor's history with its latest click or rating."""

    movie: Movie
    kind: str  # Interaction.Kind
    value: float | None  # the rating, None for a click
    created_at: datetime

    @property
    def movie_id(self) -> int:
        return self.movie.id


def _history_rows(visitor: str, *, limit: int) -> list[tuple[int, str, float | None, datetime]]:
    """(movie id, kind, value, created_at) of the visitor's latest interaction with each movie,
    newest first, at most `limit` movies.

    One SQL statement whose LIMIT bounds what it sends: MySQL's client buffers a whole result,
    so a statement over every row of a visitor who clicked for months read them all on every
    page. The window picks each movie's latest row on the server (the visitor's rows through
    the (visitor, -created_at) index). Through the ORM (its query, the join to the movie, the
    model objects) this read took 0.5 ms of every recommendation and history page, the
    statement 0.07 ms. The datetimes go through the converters the ORM applies to that column."""
    meta = Interaction._meta
    connection = connections[router.db_for_read(Interaction)]
    column = meta.get_field("created_at").get_col(meta.db_table)
    converters = connection.ops.get_db_converters(column)
    name = {f: connection.ops.quote_name(meta.get_field(f).column)
            for f in ("movie", "kind", "value", "created_at", "visitor", "id")}
    newest = f"{name['created_at']} DESC, {name['id']} DESC"
    sql = (f"SELECT {name['movie']}, {name['kind']}, {name['value']}, {name['created_at']} FROM ("
           f"SELECT {name['movie']}, {name['kind']}, {name['value']}, {name['created_at']}, {name['id']}, "
           f"ROW_NUMBER() OVER (PARTITION BY {name['movie']} ORDER BY {newest}) AS nth "
           f"FROM {connection.ops.quote_name(meta.db_table)} WHERE {name['visitor']} = %s"
           f") latest WHERE nth = 1 ORDER BY {newest} LIMIT %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [visitor, limit])
        rows = cursor.fetchall()
    found = []
    for movie_id, kind, value, created_at in rows:
        for convert in converters:
            created_at = convert(created_at, column, connection)
        found.append((movie_id, kind, value, created_at))
    return found


def _entries(rows: list[tuple[int, str, float | None, datetime]]) -> list[HistoryEntry]:
    movies = {movie.id: movie for movie in movies_by_ids(row[0] for row in rows)}
    return [HistoryEntry(movies[m], kind, value, at) for m, kind, value, at in rows if m in movies]


def visitor_history(visitor: str, *, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """The visitor's latest interaction per movie, newest first, at most `limit` movies (and
    never more than VISITOR_HISTORY_MAX)."""
    return _entries(_history_rows(visitor, limit=min(limit, settings.VISITOR_HISTORY_MAX)))


@dataclass(frozen=True)
class VisitorHistory:
    """What a page with the history panel reads, in one statement."""

    entries: list[HistoryEntry]  # the newest HISTORY_LIMIT movies, for the panel
    movie_ids: list[int]  # the newest VISITOR_HISTORY_MAX movies: what the models use and lists exclude
    capped: bool  # the visitor has older movies too, which no longer shape the recommendations

    @property
    def cap(self) -> int | None:
        """How many movies shape the recommendations, when older ones no longer do."""
        return len(self.movie_ids) if self.capped else None


def visitor_history_read(visitor: str) -> VisitorHistory:
    """The panel's entries, the movie ids a recommendation page scores and excludes, and
    whether older movies fell out (one row past VISITOR_HISTORY_MAX says so)."""
    most = settings.VISITOR_HISTORY_MAX
    rows = _history_rows(visitor, limit=most + 1)
    return VisitorHistory(entries=_entries(rows[:min(HISTORY_LIMIT, most)]),
                          movie_ids=[row[0] for row in rows[:most]], capped=len(rows) > most)


# Visitors whose rows are read per round trip while building a retrain's visitor pairs: at
# VISITOR_HISTORY_MAX rows each, at most 50,000 rows held at once.
RETRAIN_VISITOR_CHUNK = 100


def visitor_interactions(*, per_visitor: int | None = None,
                         per_client: int | None = None) -> list[tuple[str, int]]:
    """What a retrain adds to the ratings: (visitor, movie id) pairs of the visitors' histories,
    with what one visitor and one client can weigh bounded.

    Each visitor gives its newest `per_visitor` movies (settings.RETRAIN_VISITOR_MAX). Each
    client (`Interaction.client`, its address as the rate limits see it; a row without one is a
    client of its own per visitor) gives at most `per_client` pairs (settings.RETRAIN_CLIENT_MAX,
    0: no cap), spread over its visitors a movie at a time, newest first (`_spread`). A hard cap,
    not a lower weight per pair: every model trains on unweighted edges, and the cap bounds the
    training data too. Spreading rather than keeping whole histories is what defeats a farm:
    many visitors behind one address each keep one movie, which links no two movies, while a
    household of a few visitors keeps each one's newest clicks. Deterministic (visitor ids in
    order), so the same rows give the same pairs and the retrain can tell nothing changed."""
    per_visitor = settings.RETRAIN_VISITOR_MAX if per_visitor is None else per_visitor
    per_client = settings.RETRAIN_CLIENT_MAX if per_client is None else per_client
    # (client, "") or ("", visitor) -> visitor -> movies, newest first
    by_client: dict[tuple[str, str], dict[str, list[int]]] = defaultdict(dict)
    visitors = list(Interaction.objects.order_by("visitor").values_list("visitor", flat=True).distinct())
    for start in range(0, len(visitors), RETRAIN_VISITOR_CHUNK):
        rows = (Interaction.objects.filter(visitor__in=visitors[start:start + RETRAIN_VISITOR_CHUNK])
                .order_by("visitor", "-created_at", "-id").values_list("visitor", "movie_id", "client"))
        current, seen = None, set()
        for visitor, movie_id, client in rows:
            if visitor != current:
                current, seen = visitor, set()
            if movie_id in seen or len(seen) >= per_visitor:
                continue
            seen.add(movie_id)
            by_client[(client, "") if client else ("", visitor)].setdefault(visitor, []).append(movie_id)
    pairs = []
    for key in sorted(by_client):
        pairs.extend(_spread(by_client[key], per_client if per_client > 0 else None))
    return pairs


def _spread(histories: dict[str, list[int]], budget: int | None) -> list[tuple[str, int]]:
    """At most `budget` (visitor, movie) pairs (None: all) from one client's visitors' histories
    (newest first): every visitor's newest movie, then every visitor's second newest, ..."""
    kept: list[tuple[str, int]] = []
    active, depth = sorted(histories), 0
    while active and (budget is None or len(kept) < budget):
        room = len(active) if budget is None else budget - len(kept)
        kept.extend((visitor, histories[visitor][depth]) for visitor in active[:room])
        depth += 1
        active = [visitor for visitor in active if len(histories[visitor]) > depth]
    return kept


def visitors_recent(since) -> dict[str, str]:
    """Visitors with history written after `since` (a datetime) → their newest event's
    timestamp, as the click log writes it (what the live sweep compares watermarks with)."""
    rows = (
        Interaction.objects.filter(created_at__gte=since)
        .values("visitor")
        .annotate(newest=Max("created_at"))
        .values_list("visitor", "newest")
    )
    return {visitor: newest.strftime(TS_FORMAT) for visitor, newest in rows}


def visitor_movie_ids(visitor: str) -> list[int]:
    """The newest VISITOR_HISTORY_MAX movies the visitor has clicked or rated, newest first:
    what the models score and recommendations exclude (older ones no longer count)."""
    return [row[0] for row in _history_rows(visitor, limit=settings.VISITOR_HISTORY_MAX)]


def paper_review_list() -> list[PaperReview]:
    return list(PaperReview.objects.order_by("title"))


def paper_review_get(slug: str) -> PaperReview | None:
    return PaperReview.objects.filter(slug=slug).first()


def paper_review_for_model(model_name: str) -> PaperReview | None:
    """Every recommendation page links its model's review; reviews change only by a data
    migration or the admin, so a process may show an edit up to a minute late."""
    return cache.get_or_set(f"review:{model_name}",
                            lambda: PaperReview.objects.filter(model_name=model_name).first(), PAGE_DATA_S)
