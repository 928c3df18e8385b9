"""Removal marks: whether a click must look in the click log for a later removal of its movie.

A click that sorts before a removal of its movie must give up (`movie.tracking.events`,
`_overtaken`), and finding such a removal is a query of the visitor's log: a DynamoDB request on
every click, for removals that almost never exist. So every removal item is preceded by a mark
in the database (`RemovalMark`: visitor, movie, time), written and committed before the item
(`removals.history_remove`, and `moves` before it gives an account the removals of the history
it takes), and a click queries the log only when, read after its own item was written, a mark
of its visitor and movie exists, or its own timestamp is older than MARK_KEEP_S / 2.

Why a click that skips the query can never sort before a removal R of its movie (ts_C < ts_R):
R's mark was committed at t_M before R's item was written, and R's ts was taken at most
MARK_KEEP_S / 2 after t_M (`mark_fresh`: a removal that stalled longer gives up). The click
read no mark at t_read, after its own item was written, with t_read - ts_C < MARK_KEEP_S / 2.
- If the mark was already deleted at t_read, it was older than MARK_KEEP_S: t_read > t_M +
  MARK_KEEP_S, so ts_C > t_M + MARK_KEEP_S / 2 > ts_R. R sorts before the click.
- Otherwise the mark was committed after t_read, so R's item was written after the click's. This
  is the case the log query could not catch either, and the one `removals.history_remove`
  settles: after writing its item, R cancels the pending clicks of the movie that sort before it
  and deletes their rows if they were confirmed first.
Clocks: ts and t_M come from the web processes' clocks; they may disagree by far less than
MARK_KEEP_S / 2 (ten minutes) before the argument fails.

Bound: one row per removal of the last MARK_KEEP_S; each mark written deletes the older ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from movie.tracking import statements
from movie.tracking.models import RemovalMark

MARK_KEEP_S = 1200.0


def marks_write(visitor: str, movie_ids: Iterable[int]) -> datetime:
    """Mark removals of `movie_ids` about to enter `visitor`'s log (committed on return, outside
    any transaction of the caller's: the request's views run in autocommit); returns the marks'
    time, for `mark_fresh`."""
    now = datetime.now(UTC)
    RemovalMark.objects.filter(created_at__lt=now - timedelta(seconds=MARK_KEEP_S)).delete()
    RemovalMark.objects.bulk_create(RemovalMark(visitor=visitor, movie_id=m, created_at=now)
                                    for m in set(movie_ids))
    return now


def mark_fresh(marked_at: datetime, removal_ts: datetime) -> bool:
    """A removal may write its item only if its ts follows its mark by under MARK_KEEP_S / 2."""
    return removal_ts - marked_at < timedelta(seconds=MARK_KEEP_S / 2)


def removal_possible(*, visitor: str, movie_id: int, ts: datetime) -> bool:
    """Whether a click whose item (`ts`) is written may sort before a removal of its movie:
    False only when no mark of its visitor and movie exists and `ts` is recent enough for the
    argument above."""
    if datetime.now(UTC) - ts >= timedelta(seconds=MARK_KEEP_S / 2):
        return True
    return statements.first(RemovalMark, ("id",), visitor=visitor, movie_id=movie_id) is not None
