"""Helpers for tests that click through the API and wait for the live workers."""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.test import Client


def click(client: Client, movie_id: int) -> str:
    """POST a click as `client`'s visitor; returns the event id of the 202."""
    response = client.post("/api/events", {"movie_id": movie_id, "kind": "click"},
                           content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()["event_id"]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def queued_ticks(prefix: str) -> list[dict]:
    """The live ticks sent under live-queue prefix `prefix` that wait in the broker (kombu's
    list `live`): each message's raw bytes, kwargs and headers."""
    from workers.tasks import broker

    found = []
    for raw in broker().lrange("live", 0, -1):
        message = json.loads(raw)
        _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        if (kwargs.get("slot") or "").startswith(f"{prefix}:"):
            found.append({"raw": raw, "kwargs": kwargs, "headers": message["headers"]})
    return found

