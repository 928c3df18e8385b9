"""`make demo`'s stores and their bounds: a cache Valkey that evicts past its maxmemory and a
broker Valkey that never does, the click-log and impression tables ready for retention."""

from __future__ import annotations

import redis

from devstack.services import BROKER_MAXMEMORY, CACHE_MAXMEMORY, Valkey, start_services
from devstack.supervisor import Stack

VALUE = b"x" * 10_000


def _fill(client: redis.Redis, keys: int) -> int:
    """Write `keys` values of 10 KB; how many writes the server refused."""
    refused = 0
    for n in range(keys):
        try:
            client.set(f"k:{n}", VALUE)
        except redis.exceptions.OutOfMemoryError:
            refused += 1
    return refused


def test_the_cache_evicts_past_its_maxmemory_and_the_broker_refuses_instead(tmp_path):
    """What each policy does with 8 MB of writes into 2 MB."""
    with Stack() as stack:
        cache = stack.start(Valkey(name="cache", maxmemory="2mb", policy="allkeys-lru", log_dir=tmp_path))
        broker = stack.start(Valkey(name="broker", maxmemory="2mb", policy="noeviction", log_dir=tmp_path))
        cache_client, broker_client = redis.Redis.from_url(cache.url), redis.Redis.from_url(broker.url)

        assert _fill(cache_client, 800) == 0  # every write taken ...
        assert cache_client.info("memory")["used_memory"] <= 2 * 2**20
        assert cache_client.info("stats")["evicted_keys"] > 0 and cache_client.exists("k:799")  # ... the oldest gone

        assert _fill(broker_client, 800) > 0  # past its bound a write fails ...
        assert broker_client.info("stats")["evicted_keys"] == 0 and broker_client.exists("k:0")  # ... nothing evicted
        cache_client.close()
        broker_client.close()


def test_the_demo_runs_a_bounded_cache_and_a_broker_that_never_evicts(tmp_path):
    with Stack() as stack:
        found = start_services(stack, dynalite_path=tmp_path / "dynalite", log_dir=tmp_path)
        assert found["REDIS_URL"] != found["BROKER_REDIS_URL"]
        cache, broker = redis.Redis.from_url(found["REDIS_URL"]), redis.Redis.from_url(found["BROKER_REDIS_URL"])
        assert cache.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert broker.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert int(cache.config_get("maxmemory")["maxmemory"]) == int(CACHE_MAXMEMORY.removesuffix("mb")) * 2**20
        assert int(broker.config_get("maxmemory")["maxmemory"]) == int(BROKER_MAXMEMORY.removesuffix("mb")) * 2**20
        cache.close()
        broker.close()
