"""Recording what visitors do: the one place an event enters the pipeline.

Every answer 202 has its event confirmed in the click log, in the history mirror and on Kafka,
and nothing undoes it afterwards; an event no try answered 202 for is never applied. A first
try writes, in order:
1. the `clicklog` item, pending (the workers never apply it), under a key of its own,
   `<ts>#<event id>` with ts taken now (`clicklog.event_start`). A click or rating then looks
   for a removal of its movie that sorts after it (`_overtaken`; in the log only when a removal
   mark says there may be one, `movie.tracking.removal_marks`): the workers would drop the
   click, and its mirror row, written after the removal deleted the older ones, would stay;
   so it gives up (503; the browser's retry gets a later ts);
2. the `Interaction` mirror row, committed, with created_at = ts: the row belongs to that key;
3. Kafka (acks=all): the workers' notification;
4. the item confirmed (`clicklog.event_confirm`, conditional: only while it exists and is not
   cancelled); from now on the workers apply it. If the visitor id moved to an account
   meanwhile, the event follows it (`moves.event_forward`, argued in `movie.tracking.moves`).
A failure gives the item up (`_abandon`) and answers 503. A process that dies after 1 leaves a
pending item nobody applies; after 2 or 3, a pending item and a row that the browser's retry
finishes (idempotency key = event id).

Why no rollback undoes a 202, whatever the interleaving (docs/design.md argues each case):
- Items. A rollback deletes its item only while it is pending (`clicklog.event_abandon`), and
  a confirm succeeds only while the item exists and is not cancelled. DynamoDB orders the two
  on the item: if the delete wins, no try can confirm the item any more, so none answers 202
  for it; if a confirm wins, the delete is refused and the rollback leaves everything as it is.
- Mirror rows. A try undoes the row only after its own conditional delete succeeded (or its
  item was cancelled), and only while the row's created_at is still its own key's ts: a retry
  that re-keyed the event moved the row to the new key, and a stale undo then matches nothing.
- Re-keys. A retry re-keys only an item it deleted itself while pending: the old key can then
  never be confirmed, so one event never has two confirmed keys.
A retry under another visitor id, when the first try's new session never reached the browser,
gives the unanswered event up and records it afresh (`_unanswered_taken`).
A retry (`_retry`) reads the item its row points to. Confirmed: it publishes again (the first
try may not have) and answers 202. Pending, younger than RETRY_SAME_KEY_S: it publishes and
confirms (refused: the first try gave the item up meanwhile; 503). Pending and older: the
workers may have read past its ts, so it re-keys (`_rekey`). Gone or cancelled while the row
still points to it: the try that wrote it gave up and undoes the row, or could not; the retry
finishes that undo and answers 503, and the browser's next try records the event afresh.

A removal and a click of the same movie each write their item before reading the other's
(`removals.history_remove` cancels the pending clicks that sort before it, then deletes the older rows;
a click looks for later removals before it writes its row): whichever reads second sees the
other, so a click sorting before a removal ends in neither the history nor the models. A
removal that fails puts back the rows it took whose events are still live.

A click on a poster of a shown list carries the list's impression id and the poster's position;
`movie.tracking.impressions` decides whether the list earned it, and the event keeps the answer.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import IntegrityError, transaction

from eventstore import clicklog, stream
from eventstore.clicklog import CANCELLED, CONFIRMED, DELETED, PENDING, Event
from movie.tracking import moves, statements
from movie.tracking.event_fields import (  # noqa: F401 (EventRejected and the validators: the service's names too)
    MOVIE_ID_MAX,
    MOVIE_ID_MIN,
    PUBLIC_KINDS,
    EventRejected,
    attribution_validate,
    event_validate,
    idempotency_key_validate,
)
from movie.tracking.faults import stall_point
from movie.tracking.impressions import click_attribution
from movie.tracking.models import Interaction
from movie.tracking.removal_marks import removal_possible
from predictors import GRACE_S, TS_FORMAT

log = logging.getLogger(__name__)


class EventNotRecorded(RuntimeError):
    """A backing service failed, or another request decided the event's fate: this request kept
    nothing of it. Answer 503."""


class EventConflict(ValueError):
    """The idempotency key was used for a different event: answer 422."""


# A retried event whose first try was never confirmed is confirmed under its first timestamp
# only while the workers still read that far back (predictors.GRACE_S); later, re-keyed.
RETRY_SAME_KEY_S = GRACE_S / 2
# A retry that finds its row's item gone undoes the row only while the row is this young: a
# browser retries for 7 s (app.js RETRY_MS), so an hour is no retry's; an older item may have
# left through the click log's retention, and its row is history.
RETRY_UNDO_S = 3600
NOT_RECORDED = "the event could not be recorded, please try again"


def _now() -> str:
    return _ts(datetime.now(UTC))


def _at(ts: str) -> datetime:
    return datetime.strptime(ts, TS_FORMAT).replace(tzinfo=UTC)


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).strftime(TS_FORMAT)


def _crash_point(stage: str, event: Event) -> None:
    """Fault tests only: end this process at `stage` for one movie's clicks and ratings, as a
    power cut would (settings.FAULT_CRASH = "<stage>:<movie id>"; empty in every deployment)."""
    if f"{stage}:{event.movie_id}" == settings.FAULT_CRASH and event.kind in PUBLIC_KINDS:
        log.error("fault injection: exiting at %s for event %s", stage, event.event_id)
        os._exit(70)
    if event.kind in PUBLIC_KINDS:
        stall_point(f"{stage}:{event.movie_id}")


def _overtaken(event: Event) -> bool:
    """A removal of the event's movie sorts after it in the log (pending or confirmed). The log
    is asked only when a removal mark says one may (`movie.tracking.removal_marks`)."""
    return (event.kind in PUBLIC_KINDS
            and removal_possible(visitor=event.visitor, movie_id=event.movie_id, ts=_at(event.ts))
            and bool(clicklog.removals(event.visitor, after=event.sort_key, movie_id=event.movie_id)))


def _abandon(event: Event, undo, subject: str) -> None:
    """Give up `event`'s item, and undo the mirror with `undo` only when no try can confirm the
    item any more because this call deleted it, or because a removal cancelled it. Refused
    because it is confirmed (another try answers 202) or gone (a retry took the event over, or
    it moved): the mirror stays as it is. Failures are logged: the caller answers 503 anyway."""
    try:
        outcome = clicklog.event_abandon(event)
    except Exception:
        log.exception("%s: could not give up its click-log item", subject)
        return
    if outcome in (DELETED, CANCELLED):
        clicklog.undo_logged("undo its mirror row", undo, subject)


def _row_undo(event: Event):
    """Undo the mirror row of `event`'s key: only while the row still belongs to that key (a
    re-key changes created_at, a move the visitor)."""
    return lambda: Interaction.objects.filter(event_id=event.event_id, visitor=event.visitor,
                                              created_at=_at(event.ts)).delete()


def _forward(event: Event) -> Event:
    """After a confirm: if the event's visitor id moved to an account, give the event to it.
    A failure is logged, not raised: the event is kept and applied, under the old id."""
    try:
        target = moves.forward_target(event.visitor)
        if target:
            moves.event_forward(event, to_visitor=target)
    except Exception:
        log.exception("event %s confirmed under %s, not forwarded to its account", event.event_id,
                      event.visitor)
    return event


def _record(event: Event, apply, undo) -> Event:
    """A first try: write `event` as the module docstring says; `apply` writes the mirror, `undo`
    reverts it. Raises EventNotRecorded, or IntegrityError from `apply` (a concurrent try holds
    the event id); either way this try confirmed nothing and undid only what was its own."""
    subject = f"event {event.event_id}"
    try:
        if not clicklog.event_start(event):
            raise EventNotRecorded(NOT_RECORDED)  # its key is taken: never, with a fresh ts
    except (BotoCoreError, ClientError) as exc:  # nothing was kept: nothing to compensate
        log.exception("event %s not recorded: the click log is unreachable", event.event_id)
        raise EventNotRecorded(NOT_RECORDED) from exc
    try:
        overtaken = _overtaken(event)
    except Exception as exc:
        _abandon(event, lambda: None, subject)
        log.exception("event %s not recorded: the click log is unreachable", event.event_id)
        raise EventNotRecorded(NOT_RECORDED) from exc
    if overtaken:
        _abandon(event, lambda: None, subject)
        log.warning("event %s not recorded: a removal of movie %s sorts after it", event.event_id,
                    event.movie_id)
        raise EventNotRecorded(NOT_RECORDED)
    _crash_point("clicklog", event)
    try:
        with transaction.atomic():
            apply()
    except Exception as exc:
        _abandon(event, lambda: None, subject)  # no row of this try to undo
        if isinstance(exc, IntegrityError):
            raise
        log.exception("event %s not recorded: the history mirror refused it", event.event_id)
        raise EventNotRecorded(NOT_RECORDED) from exc
    _crash_point("mirror", event)
    try:
        stream.publish(visitor=event.visitor, payload=event.as_dict())
        _crash_point("kafka", event)
        confirmed = clicklog.event_confirm(event)  # the last write: nothing undoes it
    except Exception as exc:
        log.exception("event %s not recorded; compensating", event.event_id)
        _abandon(event, undo, subject)
        raise EventNotRecorded(NOT_RECORDED) from exc
    if not confirmed:  # a retry re-keyed it, or a removal cancelled it
        log.warning("event %s: another request decided it before this try could confirm", event.event_id)
        _abandon(event, undo, subject)
        raise EventNotRecorded(NOT_RECORDED)
    return _forward(event)


def _rekey(event: Event) -> Event:
    """Confirm a pending event under a new key (ts now), taking it from the try that wrote it.
    Each step is conditional on the previous owner still holding what it takes."""
    subject = f"event {event.event_id}"
    outcome = clicklog.event_abandon(event)  # only while pending: then its first try cannot confirm it
    if outcome == CONFIRMED:  # the first try confirmed it meanwhile: answer for that
        stream.publish(visitor=event.visitor, payload=event.as_dict())
        return _forward(event)
    if outcome != DELETED:  # gone or cancelled: the try that held it undoes its row
        clicklog.undo_logged("undo its mirror row", _row_undo(event), subject)
        raise EventNotRecorded(NOT_RECORDED)
    fresh = Event(**{**event.__dict__, "ts": _now()})
    try:
        started = clicklog.event_start(fresh)
    except Exception:
        started = False
    if not started or not (Interaction.objects.filter(event_id=event.event_id, created_at=_at(event.ts))
                           .update(created_at=_at(fresh.ts))):
        # Nothing of the event is confirmed, and no try can confirm its old key: nothing is kept.
        if started:
            _abandon(fresh, lambda: None, subject)
        clicklog.undo_logged("undo its mirror row", _row_undo(event), subject)
        raise EventNotRecorded(NOT_RECORDED)
    try:
        stream.publish(visitor=fresh.visitor, payload=fresh.as_dict())
        confirmed = clicklog.event_confirm(fresh)
    except Exception as exc:
        log.exception("re-keyed event %s not confirmed; compensating", event.event_id)
        _abandon(fresh, _row_undo(fresh), subject)
        raise EventNotRecorded(NOT_RECORDED) from exc
    if not confirmed:  # a removal cancelled it
        _abandon(fresh, _row_undo(fresh), subject)
        raise EventNotRecorded(NOT_RECORDED)
    return _forward(fresh)


def _prior(event_id: str) -> Interaction | None:
    """The mirror row holding `event_id`, if any (a retry's): on a first try, the common case,
    one statement that finds none."""
    row = statements.first(Interaction, ("id",), event_id=event_id)
    return Interaction.objects.filter(pk=row[0]).first() if row else None


def _key_misused(prior: Interaction, *, movie_id: int, kind: str, value) -> None:
    if (prior.movie_id, prior.kind, prior.value) != (movie_id, kind, value):
        raise EventConflict("this idempotency key was already used for a different event")


def _unanswered_taken(prior: Interaction, *, visitor: str) -> bool:
    """A retry under another id than its first try's (not the account that id moved to): a
    first click in a new session gets its id there, and only the answer carries the session's
    cookie, so a process that died before answering leaves the retry a new id (the soak's 422s).
    An event no try answered for is given up, conditionally as a re-key does, and its row undone:
    True, this request records it afresh. One confirmed under the other id: EventConflict."""
    if prior.visitor == visitor or moves.forward_target(prior.visitor) == visitor:
        return False
    event = Event(event_id=str(prior.event_id), visitor=prior.visitor, movie_id=prior.movie_id,
                  kind=prior.kind, ts=_ts(prior.created_at), value=prior.value)
    try:
        if clicklog.event_abandon(event) == CONFIRMED:
            raise EventConflict("this idempotency key was already used for a different event")
        _row_undo(event)()  # no try can confirm its item any more
    except EventConflict:
        raise
    except Exception as exc:
        log.exception("event %s not taken over from %s", event.event_id, event.visitor)
        raise EventNotRecorded(NOT_RECORDED) from exc
    return True


def _retry(prior: Interaction, *, visitor: str, movie_id: int, kind: str, value) -> Event:
    """A retry of an event the mirror holds: finish what the first try left undone (the module
    docstring says how). `visitor` may be the account the row's visitor id moved to."""
    _key_misused(prior, movie_id=movie_id, kind=kind, value=value)
    if prior.visitor != visitor and moves.forward_target(prior.visitor) != visitor:
        raise EventConflict("this idempotency key was already used for a different event")
    for _look in range(3):  # a row that moves while it is looked at (a log-in, a re-key) is read again
        event = Event(event_id=str(prior.event_id), visitor=prior.visitor, movie_id=movie_id, kind=kind,
                      ts=_ts(prior.created_at), value=value,
                      impression=str(prior.impression_id) if prior.impression_id else None,
                      position=prior.position)
        age = datetime.now(UTC) - prior.created_at
        try:
            if age > timedelta(seconds=RETRY_SAME_KEY_S):
                return _rekey(event)  # reads the item's state by trying to take it
            state = clicklog.event_state(event)
            if state == CONFIRMED:
                stream.publish(visitor=event.visitor, payload=event.as_dict())  # the first try may not have
                return _forward(event)
            if state == PENDING:
                stream.publish(visitor=event.visitor, payload=event.as_dict())
                if clicklog.event_confirm(event):
                    return _forward(event)
                raise EventNotRecorded(NOT_RECORDED)  # its first try gave it up meanwhile
        except EventNotRecorded:
            raise
        except Exception as exc:  # the row stays, with its pending item: a later try finishes it
            log.exception("retried event %s not confirmed", event.event_id)
            raise EventNotRecorded(NOT_RECORDED) from exc
        now = Interaction.objects.filter(event_id=prior.event_id).first()
        if now is None:
            raise EventNotRecorded(NOT_RECORDED)  # undone: the next try records it afresh
        if (now.visitor, now.created_at) != (prior.visitor, prior.created_at):
            prior = now
            continue
        # No live item behind an unchanged row: the try that wrote it gave up. Finish its undo.
        if age < timedelta(seconds=RETRY_UNDO_S):
            clicklog.undo_logged("undo its mirror row", _row_undo(event), f"event {event.event_id}")
        raise EventNotRecorded(NOT_RECORDED)
    raise EventNotRecorded(NOT_RECORDED)


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
    prior = _prior(event_id)
    if prior is not None:
        _key_misused(prior, movie_id=movie_id, kind=kind, value=value)
        if _unanswered_taken(prior, visitor=visitor):
            prior = None
    if prior is None:
        impression, position = click_attribution(visitor=visitor, movie_id=movie_id, impression=impression,
                                                 position=position)
        event = Event(event_id=event_id, visitor=visitor, movie_id=movie_id, kind=kind, ts=_now(),
                      value=value, impression=impression, position=position)

        def mirror():
            statements.insert(Interaction, visitor=visitor, movie_id=movie_id, kind=kind, value=value,
                              event_id=event_id, created_at=_at(event.ts), impression_id=impression,
                              position=position, client=client)

        try:
            return _record(event, mirror, _row_undo(event))
        except IntegrityError:  # the same key in another request, which stored it first
            prior = _prior(event_id)
            if prior is None:
                raise EventNotRecorded(NOT_RECORDED) from None
    return _retry(prior, visitor=visitor, movie_id=movie_id, kind=kind, value=value)
