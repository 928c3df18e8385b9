"""Account moves: giving an anonymous visitor id's history to the account its session signed in to.

A log-in over an anonymous session moves that session's history to the account's visitor id
(`history_move`); a sign-up adopts the session's id instead, so nothing moves. Either way the
id is claimed once, in `VisitorForward` (`forward_claim`): a row per id, unique, pointing to the
account's id (moved) or to itself (adopted). So an id moves once, never to a second account,
and never after an account adopted it; an account's own id is never moved.

A click may be in flight under the old id while the history moves (sent before the log-in,
answered after it). The move copies only confirmed events and leaves pending ones where they
are; a click that confirms under an id with a forward moves itself (`event_forward`) after
confirming. One of the two always sees the other, because each writes before it reads:
- the move commits the forward row (1), then reads the old id's log (2);
- the click confirms its item (a), then reads the forward row (b).
If (a) comes before (2), the move's read sees the confirmed click and copies it. Otherwise
(1) < (2) < (a) < (b), and the click's read sees the forward and copies itself. Both may:
the copy keeps the sort key, so writing it twice leaves one item, and the mirror row's update
is the same. A click's browser retry, which comes as the account after the log-in, finishes the
event under the old id the same way (`movie.tracking.events`).

A moved event must not disagree with a removal already in the account's log: a click sorting
before a removal of its movie is dropped by the workers' replay (`predictors.live.history_after`),
so its mirror row goes too, and a removal still in flight is cancelled, so that its request
answers 503 and gives back what it took (`_settle_removals`). The removal, for its part, writes
its item before it deletes the account's older rows, and the move writes its rows before it
reads the removals: whichever comes second sees the other.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db import IntegrityError, transaction

from eventstore import clicklog, stream
from eventstore.clicklog import Event
from eventstore.live import visitors_changed
from movie.tracking import statements
from movie.tracking.models import AccountVisitor, Interaction, VisitorForward
from movie.tracking.removal_marks import marks_write
from predictors import GRACE_S, TS_FORMAT

log = logging.getLogger(__name__)

# How long a forward is kept: far past any request still carrying the old id (a browser retries
# for 7 s, app.js RETRY_MS) and past a stalled request's time-outs. One row per sign-up and
# log-in of this period; older ones are deleted by `forward_claim`.
FORWARD_KEEP_S = 24 * 3600
# An event forwarded younger than this sorts after the account's watermark minus the workers'
# grace window, so waking the workers is enough; an older one needs a replay of the log.
FORWARD_FRESH_S = GRACE_S / 2


def _at(ts: str) -> datetime:
    return datetime.strptime(ts, TS_FORMAT).replace(tzinfo=UTC)


def forward_claim(*, from_visitor: str, to_visitor: str) -> bool:
    """Claim `from_visitor` for `to_visitor` (the same id: a new account adopts it). True when
    it is now, or was already, claimed for `to_visitor`; False when it went elsewhere or, for a
    move, when it is an account's own id."""
    now = datetime.now(UTC)
    VisitorForward.objects.filter(created_at__lt=now - timedelta(seconds=FORWARD_KEEP_S)).delete()
    if from_visitor != to_visitor and AccountVisitor.objects.filter(visitor=from_visitor).exists():
        return False
    try:
        with transaction.atomic():
            VisitorForward.objects.create(from_visitor=from_visitor, to_visitor=to_visitor, created_at=now)
        return True
    except IntegrityError:
        claimed = (VisitorForward.objects.filter(from_visitor=from_visitor)
                   .values_list("to_visitor", flat=True))
        return claimed.first() == to_visitor


def forward_target(visitor: str) -> str | None:
    """The account id `visitor`'s history moved to, if it moved."""
    row = statements.first(VisitorForward, ("to_visitor",), from_visitor=visitor)  # from_visitor is unique
    return row[0] if row and row[0] != visitor else None


def _settle_removals(visitor: str, events: list[Event]) -> None:
    """`events` were just given to `visitor` (log items and mirror rows): make the history say
    what the workers' replay of `visitor`'s log will. A click, rating or dismissal that sorts
    before a confirmed removal of its movie loses its mirror row; a removal still pending is
    cancelled first (its request then restores the rows it took), so it removes nothing."""
    adds = [e for e in events if e.kind in clicklog.MOVIE_KINDS]
    if not adds:
        return
    latest: dict[int, str] = {}
    for removal in clicklog.removals(visitor, after=min(e.sort_key for e in adds)):
        if removal.pending and (clicklog.event_cancel(removal)
                                or clicklog.event_state(removal) != clicklog.CONFIRMED):
            continue
        latest[removal.movie_id] = max(latest.get(removal.movie_id, ""), removal.sort_key)
    for event in adds:
        if latest.get(event.movie_id, "") > event.sort_key:
            Interaction.objects.filter(event_id=event.event_id, visitor=visitor,
                                       created_at=_at(event.ts)).delete()


def _removals_mark(visitor: str, events: list[Event]) -> None:
    """Removals are about to enter `visitor`'s log: mark them first (`removal_marks`); their
    timestamps are older than the marks, as a removal's own must be."""
    removed = [e.movie_id for e in events if e.kind == "remove"]
    if removed:
        marks_write(visitor, removed)


def _notify(visitors: list[str], *, replay: bool) -> None:
    """Wake the workers for `visitors`; `replay`: their live state is dropped first, because
    the events they were given sort before their watermarks."""
    visitors_changed(visitors, replay=replay)
    now = datetime.now(UTC).strftime(TS_FORMAT)
    for visitor in visitors:
        stream.publish(visitor=visitor, payload={"visitor": visitor, "kind": "moved", "ts": now})


def history_move(*, from_visitor: str, to_visitor: str) -> int:
    """Give an anonymous visitor's history to the account it logged in as; returns how many
    events moved. Every step can be repeated, so a move that failed half-way is finished by
    running it again (`movie.tracking.visitors` does, on the visitor's next request). Events still
    pending stay; each moves itself once confirmed (the module docstring)."""
    if from_visitor == to_visitor:
        return 0
    if not forward_claim(from_visitor=from_visitor, to_visitor=to_visitor):
        log.warning("history of %s not moved to %s: it belongs to another account", from_visitor, to_visitor)
        return 0
    moved = clicklog.events_for(from_visitor)
    _removals_mark(to_visitor, moved)
    clicklog.events_put(moved, visitor=to_visitor)
    Interaction.objects.filter(visitor=from_visitor, event_id__in=[e.event_id for e in moved]).update(
        visitor=to_visitor)
    _settle_removals(to_visitor, moved)
    clicklog.events_delete(from_visitor, [e.sort_key for e in moved])
    if moved:
        _notify([from_visitor, to_visitor], replay=True)
    return len(moved)


def event_forward(event: Event, *, to_visitor: str) -> None:
    """Give one event, confirmed under an id that moved, to the account it moved to: the same
    steps as `history_move`, for one event (repeating them changes nothing)."""
    _removals_mark(to_visitor, [event])
    clicklog.events_put([event], visitor=to_visitor)
    Interaction.objects.filter(event_id=event.event_id, visitor=event.visitor).update(visitor=to_visitor)
    _settle_removals(to_visitor, [event])
    clicklog.events_delete(event.visitor, [event.sort_key])
    age_s = (datetime.now(UTC) - _at(event.ts)).total_seconds()
    _notify([to_visitor], replay=age_s > FORWARD_FRESH_S)
