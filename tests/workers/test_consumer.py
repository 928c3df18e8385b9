"""The clickstream consumer against the real broker: bursts coalesce, offsets commit."""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from kafka import KafkaProducer

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
