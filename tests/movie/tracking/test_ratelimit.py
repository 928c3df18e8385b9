"""Rate limits answer 429 with Retry-After, store nothing for a refused click, and let
requests through when Redis is unreachable. The client is the address the trusted proxies
name (IPv6 by /64): tests through a simulated proxy, REMOTE_ADDR the proxy's and the client in
X-Forwarded-For. Log-in and sign-up limits: test_ratelimit_login.py."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import redis
from django.test import Client, RequestFactory

from eventstore import clicklog
from movie.catalogue.models import Movie
from movie.tracking.models import Interaction
from movie.tracking.ratelimit import client_address, client_digest

PROXY = "10.255.0.1"


@pytest.fixture
def tight(settings):
    settings.RATE_LIMITS = {
        "event": (3, 60), "event_address": (100, 60), "session": (2, 60), "signup": (100, 3600),
        "login": (2, 300), "login_address": (100, 300), "login_username": (100, 300),
        "login_device": (2, 300),
    }


@pytest.fixture(autouse=True)
def rate_keys_removed(settings):
    """The counters a test made go with it (each lives a window otherwise)."""
    store = redis.Redis.from_url(settings.BROKER_REDIS_URL)  # before a test points it elsewhere
    yield
    for name in store.scan_iter("rate:*"):
        store.delete(name)


@pytest.fixture
def behind_proxy(settings):
    """The deployment of docker-compose.yml: one trusted proxy in front of the app."""
    settings.TRUSTED_PROXIES = 1


def _through_proxy(client_ip: str, *, forged: str = "") -> Client:
    """A browser at `client_ip` behind the proxy, which appends it to what the browser wrote."""
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{forged}, {client_ip}" if forged else client_ip)


def _client_ip() -> str:
    return f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"


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


def test_a_window_boundary_does_not_double_the_limit(db, tight, monkeypatch):
    """Two requests at a window's last second and two at the next one's first: four in two
    seconds against a limit of two a minute: the third and fourth are refused, and the wait they
    are told is the true one (the next boundary alone would not do: this window weighs on it)."""
    start = (int(time.time()) // 60 + 1) * 60  # a boundary to come: no other test's counters
    address = _address()

    def at(moment: float) -> int:
        monkeypatch.setattr("movie.tracking.ratelimit.time.time", lambda: moment)
        return Client(REMOTE_ADDR=address).get("/api/recommendations/popular/?k=5")

    before = [at(start - 1).status_code, at(start - 0.5).status_code]
    after = [at(start + 0.5), at(start + 1)]

    assert before + [r.status_code for r in after] == [200, 200, 429, 429]
    wait = int(after[-1]["Retry-After"])
    assert 60 < wait < 120
    assert at(start + 1 + wait).status_code == 200


def test_a_client_dropping_its_cookie_cannot_open_sessions_without_end(db, tight):
    address = _address()
    statuses = [Client(REMOTE_ADDR=address).get("/api/recommendations/popular/?k=5").status_code
                for _ in range(3)]

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
    statuses = [Client(REMOTE_ADDR=address).get("/api/recommendations/popular/?k=5").status_code
                for _ in range(3)]
    assert statuses == [200, 200, 200]


@pytest.mark.parametrize("hops, remote, forwarded, expected", [
    (0, "192.0.2.1", "203.0.113.9", "192.0.2.1"),  # no proxy trusted: the header is the client's to write
    (1, PROXY, "203.0.113.9", "203.0.113.9"),
    (1, PROXY, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # what the client wrote before the proxy's entry
    (2, PROXY, "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
    (2, PROXY, "203.0.113.9", PROXY),  # fewer entries than proxies: the peer
    (1, PROXY, "", PROXY),
    (1, PROXY, "not-an-address", PROXY),
    (1, PROXY, "203.0.113.9:4711", "203.0.113.9"),
    (1, PROXY, "[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"),
    (0, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "", "2001:db8:1:2::/64"),
    (0, "fe80::1%eth0", "", "fe80::/64"),
    (0, "::ffff:192.0.2.1", "", "192.0.2.1"),
    (0, "", "", ""),
])
def test_the_client_is_the_address_the_trusted_proxies_name(settings, hops, remote, forwarded, expected):
    settings.TRUSTED_PROXIES = hops
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_clients_behind_one_proxy_have_their_own_session_limits(db, tight, behind_proxy):
    first, second = _client_ip(), _client_ip()
    statuses = [_through_proxy(first).get("/api/recommendations/popular/?k=5").status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    assert _through_proxy(second).get("/api/recommendations/popular/?k=5").status_code == 200


def test_a_forged_forwarded_address_left_of_the_proxys_entry_does_not_help(db, tight, behind_proxy):
    address = _client_ip()
    statuses = [_through_proxy(address, forged=_client_ip())
                .get("/api/recommendations/popular/?k=5").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_rotating_through_an_ipv6_64_shares_one_bucket(db, tight, behind_proxy):
    prefix = f"2001:db8:{uuid.uuid4().int % 65536:x}:1"
    statuses = [_through_proxy(f"{prefix}:{n:x}::{n:x}").get("/api/recommendations/popular/?k=5").status_code
                for n in range(1, 4)]

    assert statuses == [200, 200, 429]
    assert _through_proxy(f"{prefix[:-1]}2::1").get("/api/recommendations/popular/?k=5").status_code == 200


def _click(client: Client, body: str = '{"movie_id": 1, "kind": "click"}'):
    return client.post("/api/events", body, content_type="application/json")


def test_clicks_are_limited_per_address_across_its_sessions(db, clicklog_table, tight, settings,
                                                            behind_proxy):
    """A client that opens a session per click is held by its address, not its visitors'."""
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "event_address": (3, 60), "session": (100, 60)}
    Movie.objects.create(id=1, title="Movie 1")
    address = _client_ip()
    statuses = [_click(_through_proxy(address)).status_code for _ in range(4)]

    assert statuses == [202, 202, 202, 429]
    assert Interaction.objects.count() == 3
    assert _click(_through_proxy(_client_ip())).status_code == 202


@pytest.mark.parametrize("path", ["/api/events", "/api/impressions"])
def test_an_address_over_its_limit_is_refused_before_its_body_is_read(db, clicklog_table, tight, settings,
                                                                      behind_proxy, path):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "event_address": (2, 60)}
    client = _through_proxy(_client_ip())
    statuses = [client.post(path, "{not json", content_type="application/json").status_code for _ in range(3)]

    assert statuses == [400, 400, 429]  # the third body is never parsed: refused as it stands


def test_each_click_records_its_clients_digest_not_its_address(db, clicklog_table, tight, behind_proxy):
    Movie.objects.create(id=1, title="Movie 1")
    prefix = f"2001:db8:{uuid.uuid4().int % 65536:x}:7"
    for sender in (f"{prefix}::1", f"{prefix}::2", "198.51.100.4"):
        assert _click(_through_proxy(sender)).status_code == 202

    first, second, third = Interaction.objects.order_by("id").values_list("client", flat=True)
    request = RequestFactory().post("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.4")
    assert first == second != third == client_digest(request)  # one /64 is one client
    assert re.fullmatch(r"[0-9a-f]{24}", first)
