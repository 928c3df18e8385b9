"""The session's real services answer: a keyed Kafka round trip through a consumer group,
DynamoDB items read back by partition key in sort-key order, and Redis PING."""

from __future__ import annotations

import time
import uuid

import boto3
import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer

from devstack.services import aws_kwargs, ensure_kafka_topic


def test_kafka_produce_all_acks_then_group_consumes_by_key(kafka_bootstrap):
    topic = f"test-{uuid.uuid4().hex[:8]}"
    assert ensure_kafka_topic(kafka_bootstrap, topic, partitions=3)
    sent = {f"s:{n}": [f"{n}-{i}".encode() for i in range(3)] for n in range(4)}
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for visitor, values in sent.items():
        for value in values:
            producer.send(topic, key=visitor.encode(), value=value).get(timeout=10)
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=2000,
    )
    received: dict[str, list[bytes]] = {}
    partitions: dict[str, set[int]] = {}
    deadline = time.monotonic() + 30
    while sum(map(len, received.values())) < 12 and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                received.setdefault(record.key.decode(), []).append(record.value)
                partitions.setdefault(record.key.decode(), set()).add(record.partition)
    consumer.commit()
    committed = {tp: consumer.committed(tp) for tp in consumer.assignment()}
    consumer.close()

    assert received == sent  # per key, in produce order
    assert all(len(p) == 1 for p in partitions.values())  # one key, one partition
    assert sum(committed.values()) == 12


def test_dynamodb_query_by_visitor_in_sort_key_order(clicklog_table, dynamodb_endpoint):
    table = boto3.resource(
        "dynamodb", endpoint_url=dynamodb_endpoint, **aws_kwargs()
    ).Table(clicklog_table)
    for sk in ("2024-01-03#c", "2024-01-01#a", "2024-01-02#b"):
        table.put_item(Item={"visitor": "s:abc", "sk": sk, "movie_id": 1})
    table.put_item(Item={"visitor": "s:other", "sk": "2024-01-01#z", "movie_id": 2})

    items = table.query(
        KeyConditionExpression="visitor = :v", ExpressionAttributeValues={":v": "s:abc"}
    )["Items"]

    assert [item["sk"] for item in items] == [
        "2024-01-01#a",
        "2024-01-02#b",
        "2024-01-03#c",
    ]


def test_clicklog_table_is_empty_for_each_test(clicklog_table, dynamodb_endpoint):
    table = boto3.resource(
        "dynamodb", endpoint_url=dynamodb_endpoint, **aws_kwargs()
    ).Table(clicklog_table)
    assert table.scan()["Items"] == []


def test_redis_answers_ping(redis_url):
    assert redis.Redis.from_url(redis_url).ping()


@pytest.mark.parametrize("name", ["KAFKA_BOOTSTRAP", "DYNAMODB_ENDPOINT", "REDIS_URL"])
def test_settings_point_at_the_session_services(services, settings, name):
    assert getattr(settings, name) == services[name]
