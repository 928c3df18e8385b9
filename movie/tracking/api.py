"""JSON endpoints: record an event or an impression, read recommendations."""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from movie.catalogue.recommendations import recommendations_for
from movie.tracking.events import (
    EventConflict,
    EventNotRecorded,
    EventRejected,
    event_record,
    idempotency_key_validate,
)
from movie.tracking.impressions import ImpressionNotRecorded, ImpressionRejected, impression_record
from movie.tracking.ratelimit import client_address, client_digest, limit, limits
from movie.tracking.visitors import session_visitor, visitor_key, visitor_resume

MAX_K = 100


class BadBody(ValueError):
    """The body is not a JSON object: answer 400 with this message."""


def _json_object(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body)
    except ValueError:  # not JSON, not UTF-8, or an integer of over 4300 digits
        raise BadBody("the body must be JSON") from None
    except RecursionError:  # nesting deeper than the parser's stack
        raise BadBody("the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise BadBody("the body must be a JSON object")
    return body


def _posted(request: HttpRequest) -> tuple[dict, str]:
    """A POSTed event's JSON object and its visitor, counted against the client address's and
    the visitor's event limits before the body is read (raises RateLimited: the middleware
    answers 429; per address first, so a client opening a session per request is held there
    before it has one). Then raises BadBody for a body that is no JSON object."""
    address = client_address(request)
    visitor = None if request.user.is_authenticated else session_visitor(request)
    if visitor is None:  # the address first: a new session is made only for a client under its limit
        limit("event_address", address)
        visitor = visitor_key(request)
        limit("event", visitor)
    else:  # a returning anonymous visitor, the common case: one Redis round trip for both
        limits(("event_address", address), ("event", visitor))
    return _json_object(request), visitor


@require_POST
def events(request: HttpRequest) -> JsonResponse:
    try:
        body, visitor = _posted(request)
    except BadBody as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    try:
        key = idempotency_key_validate(request.headers.get("Idempotency-Key"))
        visitor = visitor_resume(request, key)
        event = event_record(
            visitor=visitor, movie_id=body.get("movie_id"), kind=body.get("kind"), value=body.get("value"),
            idempotency_key=key,
            impression=body.get("impression"), position=body.get("position"), client=client_digest(request),
        )
    except EventConflict as exc:
        return JsonResponse({"error": str(exc)}, status=422)
    except EventRejected as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except EventNotRecorded as exc:
        return JsonResponse({"error": str(exc)}, status=503)
    # The visitor id is not a credential (the session cookie is): the client may know it.
    return JsonResponse({"event_id": event.event_id, "visitor": visitor}, status=202)


@require_POST
def impressions(request: HttpRequest) -> JsonResponse:
    """`{"token": <the list's data-impression-token>}`: the list was shown. Counted against the
    visitor's event limit: a page view is no more frequent than a click."""
    try:
        body, visitor = _posted(request)
    except BadBody as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    try:
        shown = impression_record(visitor=visitor, token=body.get("token"),
                                  idempotency_key=request.headers.get("Idempotency-Key"))
    except ImpressionRejected as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except ImpressionNotRecorded as exc:
        return JsonResponse({"error": str(exc)}, status=503)
    return JsonResponse({"impression": shown.impression_id}, status=202)


@require_GET
def recommendations(request: HttpRequest, model: str) -> JsonResponse:
    if model not in settings.RECOMMENDATION_MODELS:
        raise Http404(f"unknown model {model!r}")
    raw_k = request.GET.get("k", str(settings.RECOMMENDATIONS_K))
    # Not str.isdigit(): it accepts digits like '²' that int() refuses.
    if not re.fullmatch(r"[0-9]{1,3}", raw_k) or not 1 <= int(raw_k) <= MAX_K:
        return JsonResponse({"error": f"'k' must be an integer from 1 to {MAX_K}"}, status=400)
    recs = recommendations_for(visitor=visitor_key(request), model=model, k=int(raw_k))
    return JsonResponse(
        {
            "model": recs.model,
            "model_version": recs.model_version,
            "fallback": recs.fallback,
            "reason": recs.reason,
            "source": recs.source,
            "as_of_event": recs.as_of_event,
            "items": [
                {"movie_id": m.id, "title": m.display_title, "score": round(s, 6),
                 "because": [b.id for b in because]}
                for (m, s), because in zip(recs.items, recs.because_per_item, strict=True)
            ],
        }
    )
