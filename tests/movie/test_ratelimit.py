"""Rate limits answer 429 with Retry-After, store nothing for a refused click, and let
requests through when Redis is unreachable."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from eventstore import clicklog
from movie.models import Interaction, Movie


@pytest.fixture
def tight(settings):
    settings.RATE_LIMITS = {"event": (3, 60), "session": (2, 60), "login": (2, 300)}


def _address() -> str:
    """A client address of its own, so no other test's counters interfere."""
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


def test_a_visitor_clicking_too_fast_gets_429_and_the_refused_click_is_not_kept(db, clicklog_table, tight):
    Movie.objects.create(id=1, title="Movie 1")
    client = Client(REMOTE_ADDR=_address())
    statuses = [client.post("/api/events", {"movie_id": 1, "kind": "click"}, content_type="application/json")
                for _ in range(4)]

    assert [r.status_code for r in statuses] == [202, 202, 202, 429]
    assert int(statuses[-1]["Retry-After"]) >= 1 and "too many requests" in statuses[-1].json()["error"]
    assert Interaction.objects.count() == 3
    assert len(clicklog.events_for(client.session["visitor"])) == 3


def test_a_client_dropping_its_cookie_cannot_open_sessions_without_end(db, tight):
    address = _address()
    statuses = [Client(REMOTE_ADDR=address).get("/api/recommendations/popular/?k=5").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert Client(REMOTE_ADDR=_address()).get("/api/recommendations/popular/?k=5").status_code == 200


def test_log_in_tries_are_limited_per_address_and_username(db, tight):
    client, address = Client(), _address()
    tries = [client.post("/accounts/login/", {"username": "ann", "password": "wrong"}, REMOTE_ADDR=address)
             for _ in range(3)]

    assert [r.status_code for r in tries] == [200, 200, 429]  # the form again, then refused
    assert "too many requests" in tries[-1].content.decode()


def test_requests_go_through_when_the_limiter_is_unreachable(db, tight, settings, unused_tcp_port):
    settings.BROKER_REDIS_URL = f"redis://127.0.0.1:{unused_tcp_port}/0"
    address = _address()
    statuses = [Client(REMOTE_ADDR=address).get("/api/recommendations/popular/?k=5").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
