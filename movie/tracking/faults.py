"""Fault tests only: hold a request at a named point of its writes, as a stalled database or
network would, until the test lets it go. Nothing here runs in a deployment: the setting is
never set there."""

from __future__ import annotations

import logging

from django.conf import settings

log = logging.getLogger(__name__)


def stall_point(point: str) -> None:
    """Block here while settings.FAULT_STALL = (point, hold) names this point: `hold()` is the
    test's, and returns when the test lets the request go on."""
    stall = getattr(settings, "FAULT_STALL", None)
    if stall and stall[0] == point:
        log.error("fault injection: holding a request at %s", point)
        stall[1]()
