"""Rate limits: sliding windows counted in Redis; a client over its limit gets a 429.

`settings.RATE_LIMITS` maps an action to (count, window seconds). A client is its address as
the deployment sees it (`client_address`: the trusted proxies' X-Forwarded-For, IPv6 by /64).
Keys are keyed digests (HMAC with SECRET_KEY), so no address, visitor id or username is stored
in clear, nor can be recovered by hashing every IPv4 address; each lives two windows. If Redis is
unreachable the request goes through: losing the limiter must not take the site down with it.

The HMAC salts still name this module's old path (`movie.ratelimit.*`): a salt is part of every
key, stored digest (`Interaction.client`) and signed device cookie, so a new one would reset the
limits, split a client's digests in two and sign every browser out of its device bucket.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import secrets
import time
import unicodedata

import redis
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.crypto import salted_hmac

log = logging.getLogger(__name__)


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"too many requests: try again in {retry_after} s")
        self.retry_after = retry_after


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def limit(action: str, key: str) -> None:
    """Count one `action` by `key`; raise RateLimited past the action's limit.

    A sliding window: the current window's count plus the previous window's, weighted by how
    much of it still overlaps the last `window` seconds. A fixed window alone lets a client send
    twice its limit across a boundary (its last second and the next window's first)."""
    limits((action, key))


def limits(*counted: tuple[str, str]) -> None:
    """`limit` for each (action, key), all counted in one Redis round trip (a click counts its
    address and its visitor); raises RateLimited for the first one past its limit."""
    now = time.time()
    windows = []
    try:
        pipe = _client(settings.BROKER_REDIS_URL).pipeline(transaction=False)
        for action, key in counted:
            count, window = settings.RATE_LIMITS[action]
            digest = salted_hmac("movie.ratelimit.limit", key, algorithm="sha256").hexdigest()[:24]
            index = int(now // window)
            pipe.incr(f"rate:{action}:{digest}:{index}")
            pipe.expire(f"rate:{action}:{digest}:{index}", 2 * window)
            pipe.get(f"rate:{action}:{digest}:{index - 1}")
            windows.append((count, window, index))
        answers = pipe.execute()
    except (redis.RedisError, ValueError):
        # ValueError: redis-py 5.2 lets "I/O operation on closed file" out of a connect whose
        # handshake timed out (seen as a 500 under benchmarks.click_load's 200 new sessions).
        log.warning("rate limiter unreachable: %s not limited", ", ".join(a for a, _ in counted))
        return
    for (count, window, index), at in zip(windows, range(0, len(answers), 3), strict=True):
        current, previous = answers[at], int(answers[at + 2] or 0)
        elapsed = now - index * window
        if previous * (1 - elapsed / window) + current > count:
            raise RateLimited(retry_after=_retry_after(previous, current, count, window, elapsed))


def _retry_after(previous: int, current: int, count: int, window: int, elapsed: float) -> int:
    """Seconds until one more request would pass, if the client sends nothing before it."""
    if current < count and previous:  # in this window, once the previous one's weight fades
        wait = (1 - (count - current - 1) / previous) * window - elapsed
    else:  # in the next one, once this window's weight fades in turn
        wait = (window - elapsed) + max(0.0, 1 - (count - 1) / current) * window
    return max(1, math.ceil(wait))


def client_address(request: HttpRequest) -> str:
    """The client as the limits count it: its IPv4 address, or its IPv6 /64 (what one subscriber
    is given: rotating through it changes nothing). Behind `settings.TRUSTED_PROXIES` = N proxies
    that each append the address they received from to X-Forwarded-For, the client is the Nth
    entry from the right, the one the outermost proxy wrote; entries left of it are the client's
    own writing and never read. With fewer entries, or one that is not an address, REMOTE_ADDR."""
    remote = request.META.get("REMOTE_ADDR", "")
    chosen = remote
    hops = settings.TRUSTED_PROXIES
    if hops:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if len(forwarded) >= hops:
            chosen = forwarded[-hops]
    # A REMOTE_ADDR that is no address (a unix socket's) is still the server's word, not the client's.
    return _address_bucket(chosen) or _address_bucket(remote) or remote[:64]


def client_digest(request: HttpRequest) -> str:
    """A keyed digest of `client_address` (24 hex digits: what `Interaction.client` holds), so a
    retrain can group one client's events without anyone keeping its address."""
    return salted_hmac("movie.ratelimit.client", client_address(request), algorithm="sha256").hexdigest()[:24]


def _address_bucket(text: str) -> str | None:
    text = text.strip()
    if text.startswith("["):  # "[2001:db8::1]:443", as some proxies write a port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # "192.0.2.1:443"
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 4:
        return str(address)
    if address.ipv4_mapped:  # a dual-stack socket's IPv4 client
        return str(address.ipv4_mapped)
    return f"{ipaddress.IPv6Address(int(address) >> 64 << 64)}/64"  # drops a scope id too


# --- Log-in tries ---------------------------------------------------------------
# A browser that logged in to an account carries this signed cookie (a year, nothing kept on
# the server): its tries at that account count against its own device bucket, not the
# account's, so guesses from many addresses that use up the account's bucket do not lock out
# its owner (the "device cookie" defence against lock-out).
DEVICE_COOKIE = "login_device"
DEVICE_SALT = "movie.ratelimit.login_device"
DEVICE_MAX_AGE_S = 365 * 24 * 3600


def username_key(raw: str) -> str:
    """One key for every spelling that can reach the same account: the form strips and
    NFKC-normalises the username, and MySQL's collation ignores case, accents and ignorable
    characters; no username can hold anything but letters, digits and `.@+-_`. Spellings that
    are different accounts may share a key: that only makes their limit stricter."""
    text = AbstractBaseUser.normalize_username(raw[:200].strip())
    text = unicodedata.normalize("NFKD", text).casefold()
    return "".join(c for c in text if (c.isalnum() or c in ".@+-_") and not unicodedata.combining(c))


def login_limit(request: HttpRequest) -> None:
    """Count one log-in try; raise RateLimited past a limit. The address is counted before the
    body is read, and each bucket only when the narrower ones let the try through, so one
    address adds at most its own limit to an account's bucket."""
    address = client_address(request)
    limit("login_address", address)  # one address spraying many accounts
    username = username_key(request.POST.get("username", ""))
    limit("login", f"{address}:{username}")  # one address guessing one account
    device = _login_device(request)
    if device is not None and device[1] == username:
        limit("login_device", device[0])  # the account's own browser
    else:
        limit("login_username", username)  # many addresses guessing one account


def login_limited(view):
    """Wraps a log-in view (ours, the admin's): POSTs are limited, and a log-in that succeeds
    leaves the device cookie for that account."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method != "POST":
            return view(request, *args, **kwargs)
        login_limit(request)
        response = view(request, *args, **kwargs)
        # Both log-in views answer a POST with a redirect only when the form logged someone in.
        if response.status_code == 302 and request.user.is_authenticated:
            response.set_signed_cookie(
                DEVICE_COOKIE, f"{secrets.token_hex(8)}:{username_key(request.user.get_username())}",
                salt=DEVICE_SALT, max_age=DEVICE_MAX_AGE_S, secure=settings.SESSION_COOKIE_SECURE,
                httponly=True, samesite="Lax",
            )
        return response

    return wrapped


def _login_device(request: HttpRequest) -> tuple[str, str] | None:
    """(device nonce, username key) from a valid device cookie, else None."""
    value = request.get_signed_cookie(DEVICE_COOKIE, default=None, salt=DEVICE_SALT, max_age=DEVICE_MAX_AGE_S)
    if not value or ":" not in value:
        return None
    nonce, _, username = value.partition(":")
    return nonce, username


class RateLimitMiddleware:
    """Turns RateLimited raised anywhere in a view into a 429 with Retry-After."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, RateLimited):
            return None
        if request.path.startswith("/api/"):
            response = JsonResponse({"error": str(exception)}, status=429)
        else:
            response = render(request, "movie/error.html", {"message": str(exception)}, status=429)
        response["Retry-After"] = str(exception.retry_after)
        return response
