"""Pages: each view parses the request, calls one selector or service, and renders."""

import functools
from collections.abc import Iterable

from django.conf import settings
from django.core.paginator import EmptyPage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import get_script_prefix, reverse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.html import format_html, format_html_join
from django.utils.http import quote_etag, url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from movie import events, experiments, selectors
from movie.forms import CatalogueQueryForm
from movie.models import Interaction, Movie
from movie.posters import poster_etag, poster_svg
from movie.recommendations import model_metrics, recommendations_for, similar_movies
from movie.visitors import session_visitor, visitor_key

# Posters change only when a title is corrected; a day of caching, revalidated by ETag.
POSTER_MAX_AGE = 86_400
SIMILAR_K = 12
HOME_ROW_K = 8
RATING_VALUES = [x / 2 for x in range(1, 11)]
# Posters rendered once per process: more than every movie of ml-latest-small (9,742), at
# about 0.5 KB each.
POSTER_CACHE_SIZE = 20_000


@functools.lru_cache(maxsize=POSTER_CACHE_SIZE)
def _poster_html(script_prefix: str, movie_id: int, title: str, year: int | None, poster_url: str) -> str:
    """One poster's markup. The key is everything it shows, so an edited title is a new entry:
    48 posters took 7.6 ms through the template engine each time, and take a few µs now."""
    movie = {"id": movie_id, "title": title, "year": year, "poster_url": poster_url}
    return render_to_string("movie/_poster.html", {"movie": movie})


@functools.lru_cache(maxsize=POSTER_CACHE_SIZE)
def _movie_urls(script_prefix: str, movie_id: int) -> tuple[str, str]:
    """A movie's page and its removal from the history. As {% url %} tags they were 60 of the
    200 µs each history entry took to render, 10 ms for a history of 50."""
    return reverse("movie-detail", args=[movie_id]), reverse("history-remove", args=[movie_id])


@functools.lru_cache(maxsize=POSTER_CACHE_SIZE)
def _because_html(script_prefix: str, explaining: tuple[tuple[int, str], ...]) -> str:
    """"Because you watched A and B" under a recommended poster; the key is what it shows."""
    links = [format_html('<a href="{}">{}</a>', _movie_urls(script_prefix, movie_id)[0], title)
             for movie_id, title in explaining]
    return format_html('<p class="because muted">Because you watched {}</p>', mark_safe(" and ".join(links)))


def _grid(movies: Iterable[Movie], because: Iterable[list[Movie]] | None = None) -> str:
    """A poster grid's items, joined here from cached markup: as a template loop the 20
    because-lines of a recommendation page cost 1.1 ms, the loop itself 0.3 ms per 48 posters."""
    prefix = get_script_prefix()  # what {% url %} puts in front of every link
    posters = [_poster_html(prefix, m.id, m.title, m.year, m.poster_url) for m in movies]
    lines = [_because_html(prefix, tuple((m.id, m.title) for m in explaining)) if explaining else ""
             for explaining in because] if because is not None else [""] * len(posters)
    return mark_safe("".join(f"<li>{poster}{line}</li>" for poster, line in zip(posters, lines, strict=True)))


@functools.lru_cache(maxsize=256)
def _genre_options(genres: tuple[str, ...], selected: str) -> str:
    """The genre menu's options: as a template loop, 0.5 ms of every catalogue page."""
    return format_html_join("", '<option value="{}"{}>{}</option>',
                            ((name, mark_safe(" selected") if name == selected else "", name)
                             for name in genres))


def _history_rows(history: list[Interaction]) -> list[tuple[Interaction, str, str]]:
    prefix = get_script_prefix()
    return [(entry, *_movie_urls(prefix, entry.movie_id)) for entry in history]


def _known_visitor(request: HttpRequest) -> str | None:
    """The request's visitor id if it has one already. The home and movie pages never create
    one: a crawler or a one-page visit stays without a session, and so outside the limit on
    new sessions per address."""
    return visitor_key(request) if request.user.is_authenticated else session_visitor(request)


def _impression(request: HttpRequest, model: str, model_version: str | None, page: str,
                movies: list[Movie]) -> dict[str, str] | None:
    """The id and signed token a shown list carries (`movie.experiments`): app.js posts the
    token once the list is on screen, and a click on one of its posters names the id. None
    for a visitor without an id yet (see `_known_visitor`)."""
    visitor = _known_visitor(request)
    if not movies or visitor is None:
        return None
    impression_id, token = experiments.impression_token(
        visitor=visitor, model=model, model_version=model_version, page=page,
        movie_ids=[m.id for m in movies],
    )
    return {"id": impression_id, "token": token}


def _movie_or_404(movie_id: int):
    movie = selectors.movie_get(movie_id)
    if movie is None:
        raise Http404(f"No movie with id {movie_id}.")
    return movie


@require_GET
@ensure_csrf_cookie
def catalogue(request: HttpRequest) -> HttpResponse:
    form = CatalogueQueryForm(request.GET)
    genres = tuple(g.name for g in selectors.genre_list())
    context = {"form": form, "genre_options": _genre_options(genres, request.GET.get("genre", "")),
               "sorts": form.SORTS}
    if not form.is_valid():
        return render(request, "movie/catalogue.html", context, status=400)
    try:
        page = selectors.catalogue_page(**form.selector_kwargs())
    except EmptyPage:
        raise Http404("That page of the catalogue does not exist.") from None
    context.update(form.cleaned_data, page=page, grid=_grid(page.object_list))
    if form.is_home():
        context["home_row"] = _home_row(request)
    return render(request, "movie/catalogue.html", context)


def _home_row(request: HttpRequest) -> dict:
    """The row above the catalogue: for a visitor with a history, "Recommended for you" from
    the model its A/B arm names (`movie.experiments`), with the because-lines; otherwise, or
    while that model is untrained, "Popular now"."""
    visitor = _known_visitor(request)
    seen = selectors.visitor_movie_ids(visitor) if visitor else []
    model = experiments.visitor_arm(visitor) if seen else "popular"
    recs = recommendations_for(visitor=visitor or "", model=model, k=HOME_ROW_K, seen=seen)
    personal = bool(seen) and not recs.fallback
    movies = [m for m, _ in recs.items]
    return {
        "personal": personal,
        "model": model if personal else "popular",
        "grid": _grid(movies, recs.because_per_item if personal else None),
        # Only the arm's own list counts for the experiment (page "home").
        "impression": _impression(request, model if personal else "popular", recs.model_version,
                                  "home" if personal else "popular", movies),
    }


@require_GET
@ensure_csrf_cookie
def movie_detail(request: HttpRequest, movie_id: int) -> HttpResponse:
    movie = _movie_or_404(movie_id)
    similar = similar_movies(movie.id, k=SIMILAR_K)
    movies = [m for m, _ in similar.items]
    context = {"movie": movie, "similar": movies, "grid": _grid(movies), "rating_values": RATING_VALUES,
               "impression": _impression(request, similar.model, similar.model_version, "similar", movies)}
    return render(request, "movie/movie_detail.html", context)


@require_GET
@ensure_csrf_cookie
def recommendations(request: HttpRequest, model: str) -> HttpResponse:
    if model not in settings.RECOMMENDATION_MODELS:
        raise Http404(f"No recommender called {model!r}.")
    visitor = visitor_key(request)
    read = selectors.visitor_history_read(visitor)
    recs = recommendations_for(visitor=visitor, model=model, k=settings.RECOMMENDATIONS_K,
                               seen=read.movie_ids)
    movies = [m for m, _ in recs.items]
    context = {
        "model": model,
        "recs": recs,
        "grid": _grid(movies, recs.because_per_item),
        # A fallback list is the popular one, whichever model was asked for.
        "impression": _impression(request, "popular" if recs.fallback else recs.model, recs.model_version,
                                  "recommendations", movies),
        "history": read.entries,
        "history_rows": _history_rows(read.entries),
        "history_cap": read.cap,
        "review": selectors.paper_review_for_model(model),
    }
    return render(request, "movie/recommendations.html", context)


@require_GET
@ensure_csrf_cookie
def history(request: HttpRequest) -> HttpResponse:
    read = selectors.visitor_history_read(visitor_key(request))
    return render(request, "movie/history.html", {"history": read.entries,
                                                  "history_rows": _history_rows(read.entries),
                                                  "history_cap": read.cap})


@require_POST
def history_remove(request: HttpRequest, movie_id: int) -> HttpResponse:
    try:
        events.history_remove(visitor=visitor_key(request), movie_id=movie_id)
    except events.EventNotRecorded as exc:
        return render(request, "movie/error.html", {"message": str(exc)}, status=503)
    target = request.POST.get("next", "")
    # Only a path on this site: anything else (another host, or a bare word that redirect()
    # would try to reverse as a view name) goes to the history page.
    if not target.startswith("/") or not url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        target = "history"
    return redirect(target)


@require_GET
@ensure_csrf_cookie
def paper_list(request: HttpRequest) -> HttpResponse:
    return render(request, "movie/paper_list.html", {"reviews": selectors.paper_review_list()})


@require_GET
@ensure_csrf_cookie
def paper_review(request: HttpRequest, slug: str) -> HttpResponse:
    review = selectors.paper_review_get(slug)
    if review is None:
        raise Http404(f"No paper review {slug!r}.")
    context = {"review": review, "metrics": model_metrics(review.model_name)}
    return render(request, "movie/paper_review.html", context)


@require_GET
def poster(request: HttpRequest, movie_id: int) -> HttpResponse:
    movie = _movie_or_404(movie_id)
    svg = poster_svg(title=movie.title, year=movie.year, genres=[g.name for g in movie.genres.all()])
    etag = quote_etag(poster_etag(svg))
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["ETag"] = etag
    patch_cache_control(response, public=True, max_age=POSTER_MAX_AGE)
    return get_conditional_response(request, etag=etag, response=response)
