"""Pages: each view parses the request, calls one selector or service, and renders."""

from django.conf import settings
from django.core.paginator import EmptyPage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import quote_etag, url_has_allowed_host_and_scheme
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from movie import events, selectors
from movie.forms import CatalogueQueryForm
from movie.posters import poster_etag, poster_svg
from movie.recommendations import model_metrics, recommendations_for, similar_movies
from movie.visitors import visitor_key

# Posters change only when a title is corrected; a day of caching, revalidated by ETag.
POSTER_MAX_AGE = 86_400
SIMILAR_K = 12
RATING_VALUES = [x / 2 for x in range(1, 11)]


def _movie_or_404(movie_id: int):
    movie = selectors.movie_get(movie_id)
    if movie is None:
        raise Http404(f"No movie with id {movie_id}.")
    return movie


@require_GET
@ensure_csrf_cookie
def catalogue(request: HttpRequest) -> HttpResponse:
    form = CatalogueQueryForm(request.GET)
    context = {"form": form, "genres": selectors.genre_list()}
    if not form.is_valid():
        return render(request, "movie/catalogue.html", context, status=400)
    try:
        page = selectors.catalogue_page(**form.selector_kwargs())
    except EmptyPage:
        raise Http404("That page of the catalogue does not exist.") from None
    return render(request, "movie/catalogue.html", {**context, **form.cleaned_data, "page": page})


@require_GET
@ensure_csrf_cookie
def movie_detail(request: HttpRequest, movie_id: int) -> HttpResponse:
    movie = _movie_or_404(movie_id)
    context = {"movie": movie, "similar": similar_movies(movie.id, k=SIMILAR_K), "rating_values": RATING_VALUES}
    return render(request, "movie/movie_detail.html", context)


@require_GET
@ensure_csrf_cookie
def recommendations(request: HttpRequest, model: str) -> HttpResponse:
    if model not in settings.RECOMMENDATION_MODELS:
        raise Http404(f"No recommender called {model!r}.")
    visitor = visitor_key(request)
    context = {
        "model": model,
        "recs": recommendations_for(visitor=visitor, model=model, k=settings.RECOMMENDATIONS_K),
        "history": selectors.visitor_history(visitor),
        "review": selectors.paper_review_for_model(model),
    }
    return render(request, "movie/recommendations.html", context)


@require_GET
@ensure_csrf_cookie
def history(request: HttpRequest) -> HttpResponse:
    context = {"history": selectors.visitor_history(visitor_key(request))}
    return render(request, "movie/history.html", context)


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
