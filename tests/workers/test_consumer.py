"""The clickstream consumer against the real broker: bursts coalesce, offsets commit, a broker
that restarts empty is read again from its beginning."""

from __future__ import annotations

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
    empty topics and no group. The consumer's next commit fails, and its positions lie past
    the new logs' ends, where tansu answers with no records rather than OffsetOutOfRange: it
    must carry on from the new logs' beginnings, not wait until they grow past its old place."""
    with Stack() as stack:
        kafka = stack.start(Kafka(log_dir=tmp_path))
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, key_serializer=str.encode, retries=10)
        before = {f"s:{n}" for n in range(40)}  # every partition gets a few
        for visitor in sorted(before):
            producer.send("clicks", key=visitor, value=b"{}")
        producer.flush()
        consumer = ClickConsumer(bootstrap=kafka.bootstrap, topic="clicks", group=f"g-{uuid.uuid4().hex[:8]}")
        try:
            assert set(_poll_until_visitors(consumer, before, timeout=30)) == before
            kafka.launch().wait_ready()  # the same port, nothing kept, the topics made again
            producer.send("clicks", key="s:after", value=b"{}").get(timeout=10)
            assert "s:after" in _poll_until_visitors(consumer, {"s:after"}, timeout=30)
        finally:
            consumer.kafka.close(autocommit=False)
            producer.close()
