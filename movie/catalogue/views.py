"""Pages: each view parses the request, calls one selector or service, and renders."""

from django.conf import settings
from django.core.paginator import EmptyPage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import quote_etag, url_has_allowed_host_and_scheme
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from movie.catalogue import selectors
from movie.catalogue.forms import CatalogueQueryForm
from movie.catalogue.fragments import genre_options, grid, history_rows
from movie.catalogue.models import Movie
from movie.catalogue.posters import poster_etag, poster_svg
from movie.catalogue.recommendations import model_metrics, recommendations_for, similar_movies
from movie.experiments.selectors import visitor_arm
from movie.tracking import events, removals
from movie.tracking.impression_tokens import impression_token
from movie.tracking.selectors import visitor_history_read, visitor_movies
from movie.tracking.visitors import session_visitor, visitor_key

# Posters change only when a title is corrected; a day of caching, revalidated by ETag.
POSTER_MAX_AGE = 86_400
SIMILAR_K = 12
HOME_ROW_K = 8
RATING_VALUES = [x / 2 for x in range(1, 11)]


def _known_visitor(request: HttpRequest) -> str | None:
    """The request's visitor id if it has one already. The home and movie pages never create
    one: a crawler or a one-page visit stays without a session, and so outside the limit on
    new sessions per address."""
    return visitor_key(request) if request.user.is_authenticated else session_visitor(request)


def _impression(request: HttpRequest, model: str, model_version: str | None, page: str,
                movies: list[Movie]) -> dict[str, str] | None:
    """The id and signed token a shown list carries (`impression_tokens`): app.js posts the
    token once the list is on screen, and a click on one of its posters names the id. None
    for a visitor without an id yet (see `_known_visitor`)."""
    visitor = _known_visitor(request)
    if not movies or visitor is None:
        return None
    impression_id, token = impression_token(
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
    context = {"form": form, "genre_options": genre_options(genres, request.GET.get("genre", "")),
               "sorts": form.SORTS}
    if not form.is_valid():
        return render(request, "catalogue/catalogue.html", context, status=400)
    try:
        page = selectors.catalogue_page(**form.selector_kwargs())
    except EmptyPage:
        raise Http404("That page of the catalogue does not exist.") from None
    context.update(form.cleaned_data, page=page, grid=grid(page.object_list))
    if form.is_home():
        context["home_row"] = _home_row(request)
    return render(request, "catalogue/catalogue.html", context)


def _home_row(request: HttpRequest) -> dict:
    """The row above the catalogue: for a visitor with a history, "Recommended for you" from
    the model its A/B arm names (`visitor_arm`), with the because-lines; otherwise, or while
    that model is untrained, "Popular now"."""
    visitor = _known_visitor(request)
    seen, dismissed = visitor_movies(visitor) if visitor else ([], [])
    model = visitor_arm(visitor) if seen else "popular"
    recs = recommendations_for(visitor=visitor or "", model=model, k=HOME_ROW_K, seen=seen,
                               dismissed=dismissed)
    personal = bool(seen) and not recs.fallback
    movies = [m for m, _ in recs.items]
    return {
        "personal": personal,
        "model": model if personal else "popular",
        "grid": grid(movies, recs.because_per_item if personal else None, dismissable=visitor is not None),
        # Only the arm's own list counts for the experiment (page "home").
        "impression": _impression(request, model if personal else "popular", recs.model_version,
                                  "home" if personal else "popular", movies),
    }


@require_GET
@ensure_csrf_cookie
def movie_detail(request: HttpRequest, movie_id: int) -> HttpResponse:
    movie = _movie_or_404(movie_id)
    visitor = _known_visitor(request)
    similar = similar_movies(movie.id, k=SIMILAR_K, exclude=visitor_movies(visitor)[1] if visitor else ())
    movies = [m for m, _ in similar.items]
    context = {"movie": movie, "similar": movies, "grid": grid(movies, dismissable=visitor is not None),
               "rating_values": RATING_VALUES,
               "impression": _impression(request, similar.model, similar.model_version, "similar", movies)}
    return render(request, "catalogue/movie_detail.html", context)


@require_GET
@ensure_csrf_cookie
def recommendations(request: HttpRequest, model: str) -> HttpResponse:
    if model not in settings.RECOMMENDATION_MODELS:
        raise Http404(f"No recommender called {model!r}.")
    visitor = visitor_key(request)
    read = visitor_history_read(visitor)
    recs = recommendations_for(visitor=visitor, model=model, k=settings.RECOMMENDATIONS_K,
                               seen=read.movie_ids, dismissed=read.dismissed)
    movies = [m for m, _ in recs.items]
    context = {
        "model": model,
        "recs": recs,
        "grid": grid(movies, recs.because_per_item, dismissable=True),
        # A fallback list is the popular one, whichever model was asked for.
        "impression": _impression(request, "popular" if recs.fallback else recs.model, recs.model_version,
                                  "recommendations", movies),
        "history": read.entries,
        "history_rows": history_rows(read.entries),
        "history_cap": read.cap,
        "review": selectors.paper_review_for_model(model),
    }
    return render(request, "catalogue/recommendations.html", context)


@require_GET
@ensure_csrf_cookie
def history(request: HttpRequest) -> HttpResponse:
    read = visitor_history_read(visitor_key(request))
    return render(request, "catalogue/history.html", {"history": read.entries,
                                                  "history_rows": history_rows(read.entries),
                                                  "history_cap": read.cap})


@require_POST
def history_remove(request: HttpRequest, movie_id: int) -> HttpResponse:
    try:
        removals.history_remove(visitor=visitor_key(request), movie_id=movie_id)
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
    return render(request, "catalogue/paper_list.html", {"reviews": selectors.paper_review_list()})


@require_GET
@ensure_csrf_cookie
def paper_review(request: HttpRequest, slug: str) -> HttpResponse:
    review = selectors.paper_review_get(slug)
    if review is None:
        raise Http404(f"No paper review {slug!r}.")
    context = {"review": review, "metrics": model_metrics(review.model_name)}
    return render(request, "catalogue/paper_review.html", context)


@require_GET
def poster(request: HttpRequest, movie_id: int) -> HttpResponse:
    movie = _movie_or_404(movie_id)
    svg = poster_svg(title=movie.display_title, year=movie.year, genres=[g.name for g in movie.genres.all()])
    etag = quote_etag(poster_etag(svg))
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["ETag"] = etag
    patch_cache_control(response, public=True, max_age=POSTER_MAX_AGE)
    return get_conditional_response(request, etag=etag, response=response)
