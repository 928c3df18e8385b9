"""Reads of what visitors did: a visitor's history (the pages, the live sweep, the models'
input) and the movies it said "Not interested" to, and the visitor pairs a retrain adds to the
ratings. A movie's latest row decides where it is: a click or rating puts it in the history, a
dismissal among the dismissed; a removal deleted its older rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connections, router
from django.db.models import Max

from movie.catalogue.models import Movie
from movie.catalogue.selectors import movies_by_ids
from movie.tracking.models import Interaction
from predictors import TS_FORMAT

HISTORY_LIMIT = 50


@dataclass(frozen=True)
class HistoryEntry:
    """A movie in a visitor's history with its latest click or rating, or one it dismissed."""

    movie: Movie
    kind: str  # Interaction.Kind
    value: float | None  # the rating, None for a click
    created_at: datetime

    @property
    def movie_id(self) -> int:
        return self.movie.id

    @property
    def dismissed(self) -> bool:
        return self.kind == Interaction.Kind.DISMISS


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
    never more than VISITOR_HISTORY_MAX), dismissals among them."""
    return _entries(_history_rows(visitor, limit=min(limit, settings.VISITOR_HISTORY_MAX)))


@dataclass(frozen=True)
class VisitorHistory:
    """What a page with the history panel reads, in one statement."""

    entries: list[HistoryEntry]  # the newest HISTORY_LIMIT movies, dismissed ones too, for the panel
    movie_ids: list[int]  # clicked or rated, newest first: what the models use and lists exclude
    dismissed: list[int]  # "Not interested", newest first: what every list leaves out
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
    history, dismissed = _split(rows[:most])
    return VisitorHistory(entries=_entries(rows[:min(HISTORY_LIMIT, most)]), movie_ids=history,
                          dismissed=dismissed, capped=len(rows) > most)


def _split(rows: list[tuple[int, str, float | None, datetime]]) -> tuple[list[int], list[int]]:
    """(history, dismissed) movie ids of `_history_rows`, newest first."""
    history = [movie for movie, kind, _, _ in rows if kind != Interaction.Kind.DISMISS]
    dismissed = [movie for movie, kind, _, _ in rows if kind == Interaction.Kind.DISMISS]
    return history, dismissed


# Visitors whose rows are read per round trip while building a retrain's visitor pairs: at
# VISITOR_HISTORY_MAX rows each, at most 50,000 rows held at once.
RETRAIN_VISITOR_CHUNK = 100


def visitor_interactions(*, per_visitor: int | None = None, per_client: int | None = None,
                         dismissed: bool = False) -> list[tuple[str, int]]:
    """What a retrain adds to the ratings: (visitor, movie id) pairs of the visitors' histories,
    with what one visitor and one client can weigh bounded; `dismissed`: the pairs of the
    movies they said "Not interested" to instead, under the same bounds, which a retrain takes
    as negatives.

    Each visitor gives its newest `per_visitor` movies (settings.RETRAIN_VISITOR_MAX), never
    one whose latest row is a dismissal: "Not interested" is no positive. Each
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
                .order_by("visitor", "-created_at", "-id")
                .values_list("visitor", "movie_id", "client", "kind"))
        current, seen, kept = None, set(), 0
        for visitor, movie_id, client, kind in rows:
            if visitor != current:
                current, seen, kept = visitor, set(), 0
            if movie_id in seen or kept >= per_visitor:
                continue
            seen.add(movie_id)  # its latest row decides
            if (kind == Interaction.Kind.DISMISS) != dismissed:
                continue
            kept += 1
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


def visitor_movies(visitor: str) -> tuple[list[int], list[int]]:
    """(history, dismissed): of the visitor's newest VISITOR_HISTORY_MAX movies, those it
    clicked or rated, which the models score and lists exclude, and those it dismissed, which
    lists exclude too; newest first (older ones no longer count)."""
    return _split(_history_rows(visitor, limit=settings.VISITOR_HISTORY_MAX))


def visitor_latest_movie_ids(visitor: str) -> list[int]:
    """The newest VISITOR_HISTORY_MAX movies the visitor has clicked, rated or dismissed, newest
    first: the rows the history mirror keeps (`services.history_expire`)."""
    return [row[0] for row in _history_rows(visitor, limit=settings.VISITOR_HISTORY_MAX)]
