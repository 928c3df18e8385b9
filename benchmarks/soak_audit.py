"""The soak's audit of every accepted click (`benchmarks.soak`): in the click log and confirmed, in
the history unless removed since, applied by the live models; lost clicks in words, and the
visitors whose live models applied more events than they sent (doubles)."""

from __future__ import annotations

import threading
import time

from benchmarks.soak_visitors import Click, Visitor


def _shortfall(click: Click, found, state, mirrored: bool) -> str:
    """What a lost click lacked, in words: the soak's lead for finding out why."""
    answered = time.strftime("%H:%M:%S", time.gmtime(time.time() - (time.monotonic() - click.done_at)))
    head = f"movie {click.movie_id}, {click.tries} tries, answered {answered} UTC"
    if found is None:
        return f"{head}: not in the click log of any of its visitor's ids"
    visitor, event = found
    if not mirrored:
        return f"{head}: {event.sort_key} of {visitor} not in the history"
    return (f"{head}: {event.sort_key} of {visitor} not applied "
            f"(watermark {state.watermark if state else 'no live state'})")


class Auditor(threading.Thread):
    """Checks every accepted click once it is AUDIT_AFTER_S old (well inside the click log's
    retention): in the click log, confirmed; in the history unless removed since; applied by
    the live models (their watermark has passed it). A click that fails is looked at once more
    a round later (a fault may be healing) before it counts as lost."""

    AUDIT_AFTER_S, ROUND_S = 30.0, 30.0

    def __init__(self, visitors: list[Visitor]):
        super().__init__(daemon=True)
        self.visitors, self.stop = visitors, threading.Event()
        self.audited: set[str] = set()
        self.suspects: set[str] = set()
        self.lost: dict[str, str] = {}  # a lost click's key -> what the audit found short
        self.refused_applied = 0
        # The most events each visitor id's live state had applied when audited: the soak's
        # LIVE_STATE_TTL_S lets an idle id's state expire before the end's count of doubles.
        # Not for an id whose history moved to an account: its events count there once moved.
        self.applied: dict[str, int] = {}

    def run(self) -> None:
        while not self.stop.wait(self.ROUND_S):
            self.round()

    def round(self, *, final: bool = False) -> None:
        from django.db import close_old_connections

        close_old_connections()
        due = time.monotonic() - (0 if final else self.AUDIT_AFTER_S)
        for visitor in self.visitors:
            with visitor.lock:
                clicks = [c for c in visitor.clicks
                          if c.done_at and c.done_at < due and c.key not in self.audited]
                ids = set(visitor.ids) | set(_account_id(visitor))
            if clicks:
                self._audit(visitor, clicks, ids, final=final)

    def _audit(self, visitor: Visitor, clicks: list[Click], ids: set[str], *, final: bool) -> None:
        from eventstore import clicklog
        from livepath import state as live_state
        from movie.tracking.models import Interaction

        events = {e.event_id: (i, e) for i in ids for e in clicklog.events_for(i)}
        states = live_state.states_get(sorted(ids))
        for visitor_id, state in states.items():
            self.applied[visitor_id] = max(self.applied.get(visitor_id, 0), state.applied)
        mirrored = {str(k) for k in Interaction.objects.filter(event_id__in=[c.key for c in clicks])
                    .values_list("event_id", flat=True)}
        for click in clicks:
            found = events.get(click.key)
            if click.status != 202:
                self.audited.add(click.key)
                # A dying web process may leave a refused click in the history, never applied.
                self.refused_applied += found is not None and click.key not in mirrored
                continue
            state = states[found[0]] if found else None
            applied = state is not None and (found[1].sort_key <= (state.watermark or "")
                                             or found[1].sort_key in state.recent)
            if found and applied and (click.key in mirrored or click.movie_id in visitor.removed):
                self.audited.add(click.key)
                self.suspects.discard(click.key)
            elif click.key in self.suspects or final:
                self.audited.add(click.key)
                self.lost[click.key] = _shortfall(click, found, state, click.key in mirrored)
            else:
                self.suspects.add(click.key)

    def doubled(self) -> list[str]:
        """Visitors whose live models applied more events than the visitor ever sent, each in
        words (its ids' counts now and at their most, the moved ids): the lead for tracing it."""
        from django.db.models import F

        from livepath import state as live_state
        from movie.tracking.models import VisitorForward

        doubled = []
        for visitor in self.visitors:
            ids = sorted(set(visitor.ids) | set(_account_id(visitor)))
            sent = sum(c.status == 202 for c in visitor.clicks) + len(visitor.removed)
            now = live_state.states_get(ids)
            forwards = VisitorForward.objects.filter(from_visitor__in=ids)
            # an adopted id forwards to itself
            moved = set(forwards.exclude(to_visitor=F("from_visitor")).values_list("from_visitor", flat=True))
            counted = {i: now[i].applied if i in moved else max(now[i].applied, self.applied.get(i, 0))
                       for i in ids}
            if sum(counted.values()) > sent:
                doubled.append(f"sent {sent}, applied " + ", ".join(
                    f"{i} {n} (now {now[i].applied}{', moved' if i in moved else ''})"
                    for i, n in counted.items()))
        return doubled


def _account_id(visitor: Visitor) -> list[str]:
    from movie.tracking.models import AccountVisitor

    if visitor.account is None:
        return []
    return list(AccountVisitor.objects.filter(user__username=visitor.account[0])
                .values_list("visitor", flat=True))
