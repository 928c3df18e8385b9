"""The soak's load: browsers (a cookie jar and an address behind the soak's proxy), honest
visitors and what each does in one step, and the hostile client (`benchmarks.soak`)."""

from __future__ import annotations

import http.cookiejar
import json
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field

from benchmarks.faults import PAUSES_S, RETRY_S, TRY_TIMEOUT_S

HOSTILE_ADDRESS = "192.0.2.66"
TOKEN = re.compile(r'data-impression="([^"]+)" data-impression-token="([^"]+)"')
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Client:
    """One browser: its cookies and, through the soak's proxy, its own address."""

    def __init__(self, base: str, address: str):
        self.base, self.address = base, address
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.statuses: Counter[int | None] = Counter()

    def request(self, path: str, *, data: bytes | None = None, headers: dict | None = None,
                timeout: float = 30) -> tuple[int | None, bytes]:
        headers = {"X-Forwarded-For": self.address, "Referer": self.base + "/", **(headers or {})}
        if data is not None:
            if self.csrf() is None:  # as a browser has: the page before its first POST
                self.request("/")
            headers["X-CSRFToken"] = self.csrf() or ""
        request = urllib.request.Request(self.base + path, data=data, headers=headers,
                                         method="POST" if data is not None else "GET")
        try:
            with self.opener.open(request, timeout=timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, b""
        except OSError:
            status, body = None, b""
        self.statuses[status] += 1
        return status, body

    def csrf(self) -> str | None:
        return next((c.value for c in self.jar if c.name == "csrftoken"), None)

    def form(self, path: str, fields: dict) -> int | None:
        """GET a form page for its CSRF token, then POST the fields (redirects followed)."""
        _, page = self.request(path)
        token = CSRF_FIELD.search(page.decode(errors="replace"))
        body = urllib.parse.urlencode({**fields,
                                       "csrfmiddlewaretoken": token.group(1) if token else ""}).encode()
        status, _ = self.request(path, data=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        return status


@dataclass
class Click:
    key: str
    movie_id: int
    status: int | None = None
    tries: int = 0
    done_at: float | None = None  # monotonic time of its last answer


@dataclass
class Visitor:
    client: Client
    ids: set[str] = field(default_factory=set)  # every visitor id its clicks were answered with
    clicks: list[Click] = field(default_factory=list)
    removed: set[int] = field(default_factory=set)
    account: tuple[str, str] | None = None
    signed_in: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def event(self, movie_id: int, kind: str = "click", value: float | None = None) -> Click:
        """A click or rating as app.js sends it: one key, retried on 5xx or no answer for RETRY_S."""
        click = Click(str(uuid.uuid4()), movie_id)
        self.clicks.append(click)
        body = json.dumps({"movie_id": movie_id, "kind": kind,
                           **({"value": value} if value else {})}).encode()
        deadline = time.monotonic() + RETRY_S
        while True:
            click.tries += 1
            click.status, answer = self.client.request(
                "/api/events", data=body, timeout=TRY_TIMEOUT_S,
                headers={"Content-Type": "application/json", "Idempotency-Key": click.key})
            if click.status == 202:
                self.ids.add(json.loads(answer)["visitor"])
            pause = PAUSES_S[min(click.tries - 1, len(PAUSES_S) - 1)]
            if not (click.status is None or click.status >= 500) or time.monotonic() + pause >= deadline:
                click.done_at = time.monotonic()
                return click
            time.sleep(pause)

    def view(self, model: str) -> None:
        """A list page, and its impression posted as the page's script does."""
        status, page = self.client.request(f"/recommendations/{model}/")
        shown = TOKEN.search(page.decode(errors="replace")) if status == 200 else None
        if shown:  # keyed by the list's impression id, as app.js sends it
            self.client.request("/api/impressions", data=json.dumps({"token": shown.group(2)}).encode(),
                                headers={"Content-Type": "application/json",
                                         "Idempotency-Key": shown.group(1)})


def honest_address(i: int) -> str:
    """Visitor i's own client: an IPv6 /64 for even i, an IPv4 address (two test ranges) for odd."""
    if i % 2 == 0:
        return f"2001:db8:{i // 2:x}::{i + 1:x}"  # a host of its own /64
    return f"{('198.51.100', '203.0.113')[(i // 2) % 2]}.{(i // 4) % 254 + 1}"


def act(visitor: Visitor, rng: random.Random, pool: list[int], n: int) -> None:
    """One step of an honest visitor: mostly a click, sometimes something else."""
    with visitor.lock:  # a visitor does one thing at a time, as a person does
        roll = rng.random()
        clicked = {c.movie_id for c in visitor.clicks}
        fresh = [m for m in pool if m not in clicked and m not in visitor.removed]
        if roll < 0.02 and visitor.account is None and len(visitor.clicks) >= 3:
            username, password = f"soak{n}-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
            if visitor.client.form("/accounts/signup/", {"username": username, "password1": password,
                                                         "password2": password}) == 200:
                visitor.account, visitor.signed_in = (username, password), True
        elif roll < 0.03 and visitor.account is not None and visitor.signed_in:
            visitor.client.request("/accounts/logout/", data=b"", headers={
                "Content-Type": "application/x-www-form-urlencoded"})
            visitor.signed_in = False
        elif roll < 0.06 and visitor.account is not None and not visitor.signed_in:
            username, password = visitor.account
            visitor.client.form("/accounts/login/", {"username": username, "password": password})
            visitor.signed_in = True
        elif roll < 0.08 and (accepted := {c.movie_id for c in visitor.clicks
                                           if c.status == 202} - visitor.removed):
            movie_id = rng.choice(sorted(accepted))
            status, _ = visitor.client.request(f"/history/{movie_id}/remove", data=b"next=/history/",
                                               headers={"Content-Type": "application/x-www-form-urlencoded"})
            if status == 200:
                visitor.removed.add(movie_id)
        elif roll < 0.12:
            visitor.view(rng.choice(("lightgcn", "pinsage", "ngcf", "graphfilter")))
        elif fresh:
            visitor.event(rng.choice(fresh), *(("rate", rng.choice((3.0, 4.0, 5.0))) if roll < 0.15 else ()))


def hostile(attacker: Client, stop: threading.Event, victim: list[tuple[str, str]]) -> None:
    """One address: cookie-less requests (each would open a session) and password guesses at
    an honest account, counted in `attacker.statuses`."""
    while not stop.wait(0.1):
        flood = Client(attacker.base, attacker.address)
        flood.request("/api/recommendations/popular/?k=1")
        attacker.statuses.update(flood.statuses)
        if victim and random.random() < 0.1:
            attacker.form("/accounts/login/", {"username": victim[0][0], "password": uuid.uuid4().hex})
