"""Taking a movie out of a visitor's history: a `remove` event through the same exactly-once
path as a click (`movie.tracking.events`, whose module docstring argues how a removal and a
click of the same movie racing each other end)."""

from __future__ import annotations

import logging
import uuid

from botocore.exceptions import BotoCoreError, ClientError
from django.db import transaction

from eventstore import clicklog, stream
from eventstore.clicklog import CONFIRMED, PENDING, Event
from movie.tracking.event_fields import MOVIE_ID_MAX, MOVIE_ID_MIN
from movie.tracking.events import NOT_RECORDED, EventNotRecorded, _abandon, _at, _now, _ts
from movie.tracking.models import Interaction
from movie.tracking.removal_marks import mark_fresh, marks_write

log = logging.getLogger(__name__)


def _sort_key(row: Interaction) -> str:
    return f"{_ts(row.created_at)}#{row.event_id}"


def _rows_restore(rows: list[Interaction]) -> None:
    """Put back the rows a failed removal deleted, then drop again those whose items are no
    longer live (given up or cancelled meanwhile: their tries found no row to undo)."""
    Interaction.objects.bulk_create(rows, ignore_conflicts=True)
    for row in rows:
        key = Event(event_id=str(row.event_id), visitor=row.visitor, movie_id=row.movie_id, kind=row.kind,
                    ts=_ts(row.created_at))
        if clicklog.event_state(key) not in (PENDING, CONFIRMED):
            Interaction.objects.filter(event_id=row.event_id, created_at=row.created_at).delete()


def history_remove(*, visitor: str, movie_id: int) -> Event | None:
    """Take a movie out of a visitor's history. The log keeps the clicks and gains a `remove`
    event, so the worker's replay drops the movie and nothing is lost. Clicks of the movie still
    in flight that sort before the removal are cancelled (their requests answer 503), and only
    rows that sort before it are deleted: the history drops what the workers drop."""
    if not MOVIE_ID_MIN <= movie_id <= MOVIE_ID_MAX:  # no such row; some databases fail on the query
        return None
    if not Interaction.objects.filter(visitor=visitor, movie_id=movie_id).exists():
        return None
    marked_at = marks_write(visitor, [movie_id])  # before the item: what a click reads instead of the log
    event = Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=movie_id, kind="remove", ts=_now())
    subject = f"removal {event.event_id}"
    if not mark_fresh(marked_at, _at(event.ts)):  # stalled for minutes since its mark
        raise EventNotRecorded(NOT_RECORDED)
    try:
        if not clicklog.event_start(event):
            raise EventNotRecorded(NOT_RECORDED)
    except (BotoCoreError, ClientError) as exc:
        log.exception("%s not recorded: the click log is unreachable", subject)
        raise EventNotRecorded(NOT_RECORDED) from exc
    taken: list[Interaction] = []

    def apply():
        rows = Interaction.objects.filter(visitor=visitor, movie_id=movie_id)
        # A later click stays, as in the workers' replay.
        rows = [r for r in rows if _sort_key(r) < event.sort_key]
        Interaction.objects.filter(pk__in=[r.pk for r in rows]).delete()
        taken[:] = rows

    try:
        for click in clicklog.pending_adds_before(visitor, before=event.sort_key, movie_id=movie_id):
            # If refused, it was confirmed meanwhile, and its row is older than this.
            clicklog.event_cancel(click)
        with transaction.atomic():
            apply()
        stream.publish(visitor=visitor, payload=event.as_dict())
        confirmed = clicklog.event_confirm(event)
    except Exception as exc:
        log.exception("%s not recorded; compensating", subject)
        _abandon(event, lambda: _rows_restore(taken), subject)
        raise EventNotRecorded(NOT_RECORDED) from exc
    if not confirmed:  # a history move into this visitor cancelled it
        _abandon(event, lambda: _rows_restore(taken), subject)
        raise EventNotRecorded(NOT_RECORDED)
    return event
