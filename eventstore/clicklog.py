"""The DynamoDB `clicklog`: the durable, per-visitor record of every event.

Partition key `visitor`, sort key `sk` = `<ts>#<event_id>`, so a Query on one visitor
returns their events in time order. An event answered 2xx is in this table; the live
workers read a visitor's new events from it, never from Kafka payloads.

An item is written `pending` first and confirmed (written again without the flag) only once
the history mirror holds it (`movie.events`); readers skip pending items, so a request that
died half-way never reaches the models.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from decimal import Decimal

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from django.conf import settings

from eventstore import expiry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    event_id: str
    visitor: str
    movie_id: int
    kind: str  # click | rate | remove
    ts: str  # ISO-8601 UTC with microseconds: sorts as text
    value: float | None = None
    pending: bool = False
    # A click on a poster of a shown list: the list's impression id and the poster's place in
    # it, from 1 (`movie.impressions`). Kept in the log so the mirror can be rebuilt from it.
    impression: str | None = None
    position: int | None = None

    @property
    def sort_key(self) -> str:
        return f"{self.ts}#{self.event_id}"

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "pending"}


# Bounded waits. With botocore's defaults a click against an unreachable DynamoDB took 25.6 s to
# fail (tests/movie/test_events.py); a put takes milliseconds (POST p99 157 ms at 100 clicks/s).
# A web request's writes get one try within WRITE_BUDGET_S, so it answers before the browser
# gives up (app.js: a click writes twice, pending then confirmed); the live workers' reads may
# retry.
_CONNECT_S, _WRITE_READ_S = 0.4, 0.6
WRITE_BUDGET_S = _CONNECT_S + _WRITE_READ_S
_WRITES = Config(connect_timeout=_CONNECT_S, read_timeout=_WRITE_READ_S,
                 retries={"mode": "standard", "total_max_attempts": 1})
# A low-level client is thread-safe (a resource is not): live workers read many logs at once.
_READS = Config(connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 3},
                max_pool_connections=16)


@functools.cache
def _table(endpoint: str | None, region: str, name: str):
    return boto3.resource("dynamodb", endpoint_url=endpoint, region_name=region, config=_WRITES).Table(name)


def dynamodb_table(name: str):
    """One of our tables, with a web request's bounded writes (the impressions' table too)."""
    return _table(settings.DYNAMODB_ENDPOINT, settings.AWS_REGION, name)


def clicklog_table():
    return dynamodb_table(settings.DYNAMODB_TABLE)


@functools.cache
def _client(endpoint: str | None, region: str):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, config=_READS)


_deserialize = TypeDeserializer().deserialize


def _to_item(event: Event, visitor: str) -> dict:
    item = {
        "visitor": visitor,
        "sk": event.sort_key,
        "event_id": event.event_id,
        "movie_id": event.movie_id,
        "kind": event.kind,
        "ts": event.ts,
        # Kept CLICKLOG_RETENTION_DAYS after the event, then deleted: the table's TTL on AWS,
        # eventstore.expiry's sweep on dynalite and DynamoDB Local.
        "expires": expiry.expires_at(event.ts, days=settings.CLICKLOG_RETENTION_DAYS),
    }
    if event.value is not None:
        item["value"] = Decimal(str(event.value))
    if event.pending:
        item["pending"] = True
    if event.impression is not None:
        item["impression"], item["position"] = event.impression, event.position
    return item


def _from_item(item: dict) -> Event:
    value = item.get("value")
    return Event(
        event_id=item["event_id"],
        visitor=item["visitor"],
        movie_id=int(item["movie_id"]),
        kind=item["kind"],
        ts=item["ts"],
        value=float(value) if value is not None else None,
        pending=bool(item.get("pending", False)),
        impression=item.get("impression"),
        position=int(item["position"]) if item.get("position") is not None else None,
    )


def event_put(event: Event) -> None:
    """Write one event (pending or confirmed, as `event.pending` says); writing the same
    event twice leaves one item (same keys)."""
    clicklog_table().put_item(Item=_to_item(event, event.visitor))


def event_get(event: Event) -> Event | None:
    """The stored item with `event`'s keys (pending or not), or None."""
    item = clicklog_table().get_item(Key={"visitor": event.visitor, "sk": event.sort_key}, ConsistentRead=True)
    return _from_item(item["Item"]) if "Item" in item else None


def event_delete(event: Event) -> None:
    clicklog_table().delete_item(Key={"visitor": event.visitor, "sk": event.sort_key})


def events_for(visitor: str, after: str | None = None, *, pending: bool = False) -> list[Event]:
    """A visitor's confirmed events (`pending`: and the pending ones), oldest first; `after`:
    only those whose sort key is greater (a key condition, so DynamoDB reads just those).
    Follows DynamoDB's pagination."""
    query = {
        "TableName": settings.DYNAMODB_TABLE,
        "KeyConditionExpression": "visitor = :v" + (" AND sk > :after" if after else ""),
        "ExpressionAttributeValues": {":v": {"S": visitor}, **({":after": {"S": after}} if after else {})},
        "ConsistentRead": True,
    }
    dynamodb = _client(settings.DYNAMODB_ENDPOINT, settings.AWS_REGION)
    events: list[Event] = []
    while True:
        page = dynamodb.query(**query)
        found = (_from_item({k: _deserialize(v) for k, v in item.items()}) for item in page["Items"])
        events.extend(e for e in found if pending or not e.pending)
        if "LastEvaluatedKey" not in page:
            return events
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def events_copy(*, from_visitor: str, to_visitor: str) -> list[Event]:
    """Copy a visitor's confirmed events under another visitor id (same sort keys, so a
    second copy changes nothing); returns them."""
    events = events_for(from_visitor)
    with clicklog_table().batch_writer() as batch:
        for event in events:
            batch.put_item(Item=_to_item(event, to_visitor))
    return events


def events_drop(visitor: str) -> None:
    """Delete every item of a visitor's log, pending ones included."""
    with clicklog_table().batch_writer() as batch:
        for event in events_for(visitor, pending=True):
            batch.delete_item(Key={"visitor": visitor, "sk": event.sort_key})


def events_move(*, from_visitor: str, to_visitor: str) -> list[Event]:
    """Re-key a visitor's whole log. Copies first, then deletes, so a failure half-way
    leaves events under both keys, never lost, and a second run finishes the move."""
    events = events_copy(from_visitor=from_visitor, to_visitor=to_visitor)
    events_drop(from_visitor)
    return events


def undo_logged(what: str, undo, subject: str) -> bool:
    """Run `undo` after a failed write; a failure is logged (naming `subject`), not raised,
    so the caller's own error is the one the client sees. True when it worked."""
    try:
        undo()
        return True
    except Exception:
        log.exception("%s: could not %s", subject, what)
        return False
