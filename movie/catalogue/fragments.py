"""The pieces of markup every page repeats, rendered from their templates once per process.

A poster, a because-line, a poster grid's item and the genre menu are each a small template,
rendered through the template engine on the first use of what it shows and kept after (the key
is everything it shows, so an edited title is a new entry): 48 posters took 7.6 ms through the
template engine on every page, and take a few µs now. The script prefix is part of every key
because it starts every link a fragment holds.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils.safestring import SafeString, mark_safe

from movie.catalogue.models import Movie
from movie.tracking.selectors import HistoryEntry

# Fragments kept per process: more posters than every movie of ml-latest-small (9,742), at
# about 0.5 KB each.
CACHE_SIZE = 20_000


@functools.lru_cache(maxsize=CACHE_SIZE)
def _poster(script_prefix: str, movie_id: int, title: str, year: int | None, poster_url: str) -> str:
    movie = {"id": movie_id, "title": title, "year": year, "poster_url": poster_url}
    return render_to_string("catalogue/_poster.html", {"movie": movie})


@functools.lru_cache(maxsize=CACHE_SIZE)
def movie_urls(script_prefix: str, movie_id: int) -> tuple[str, str]:
    """A movie's page and its removal from the history. As {% url %} tags they were 60 of the
    200 µs each history entry took to render, 10 ms for a history of 50."""
    return reverse("movie-detail", args=[movie_id]), reverse("history-remove", args=[movie_id])


@functools.lru_cache(maxsize=CACHE_SIZE)
def _because(script_prefix: str, explaining: tuple[tuple[int, str], ...]) -> str:
    """"Because you watched A and B" under a recommended poster; the key is what it shows."""
    movies = [{"title": title, "url": movie_urls(script_prefix, movie_id)[0]}
              for movie_id, title in explaining]
    return render_to_string("catalogue/_because.html", {"explaining": movies})


@functools.lru_cache(maxsize=CACHE_SIZE)
def _dismiss(movie_id: int, title: str) -> str:
    """The "Not interested" control under a recommended poster (app.js posts the event)."""
    return render_to_string("catalogue/_dismiss.html", {"movie_id": movie_id, "title": title})


@functools.lru_cache(maxsize=CACHE_SIZE)
def _grid_item(poster: str, because: str, dismiss: str = "") -> str:
    """A grid's item: as a loop in the grid's template, 0.3 ms per 48 posters."""
    return render_to_string("catalogue/_grid_item.html", {
        "poster": mark_safe(poster), "because": mark_safe(because), "dismiss": mark_safe(dismiss)})


def grid(movies: Iterable[Movie], because: Iterable[list[Movie]] | None = None, *,
         dismissable: bool = False) -> SafeString:
    """A poster grid's items, each with its because-line when `because` (aligned with `movies`)
    names what explains it, and with a "Not interested" control when the grid is a list of
    recommendations (`dismissable`). As a template loop the 20 because-lines of a
    recommendation page cost 1.1 ms."""
    movies = list(movies)
    prefix = get_script_prefix()  # what {% url %} puts in front of every link
    posters = [_poster(prefix, m.id, m.display_title, m.year, m.poster_url) for m in movies]
    lines = [_because(prefix, tuple((m.id, m.display_title) for m in explaining)) if explaining else ""
             for explaining in because] if because is not None else [""] * len(posters)
    dismiss = [_dismiss(m.id, m.display_title) if dismissable else "" for m in movies]
    return mark_safe("".join(_grid_item(*parts) for parts in zip(posters, lines, dismiss, strict=True)))


@functools.lru_cache(maxsize=256)
def genre_options(genres: tuple[str, ...], selected: str) -> str:
    """The genre menu's options: as a loop in the catalogue's template, 0.5 ms of every page."""
    return render_to_string("catalogue/_genre_options.html", {"genres": genres, "selected": selected})


def history_rows(history: list[HistoryEntry]) -> list[tuple[HistoryEntry, str, str]]:
    """(entry, its movie's page, its removal) per entry of a visitor's history panel."""
    prefix = get_script_prefix()
    return [(entry, *movie_urls(prefix, entry.movie_id)) for entry in history]
