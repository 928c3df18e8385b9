"""Recording what visitors do: the one place an event enters the pipeline.

Order of writes, so that a failed request leaves nothing behind:
1. DynamoDB `clicklog` (the durable record);
2. the `Interaction` mirror, in a transaction that stays open until
3. Kafka has acknowledged the notification (acks=all).
If 1 fails, nothing was written; if 2 or 3 fails, the transaction rolls back and the
click-log item is deleted again. Either way the request answers 503 within the bounds in
`clicklog` and `stream`, which end before the browser stops waiting.
The worker reads histories from the click log, so a notification whose event was
compensated away changes nothing.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import datetime, timezone

from botocore.exceptions import BotoCoreError, ClientError
from django.db import transaction

from movie import clicklog, stream
from movie.clicklog import Event
from movie.models import Interaction, Movie
from predictors.visitor_state import visitor_forget

log = logging.getLogger(__name__)

PUBLIC_KINDS = ("click", "rate")
RATING_MIN, RATING_MAX, RATING_STEP = 0.5, 5.0, 0.5
MOVIE_ID_MIN, MOVIE_ID_MAX = 1, 2**31 - 1  # the database column's range


class EventRejected(ValueError):
    """The request is wrong: answer 400 with this message."""


class EventNotRecorded(RuntimeError):
    """A backing service failed; nothing was kept. Answer 503."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _at(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def event_validate(*, movie_id, kind, value) -> tuple[int, str, float | None]:
    """Check a public event's fields; return them normalised or raise EventRejected."""
    if kind not in PUBLIC_KINDS:
        raise EventRejected(f"'kind' must be one of {', '.join(PUBLIC_KINDS)}")
    if isinstance(movie_id, bool) or not isinstance(movie_id, int):
        raise EventRejected("'movie_id' must be an integer")
    if not MOVIE_ID_MIN <= movie_id <= MOVIE_ID_MAX:
        raise EventRejected(f"'movie_id' must be from {MOVIE_ID_MIN} to {MOVIE_ID_MAX}")
    if not Movie.objects.filter(pk=movie_id).exists():
        raise EventRejected(f"no movie with id {movie_id}")
    if kind == "click":
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


def _record(event: Event, mirror) -> Event:
    try:
        clicklog.event_put(event)
    except (BotoCoreError, ClientError) as exc:  # nothing was kept: nothing to compensate
        log.exception("event %s not recorded: the click log is unreachable", event.event_id)
        raise EventNotRecorded("the event could not be recorded, please try again") from exc
    try:
        with transaction.atomic():
            mirror()
            stream.publish(visitor=event.visitor, payload=event.as_dict())
    except Exception as exc:
        log.exception("event %s not recorded; compensating the click log", event.event_id)
        clicklog.event_delete(event)
        raise EventNotRecorded("the event could not be recorded, please try again") from exc
    return event


def event_record(*, visitor: str, movie_id, kind, value=None) -> Event:
    """Validate and record a click or a rating; returns the stored event."""
    movie_id, kind, value = event_validate(movie_id=movie_id, kind=kind, value=value)
    event = Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=movie_id, kind=kind, ts=_now(), value=value)

    def mirror():
        Interaction.objects.create(
            visitor=visitor, movie_id=movie_id, kind=kind, value=value, event_id=event.event_id, created_at=_at(event.ts)
        )

    return _record(event, mirror)


def history_remove(*, visitor: str, movie_id: int) -> Event | None:
    """Take a movie out of a visitor's history. The log keeps the clicks and gains a
    `remove` event, so the worker's replay drops the movie and nothing is lost."""
    if not Interaction.objects.filter(visitor=visitor, movie_id=movie_id).exists():
        return None
    event = Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=movie_id, kind="remove", ts=_now())
    return _record(event, lambda: Interaction.objects.filter(visitor=visitor, movie_id=movie_id).delete())


def history_move(*, from_visitor: str, to_visitor: str) -> int:
    """Give an anonymous session's history to the account it signed up or logged in as.
    Returns how many events moved; both visitors' workers are notified."""
    if from_visitor == to_visitor:
        return 0
    moved = clicklog.events_move(from_visitor=from_visitor, to_visitor=to_visitor)
    if not moved:
        return 0
    Interaction.objects.filter(visitor=from_visitor).update(visitor=to_visitor)
    for visitor in (from_visitor, to_visitor):
        visitor_forget(visitor)  # the moved events sort before its watermark: replay the whole log
        stream.publish(visitor=visitor, payload={"visitor": visitor, "kind": "moved", "ts": _now()})
    return len(moved)


def visitor_refresh(*, visitor: str) -> None:
    """Ask the live workers to re-derive `visitor` on the live versions (after a retrain)."""
    stream.publish(visitor=visitor, payload={"visitor": visitor, "kind": "refresh", "ts": _now()})
