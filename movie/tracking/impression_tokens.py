"""Impression tokens: a page that shows a list signs what it showed (`impression_token`) and
records nothing; the browser posts the token back and `movie.tracking.impressions` records it.
The page pays for an HMAC (tens of µs), not for a DynamoDB put and a Kafka send."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing

from predictors import TS_FORMAT

# The pages that show lists (what `impression_token(page=...)` accepts). "home": the
# visitor's arm in "Recommended for you"; "popular": the home page's "Popular now" row for a
# visitor without history; "recommendations": a per-model page; "similar": "More like this".
PAGES = ("home", "popular", "recommendations", "similar")

TOKEN_SALT = "impression"
# A token is posted by the page's script as soon as the page loads; a day leaves room for a
# slow network and a tab restored later, and bounds how long a copied token stays usable.
TOKEN_MAX_AGE_S = 24 * 3600
MAX_TOKEN_CHARS = 4096  # a token for 100 movies is about 1 KB


class TokenRejected(ValueError):
    """The impression token is not one this site signed for this visitor: answer 400."""


@dataclass(frozen=True)
class ShownList:
    """What a page showed one visitor, as its signed token says."""

    impression_id: str
    visitor: str
    model: str
    model_version: str | None
    page: str
    movie_ids: list[int]
    at: str  # when the page was rendered, TS_FORMAT

    @property
    def rendered_at(self) -> datetime:
        return datetime.strptime(self.at, TS_FORMAT).replace(tzinfo=UTC)


def impression_token(*, visitor: str, model: str, model_version: str | None, page: str,
                     movie_ids: list[int]) -> tuple[str, str]:
    """(impression id, signed token) for a list a page is about to show; records nothing.
    The page puts both on the list's <ul> (data-impression, data-impression-token)."""
    if page not in PAGES or model not in settings.RECOMMENDATION_MODELS:
        raise ValueError(f"impression_token: page must be one of {PAGES} and model a recommender")
    impression_id = str(uuid.uuid4())
    payload = {"id": impression_id, "visitor": visitor, "model": model, "model_version": model_version,
               "page": page, "movie_ids": [int(m) for m in movie_ids],
               "at": datetime.now(UTC).strftime(TS_FORMAT)}
    return impression_id, signing.dumps(payload, salt=TOKEN_SALT)


def impression_token_read(token, *, visitor: str) -> ShownList:
    """The list a token describes, if this site signed it for `visitor` within TOKEN_MAX_AGE_S."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise TokenRejected("'token' must be the list's impression token")
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE_S)
    except signing.SignatureExpired:
        raise TokenRejected("the impression token has expired") from None
    except (signing.BadSignature, ValueError):  # tampered, forged, or not a token at all
        raise TokenRejected("the impression token is not valid") from None
    if payload["visitor"] != visitor:
        raise TokenRejected("the impression token belongs to another visitor")
    return ShownList(impression_id=payload["id"], visitor=visitor, model=payload["model"],
                     model_version=payload["model_version"], page=payload["page"],
                     movie_ids=payload["movie_ids"], at=payload["at"])
