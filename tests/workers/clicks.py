"""Helpers for tests that click through the API and wait for the live workers."""

from __future__ import annotations

import time

import pytest
from django.test import Client


def click(client: Client, movie_id: int) -> str:
    """POST a click as `client`'s visitor; returns the event id of the 202."""
    response = client.post("/api/events", {"movie_id": movie_id, "kind": "click"}, content_type="application/json")
    assert response.status_code == 202, response.content
    return response.json()["event_id"]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.05)
