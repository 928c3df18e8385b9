"""Kafka `clicks`: the stream that tells the live workers a visitor has news.

Keyed by visitor so one visitor's events stay ordered on one partition. The payload is
the event JSON; the worker treats it as a notification and reads the durable history
from the click log.

The producer is confluent-kafka's (librdkafka, in C): a send and its acknowledgement cost the
web process 0.16 ms of CPU where kafka-python's cost 0.8-0.9 ms, and half the wait
(docs/benchmarks.md, "The click path, first cuts"). The consumer (`workers.consumer`) and the admin
calls stay kafka-python's.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time

from confluent_kafka import KafkaError, KafkaException, Producer
from django.conf import settings

log = logging.getLogger(__name__)

# Fail a request quickly, not in the client's default minute, when the broker is gone: a click's
# writes together must end before the browser gives up (app.js EVENT_TIMEOUT_MS).
SEND_TIMEOUT_S = 1.0


@functools.cache
def _producer(bootstrap: str, pid: int) -> Producer:
    """One producer a process (`pid`: librdkafka's threads do not survive a fork)."""
    return Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "linger.ms": 0,  # librdkafka waits 5 ms for a batch by default: a click waits for its own
        "socket.nagle.disable": True,
        "message.timeout.ms": int(SEND_TIMEOUT_S * 1000),  # retries included
        "socket.connection.setup.timeout.ms": int(SEND_TIMEOUT_S * 1000),
    }, logger=log)


class _Delivery:
    def __init__(self):
        self.done, self.error = threading.Event(), None

    def __call__(self, error, _message) -> None:
        self.error = error
        self.done.set()


def publish(*, visitor: str, payload: dict, topic: str | None = None) -> None:
    """Send to `topic` (the clicks topic unless told) and wait for the broker's acknowledgement
    (acks=all); raises KafkaException (BufferError when the producer's queue is full)."""
    producer = _producer(settings.KAFKA_BOOTSTRAP, os.getpid())
    delivery = _Delivery()
    producer.produce(topic or settings.KAFKA_TOPIC, key=visitor.encode(),
                     value=json.dumps(payload).encode(), on_delivery=delivery)
    # Delivery callbacks run in whichever thread polls: each waits for its own. librdkafka
    # answers every message within message.timeout.ms; the deadline only guards that promise.
    deadline = time.monotonic() + 2 * SEND_TIMEOUT_S
    while not delivery.done.is_set():
        if time.monotonic() > deadline:
            raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "no delivery report"))
        producer.poll(0.005)
    if delivery.error is not None:
        raise KafkaException(delivery.error)
