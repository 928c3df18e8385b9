"""Kafka `clicks`: the stream that tells the live workers a visitor has news.

Keyed by visitor so one visitor's events stay ordered on one partition. The payload is
the event JSON; the worker treats it as a notification and reads the durable history
from the click log.
"""

from __future__ import annotations

import functools
import json

from django.conf import settings
from kafka import KafkaProducer

# Fail a request quickly, not in the client's default minute, when the broker is gone: a click's
# writes together must end before the browser gives up (app.js EVENT_TIMEOUT_MS).
SEND_TIMEOUT_S = 1.0


@functools.cache
def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks="all",
        linger_ms=0,
        retries=3,
        max_block_ms=int(SEND_TIMEOUT_S * 1000),
        request_timeout_ms=int(SEND_TIMEOUT_S * 1000),
        key_serializer=str.encode,
        value_serializer=lambda value: json.dumps(value).encode(),
    )


def publish(*, visitor: str, payload: dict, topic: str | None = None) -> None:
    """Send to `topic` (the clicks topic unless told) and wait for the broker's acknowledgement
    (acks=all); raises KafkaError."""
    future = _producer(settings.KAFKA_BOOTSTRAP).send(topic or settings.KAFKA_TOPIC, key=visitor,
                                                      value=payload)
    future.get(timeout=SEND_TIMEOUT_S)
