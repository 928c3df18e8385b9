"""The fields of a public event (a click, a rating or a "Not interested"), checked before
anything is written: `movie.tracking.events` records only what passes, and a request that fails
answers 400 with the message."""

from __future__ import annotations

import math
import uuid

from movie.catalogue.models import Movie
from movie.tracking import statements

PUBLIC_KINDS = ("click", "rate", "dismiss")
RATING_MIN, RATING_MAX, RATING_STEP = 0.5, 5.0, 0.5
MOVIE_ID_MIN, MOVIE_ID_MAX = 1, 2**31 - 1  # the database column's range
POSITION_MIN, POSITION_MAX = 1, 100  # a shown list holds at most 100 movies (api.MAX_K)


class EventRejected(ValueError):
    """The request is wrong: answer 400 with this message."""


def idempotency_key_validate(key) -> str | None:
    """The client's idempotency key as a canonical UUID string (None if it sent none)."""
    if key is None or key == "":
        return None
    try:
        if len(key) > 64:
            raise ValueError(key)
        return str(uuid.UUID(key))
    except ValueError:
        raise EventRejected("the idempotency key must be a UUID") from None


def event_validate(*, movie_id, kind, value) -> tuple[int, str, float | None]:
    """Check a public event's fields; return them normalised or raise EventRejected."""
    if kind not in PUBLIC_KINDS:
        raise EventRejected(f"'kind' must be one of {', '.join(PUBLIC_KINDS)}")
    if isinstance(movie_id, bool) or not isinstance(movie_id, int):
        raise EventRejected("'movie_id' must be an integer")
    if not MOVIE_ID_MIN <= movie_id <= MOVIE_ID_MAX:
        raise EventRejected(f"'movie_id' must be from {MOVIE_ID_MIN} to {MOVIE_ID_MAX}")
    if statements.first(Movie, ("id",), id=movie_id) is None:
        raise EventRejected(f"no movie with id {movie_id}")
    if kind != "rate":
        if value is not None:
            raise EventRejected("'value' is only allowed with kind 'rate'")
        return movie_id, kind, None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EventRejected("a rating needs a numeric 'value' from 0.5 to 5")
    try:
        value = float(value)  # a JSON integer can be any length; float() refuses the huge ones
    except OverflowError:
        raise EventRejected("'value' must be between 0.5 and 5 in steps of 0.5") from None
    if not math.isfinite(value):
        raise EventRejected("a rating needs a numeric 'value' from 0.5 to 5")
    if not RATING_MIN <= value <= RATING_MAX or (value / RATING_STEP) % 1:
        raise EventRejected("'value' must be between 0.5 and 5 in steps of 0.5")
    return movie_id, kind, float(value)


def attribution_validate(*, kind: str, impression, position) -> tuple[str | None, int | None]:
    """Check a click's list fields (the impression id and the poster's position, both
    optional); return them normalised or raise EventRejected."""
    if impression is None and position is None:
        return None, None
    if kind != "click":
        raise EventRejected("'impression' and 'position' are only allowed with kind 'click'")
    if impression is None:
        raise EventRejected("'position' needs the 'impression' of its list")
    try:
        if not isinstance(impression, str) or len(impression) > 64:
            raise ValueError(impression)
        impression = str(uuid.UUID(impression))
    except ValueError:
        raise EventRejected("'impression' must be the id of a list on the page") from None
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)
                                 or not POSITION_MIN <= position <= POSITION_MAX):
        raise EventRejected(f"'position' must be an integer from {POSITION_MIN} to {POSITION_MAX}")
    return impression, position
