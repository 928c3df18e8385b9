"""The Redis client of the live path and the recommendation cache (settings.REDIS_URL): one per
process and URL, with timeouts short enough that a Redis gone away fails a request, not hangs it."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def client() -> redis.Redis:
    return _client(settings.REDIS_URL)
