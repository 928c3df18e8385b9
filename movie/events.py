"""Recording what visitors do: the one place an event enters the pipeline.

Every answer 202 has its event in the click log, in the history mirror and on Kafka; an
event answered anything else never reaches the models. The writes, in order:
1. the DynamoDB `clicklog` item, marked pending (the workers never apply it);
2. the `Interaction` mirror, committed;
3. Kafka (acks=all): the workers' notification;
4. the click-log item again, confirmed: from now on the workers apply it (a worker that read
   it still pending, milliseconds before, looks again: `predictors.live`).
A failure in 2 deletes the item; in 3 or 4 the item and then the mirror row are undone, and
the request answers 503: nothing was applied, since the item was still pending. A process that
dies after 1 leaves a pending item nobody applies; after 2 or 3 the event is in the visitor's
history, where it can be removed, and never applied unless the browser's retry confirms it.
The browser sends an idempotency key, which becomes the event id: a retry of an event the
mirror holds finishes whatever the first try left undone and answers 202 again, without a
second row. docs/design.md has the whole argument.
A click on a poster of a shown list carries the list's impression id and the poster's position;
`movie.impressions` decides whether the list earned it, and the event keeps the answer.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from datetime import datetime, timedelta, timezone

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import IntegrityError, transaction

from eventstore import clicklog, stream
from eventstore.clicklog import Event
from movie.impressions import click_attribution
from movie.models import Interaction, Movie
from predictors.visitor_state import GRACE_S, visitor_forget, visitors_wait

log = logging.getLogger(__name__)

PUBLIC_KINDS = ("click", "rate")
RATING_MIN, RATING_MAX, RATING_STEP = 0.5, 5.0, 0.5
MOVIE_ID_MIN, MOVIE_ID_MAX = 1, 2**31 - 1  # the database column's range
POSITION_MIN, POSITION_MAX = 1, 100  # a shown list holds at most 100 movies (api.MAX_K)


class EventRejected(ValueError):
    """The request is wrong: answer 400 with this message."""


class EventNotRecorded(RuntimeError):
    """A backing service failed; nothing was kept. Answer 503."""


class EventConflict(ValueError):
    """The idempotency key was used for a different event: answer 422."""


# A retried event whose first try was never confirmed is confirmed under its first timestamp
# only while the workers still read that far back (visitor_state.GRACE_S); later, re-keyed.
RETRY_SAME_KEY_S = GRACE_S / 2


def _now() -> str:
    return _ts(datetime.now(timezone.utc))


def _at(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def _ts(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def _crash_point(stage: str, event: Event) -> None:
    """Fault tests only: end this process at `stage` for one movie's clicks and ratings, as a
    power cut would (settings.FAULT_CRASH = "<stage>:<movie id>"; empty in every deployment)."""
    if settings.FAULT_CRASH == f"{stage}:{event.movie_id}" and event.kind in PUBLIC_KINDS:
        log.error("fault injection: exiting at %s for event %s", stage, event.event_id)
        os._exit(70)


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


def _record(event: Event, apply, undo) -> Event:
    """Write `event` as the module docstring says; `apply` writes the mirror, `undo` reverts it.
    Raises EventNotRecorded (nothing kept), or IntegrityError from `apply` (nothing kept)."""
    subject = f"event {event.event_id}"
    try:
        clicklog.event_put(Event(**{**event.__dict__, "pending": True}))
    except (BotoCoreError, ClientError) as exc:  # nothing was kept: nothing to compensate
        log.exception("event %s not recorded: the click log is unreachable", event.event_id)
        raise EventNotRecorded("the event could not be recorded, please try again") from exc
    _crash_point("clicklog", event)
    try:
        with transaction.atomic():
            apply()
    except Exception as exc:
        clicklog.undo_logged("delete its pending click-log item", lambda: clicklog.event_delete(event), subject)
        if isinstance(exc, IntegrityError):
            raise
        log.exception("event %s not recorded: the history mirror refused it", event.event_id)
        raise EventNotRecorded("the event could not be recorded, please try again") from exc
    _crash_point("mirror", event)
    try:
        stream.publish(visitor=event.visitor, payload=event.as_dict())
        _crash_point("kafka", event)
        clicklog.event_put(event)  # confirmed: the last write, so nothing undoes an applied event
    except Exception as exc:
        log.exception("event %s not recorded; compensating", event.event_id)
        # The mirror row goes only once the log item has: if the item cannot be deleted the
        # event stays visible in the history, where the visitor can remove it.
        if clicklog.undo_logged("delete its click-log item", lambda: clicklog.event_delete(event), subject):
            clicklog.undo_logged("undo its mirror row", undo, subject)
        raise EventNotRecorded("the event could not be recorded, please try again") from exc
    return event


def _retry(prior: Interaction, *, visitor: str, movie_id: int, kind: str, value) -> Event:
    """A retry of an event the mirror holds: finish what the first try left undone."""
    if (prior.visitor, prior.movie_id, prior.kind, prior.value) != (visitor, movie_id, kind, value):
        raise EventConflict("this idempotency key was already used for a different event")
    event = Event(event_id=str(prior.event_id), visitor=visitor, movie_id=movie_id, kind=kind,
                  ts=_ts(prior.created_at), value=value,
                  impression=str(prior.impression_id) if prior.impression_id else None, position=prior.position)
    try:
        stored = clicklog.event_get(event)
        if stored is None or stored.pending:
            if datetime.now(timezone.utc) - prior.created_at > timedelta(seconds=RETRY_SAME_KEY_S):
                # The workers may have read past this timestamp: confirm it as a new event.
                clicklog.event_delete(event)
                event = Event(**{**event.__dict__, "ts": _now()})
                Interaction.objects.filter(pk=prior.pk).update(created_at=_at(event.ts))
            stream.publish(visitor=visitor, payload=event.as_dict())
            clicklog.event_put(event)
        else:
            stream.publish(visitor=visitor, payload=event.as_dict())  # the first try may not have
    except Exception as exc:  # the mirror row stays: visible in the history, removable
        log.exception("retried event %s not confirmed", event.event_id)
        raise EventNotRecorded("the event could not be recorded, please try again") from exc
    return event


def event_record(*, visitor: str, movie_id, kind, value=None, idempotency_key=None, impression=None,
                 position=None, client: str = "") -> Event:
    """Validate and record a click or a rating; returns the stored event. A request with the
    idempotency key of an event already recorded answers with that event, recording nothing.
    A click's `impression` and `position` credit the list it came from when that list was
    shown to this visitor with this movie there (`impressions.click_attribution`); a click
    no list earned is recorded all the same, without them. `client` is the sender's keyed digest
    (`ratelimit.client_digest`), kept on the mirror row so a retrain can cap each client's weight."""
    movie_id, kind, value = event_validate(movie_id=movie_id, kind=kind, value=value)
    impression, position = attribution_validate(kind=kind, impression=impression, position=position)
    event_id = idempotency_key_validate(idempotency_key) or str(uuid.uuid4())
    prior = Interaction.objects.filter(event_id=event_id).first()
    if prior is None:
        impression, position = click_attribution(visitor=visitor, movie_id=movie_id, impression=impression,
                                                 position=position)
        event = Event(event_id=event_id, visitor=visitor, movie_id=movie_id, kind=kind, ts=_now(), value=value,
                      impression=impression, position=position)

        def mirror():
            Interaction.objects.create(visitor=visitor, movie_id=movie_id, kind=kind, value=value,
                                       event_id=event_id, created_at=_at(event.ts), impression_id=impression,
                                       position=position, client=client)

        try:
            return _record(event, mirror, lambda: Interaction.objects.filter(event_id=event_id).delete())
        except IntegrityError:  # the same key in another request, which stored it first
            prior = Interaction.objects.filter(event_id=event_id).first()
            if prior is None:
                raise EventNotRecorded("the event could not be recorded, please try again") from None
    return _retry(prior, visitor=visitor, movie_id=movie_id, kind=kind, value=value)


def history_remove(*, visitor: str, movie_id: int) -> Event | None:
    """Take a movie out of a visitor's history. The log keeps the clicks and gains a
    `remove` event, so the worker's replay drops the movie and nothing is lost."""
    if not MOVIE_ID_MIN <= movie_id <= MOVIE_ID_MAX:  # no such row; some databases fail on the query
        return None
    rows = list(Interaction.objects.filter(visitor=visitor, movie_id=movie_id))
    if not rows:
        return None
    event = Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=movie_id, kind="remove", ts=_now())
    return _record(
        event,
        lambda: Interaction.objects.filter(pk__in=[r.pk for r in rows]).delete(),
        lambda: Interaction.objects.bulk_create(rows, ignore_conflicts=True),
    )


def history_move(*, from_visitor: str, to_visitor: str) -> int:
    """Give an anonymous visitor's history to the account it logged in as; returns how many
    events moved. Every step can be repeated, so a move that failed half-way is finished by
    running it again (`movie.visitors` does, on the visitor's next request)."""
    if from_visitor == to_visitor:
        return 0
    moved = clicklog.events_copy(from_visitor=from_visitor, to_visitor=to_visitor)
    Interaction.objects.filter(visitor=from_visitor).update(visitor=to_visitor)
    clicklog.events_drop(from_visitor)
    for visitor in (from_visitor, to_visitor):
        visitor_forget(visitor)  # the moved events sort before its watermark: replay the whole log
    # Waiting in Redis, not only told through Kafka: the old visitor leaves the workers'
    # graphs even if a notification is lost (the live sweep claims waiting visitors).
    visitors_wait([from_visitor, to_visitor])
    for visitor in (from_visitor, to_visitor):
        stream.publish(visitor=visitor, payload={"visitor": visitor, "kind": "moved", "ts": _now()})
    return len(moved)


def visitor_refresh(*, visitor: str) -> None:
    """Ask the live workers to re-derive `visitor` on the live versions (after a retrain)."""
    stream.publish(visitor=visitor, payload={"visitor": visitor, "kind": "refresh", "ts": _now()})
