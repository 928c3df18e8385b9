"""Exactly once: which of a visitor's logged events are new to its live state.

A state's watermark is the sort key (`<ts>#<event_id>`) of the newest event applied. Events are
read from GRACE_S before it, and those sort keys applied within that window are remembered
(`recent`), so an event written late, with a timestamp older than the watermark, is still
applied, and none is applied twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from livepath.state import VisitorState
from predictors import GRACE_S, TS_FORMAT


def events_since(state: VisitorState) -> str | None:
    """Read events with sort keys after this (None: the whole log)."""
    if state.watermark is None:
        return None
    ts = datetime.strptime(state.watermark.split("#", 1)[0], TS_FORMAT)
    return (ts - timedelta(seconds=GRACE_S)).strftime(TS_FORMAT)


def events_new(state: VisitorState, events: Sequence) -> list:
    """The events (with `.sort_key`) not applied yet, oldest first."""
    since, done = events_since(state), set(state.recent)
    fresh = [e for e in events if e.sort_key not in done and (since is None or e.sort_key > since)]
    return sorted(fresh, key=lambda e: e.sort_key)


def events_applied(state: VisitorState, events: Sequence) -> None:
    """Move the watermark past `events` and remember their sort keys within the window."""
    keys = [e.sort_key for e in events]
    state.watermark = max([state.watermark or "", *keys]) or None
    state.applied += len(keys)
    since = events_since(state) or ""
    state.recent = sorted(k for k in {*state.recent, *keys} if k > since)
