"""Rate limits: fixed windows counted in Redis; a client over its limit gets a 429.

`settings.RATE_LIMITS` maps an action to (count, window seconds). Keys are hashed, so no
address or visitor id is stored in clear. If Redis is unreachable the request goes through:
losing the limiter must not take the site down with it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

log = logging.getLogger(__name__)


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"too many requests: try again in {retry_after} s")
        self.retry_after = retry_after


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def limit(action: str, key: str) -> None:
    """Count one `action` by `key`; raise RateLimited past the action's limit."""
    count, window = settings.RATE_LIMITS[action]
    now = time.time()
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    name = f"rate:{action}:{digest}:{int(now // window)}"
    try:
        pipe = _client(settings.BROKER_REDIS_URL).pipeline()
        pipe.incr(name)
        pipe.expire(name, window)
        seen, _ = pipe.execute()
    except redis.RedisError:
        log.warning("rate limiter unreachable: %s not limited", action)
        return
    if seen > count:
        raise RateLimited(retry_after=max(1, int(window - now % window)))


def client_address(request: HttpRequest) -> str:
    # REMOTE_ADDR only: a forwarded header is the client's to forge unless a proxy sets it.
    return request.META.get("REMOTE_ADDR", "")


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
