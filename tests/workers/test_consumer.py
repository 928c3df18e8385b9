"""The clickstream consumer against the real broker: bursts coalesce, offsets commit, a broker
that restarts empty is read again from its beginning."""

from __future__ import annotations

import json
import threading
import time
import uuid

from django.conf import settings
from kafka import KafkaProducer

from devstack.services import Kafka
from devstack.supervisor import Stack
from workers import tasks
from workers.consumer import ClickConsumer


def _poll_until_visitors(consumer: ClickConsumer, expected: set[str], timeout: float) -> list[str]:
    """Every visitor enqueued, in order, one entry per enqueued task."""
    enqueued, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and set(enqueued) != expected:
        enqueued.extend(consumer.run_once())
    return enqueued


def test_a_burst_becomes_one_task_per_visitor_and_is_committed(services, ticks):
    topic, group = f"clicks-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=settings.KAFKA_BOOTSTRAP, acks="all",
                             key_serializer=str.encode)
    for visitor in ["s:a"] * 5 + ["s:b"] * 2:
        producer.send(topic, key=visitor, value=b"{}")
    producer.flush()
    producer.close()

    consumer = ClickConsumer(bootstrap=settings.KAFKA_BOOTSTRAP, topic=topic, group=group)
    try:
        enqueued = _poll_until_visitors(consumer, {"s:a", "s:b"}, timeout=30)
    finally:
        consumer.kafka.close(autocommit=False)

    # A visitor's messages share a partition and arrive in one poll: one task each.
    assert sorted(enqueued) == ["s:a", "s:b"]
    assert len(ticks()) == tasks.TICK_SLOTS == 2  # ticks that wait for a worker are capped

    again = ClickConsumer(bootstrap=settings.KAFKA_BOOTSTRAP, topic=topic, group=group)
    try:
        leftovers, deadline = [], time.monotonic() + 30
        while not again.kafka.assignment():  # polls until the group has given it the partitions
            assert time.monotonic() < deadline, "the second consumer never joined the group"
            leftovers.extend(again.run_once())
        for _ in range(5):  # then reads from the committed offsets for a second
            leftovers.extend(again.run_once())
    finally:
        again.kafka.close(autocommit=False)
    assert not leftovers, "committed offsets were consumed again"
    assert len(ticks()) == 2  # and no poll without visitors sent one


def test_a_broker_that_restarts_empty_does_not_stop_the_consumer(services, ticks, tmp_path):
    """The demo's Kafka restarts past its memory bound (devstack.services) and comes back with
    empty topics and no group, while the consumer polls on. Its positions lie past the new
    logs' ends, where tansu answers with no records rather than OffsetOutOfRange, and tansu
    does not tell it that its group is gone: it must carry on from the new logs' beginnings at
    once, not wait until they grow past its old place (the soak lost the clicks before it)."""
    with Stack() as stack:
        kafka = stack.start(Kafka(log_dir=tmp_path))
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, key_serializer=str.encode, retries=10)
        before = {f"s:{n}" for n in range(400)}  # every partition's position goes to ~100
        for visitor in sorted(before):
            producer.send("clicks", key=visitor, value=b"{}")
        producer.flush()
        consumer = ClickConsumer(bootstrap=kafka.bootstrap, topic="clicks", group=f"g-{uuid.uuid4().hex[:8]}")
        try:
            assert set(_poll_until_visitors(consumer, before, timeout=30)) == before
            restart = threading.Thread(target=lambda: kafka.launch().wait_ready())  # same port, nothing kept
            restart.start()
            while restart.is_alive():
                consumer.run_once()
            restart.join()
            after = {f"s:after-{n}" for n in range(8)}  # a couple per partition: far below ~100
            for visitor in sorted(after):
                producer.send("clicks", key=visitor, value=b"{}").get(timeout=10)
            assert after <= set(_poll_until_visitors(consumer, after, timeout=30))
            # What the old broker took just before it stopped is gone: a reconcile sweep was sent.
            sweeps = [raw for raw in tasks.broker().lrange("live", 0, -1)
                      if json.loads(raw)["headers"]["task"] == "workers.tasks.reconcile_visitors"]
            assert sweeps
            for raw in sweeps:
                tasks.broker().lrem("live", 0, raw)
        finally:
            consumer.kafka.close(autocommit=False)
            producer.close()
