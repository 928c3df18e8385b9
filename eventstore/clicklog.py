"""The DynamoDB `clicklog`: the durable, per-visitor record of every event.

Partition key `visitor`, sort key `sk` = `<ts>#<event_id>`, so a Query on one visitor
returns their events in time order. An event answered 2xx is in this table; the live
workers read a visitor's new events from it, never from Kafka payloads.

An item is written `pending` first and confirmed (the flag removed) only once the history
mirror holds it (`movie.tracking.events`); readers skip pending items, so a request that died half-way
never reaches the models. Every change of an item's state is a conditional write, so DynamoDB
decides, one item at a time, which of two requests racing on it wins (`item_start`,
`item_confirm`, `item_abandon`, `item_cancel`; the impressions' table uses them too):

    (none) --start--> pending --confirm--> confirmed
                         |--abandon--> (none)     only while pending: a confirmed item stays
                         '--cancel---> cancelled  a removal of its movie overtook it (tombstone)

A confirmed item is never deleted by a request's rollback nor made pending again; readers skip
cancelled items as they skip pending ones, and the retention sweep takes them with the rest.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass
from decimal import Decimal

from botocore.exceptions import ClientError
from django.conf import settings

from eventstore import dynamodb, expiry

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
    # it, from 1 (`movie.tracking.impressions`). Kept in the log so the mirror can be rebuilt from it.
    impression: str | None = None
    position: int | None = None

    @property
    def sort_key(self) -> str:
        return f"{self.ts}#{self.event_id}"

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "pending"}


# Bounded waits (eventstore.dynamodb). With botocore's defaults a click against an unreachable
# DynamoDB took 25.6 s to fail (tests/movie/tracking/test_events.py); a put takes milliseconds
# (POST p99 157 ms at 100 clicks/s). A web request's writes get one try within WRITE_BUDGET_S, so
# it answers before the browser gives up (app.js: a click writes twice, pending then confirmed);
# the live workers' reads may retry.
WRITE_BUDGET_S = dynamodb.WRITES.connect_s + dynamodb.WRITES.read_s


@functools.cache
def _table(endpoint: str | None, region: str, name: str) -> dynamodb.Table:
    return dynamodb.Table(endpoint, region, name)


def dynamodb_table(name: str):
    """One of our tables, with a web request's bounded writes (the impressions' table too)."""
    return _table(settings.DYNAMODB_ENDPOINT, settings.AWS_REGION, name)


def clicklog_table():
    return dynamodb_table(settings.DYNAMODB_TABLE)


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


ADDING_KINDS = ("click", "rate")  # the kinds that put a movie in the history; `remove` takes it out
DISMISS = "dismiss"  # "Not interested": the movie leaves every list, a negative for the models
# The kinds a movie's latest event can be, of which `remove` undoes each (and a `dismiss` undone
# is a removal of its movie).
MOVIE_KINDS = (*ADDING_KINDS, DISMISS)

# Item states (`item_state`), and what `item_abandon` answers when it deleted the item itself.
PENDING, CONFIRMED, CANCELLED, DELETED = "pending", "confirmed", "cancelled", "deleted"
_NAMES = {"#pending": "pending", "#cancelled": "cancelled"}
_LIVE_PENDING = "#pending = :yes AND attribute_not_exists(#cancelled)"


def _refused(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _conditional(write, **kwargs) -> bool:
    """Run a conditional write; False when DynamoDB refused it on its condition."""
    try:
        write(**kwargs)
    except ClientError as exc:
        if _refused(exc):
            return False
        raise
    return True


def _state(item: dict | None) -> str | None:
    if item is None:
        return None
    return CANCELLED if item.get("cancelled") else PENDING if item.get("pending") else CONFIRMED


def item_state(table, key: dict, *, owner: str | None = None) -> str | None:
    """PENDING, CONFIRMED or CANCELLED: the item's state now (a consistent read); None: no item,
    or (`owner` given) a pending item another try owns."""
    item = table.get_item(Key=key, ConsistentRead=True).get("Item")
    state = _state(item)
    if state == PENDING and owner is not None and item.get("owner", "") != owner:
        return None
    return state


def _owned(condition: str, owner: str | None) -> tuple[str, dict, dict]:
    """`condition`, and the item names this try (`owner`; None: keys are the try's own)."""
    if owner is None:
        return condition, dict(_NAMES), {}
    return f"({condition}) AND #owner = :owner", {**_NAMES, "#owner": "owner"}, {":owner": owner}


def item_start(table, item: dict, *, owner: str | None = None) -> bool:
    """Write a pending `item` for the try `owner`, unless its keys hold a confirmed or cancelled
    one (False): a try that writes the same keys as an earlier one takes a pending item over,
    but never turns a confirmed item back to pending."""
    item = {**item, "pending": True, **({"owner": owner} if owner is not None else {})}
    return _conditional(table.put_item, Item=item, ExpressionAttributeNames=_NAMES,
                        ConditionExpression=f"attribute_not_exists(sk) OR ({_LIVE_PENDING})",
                        ExpressionAttributeValues={":yes": True})


def item_confirm(table, key: dict, *, owner: str | None = None) -> bool:
    """Confirm a pending item (a confirmed one stays so). False when the item is gone, cancelled
    or (`owner`) another try's: whoever took it decides the event's fate, and this request must
    not answer 2xx."""
    condition, names, values = _owned("attribute_exists(sk) AND attribute_not_exists(#cancelled)", owner)
    return _conditional(table.update_item, Key=key, UpdateExpression="REMOVE #pending",
                        ConditionExpression=condition, ExpressionAttributeNames=names,
                        **({"ExpressionAttributeValues": values} if values else {}))


def item_abandon(table, key: dict, *, owner: str | None = None) -> str | None:
    """Delete the item only while it is pending (and `owner`'s): DELETED when this call deleted it
    (so no request can confirm it any more, and the caller may undo what else it wrote), else its
    state now (CONFIRMED: another try answered for it; CANCELLED; None: gone or another try's)."""
    condition, names, values = _owned(_LIVE_PENDING, owner)
    if _conditional(table.delete_item, Key=key, ConditionExpression=condition, ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":yes": True, **values}):
        return DELETED
    return item_state(table, key, owner=owner)


def item_cancel(table, key: dict) -> bool:
    """Mark a pending item cancelled, so that no request can confirm it; False when it is not
    pending (confirmed, cancelled or gone)."""
    return _conditional(table.update_item, Key=key, UpdateExpression="SET #cancelled = :yes",
                        ExpressionAttributeNames=_NAMES, ConditionExpression=_LIVE_PENDING,
                        ExpressionAttributeValues={":yes": True})


def _key(event: Event) -> dict:
    return {"visitor": event.visitor, "sk": event.sort_key}


def event_put(event: Event) -> None:
    """Write one event as it is (pending or confirmed, as `event.pending` says), whatever the
    table holds: for moving confirmed events and for tests. Requests use `event_start`."""
    clicklog_table().put_item(Item=_to_item(event, event.visitor))


def event_start(event: Event) -> bool:
    """A request's first write of its event: pending, under a key no other try uses."""
    return item_start(clicklog_table(), _to_item(event, event.visitor))


def event_confirm(event: Event) -> bool:
    return item_confirm(clicklog_table(), _key(event))


def event_abandon(event: Event) -> str | None:
    return item_abandon(clicklog_table(), _key(event))


def event_cancel(event: Event) -> bool:
    return item_cancel(clicklog_table(), _key(event))


def event_state(event: Event) -> str | None:
    return item_state(clicklog_table(), _key(event))


def event_get(event: Event) -> Event | None:
    """The stored item with `event`'s keys (pending or not), or None."""
    item = clicklog_table().get_item(Key=_key(event), ConsistentRead=True)
    return _from_item(item["Item"]) if "Item" in item else None


def event_delete(event: Event) -> None:
    clicklog_table().delete_item(Key=_key(event))


def _query(visitor: str, *, after: str | None = None, before: str | None = None, movie_id: int | None = None,
           kinds: tuple[str, ...] = (), pending_only: bool = False) -> list[Event]:
    """Events of one visitor's log between two sort keys, filtered, pending and confirmed alike
    (never cancelled), oldest first. With a web request's bounded waits: one try of each page."""
    key = "visitor = :v" + (" AND sk > :after" if after else " AND sk < :before" if before else "")
    filters, names = ["attribute_not_exists(#cancelled)"], {"#cancelled": "cancelled"}
    values: dict = {":v": visitor, **({":after": after} if after else {":before": before} if before else {})}
    if movie_id is not None:
        filters.append("#movie = :movie")
        names["#movie"], values[":movie"] = "movie_id", movie_id
    if kinds:
        filters.append(f"#kind IN ({', '.join(f':k{i}' for i in range(len(kinds)))})")
        names["#kind"] = "kind"
        values.update({f":k{i}": kind for i, kind in enumerate(kinds)})
    if pending_only:
        filters.append("#pending = :yes")
        names["#pending"], values[":yes"] = "pending", True
    query = {"KeyConditionExpression": key, "FilterExpression": " AND ".join(filters),
             "ExpressionAttributeNames": names, "ExpressionAttributeValues": values, "ConsistentRead": True}
    events: list[Event] = []
    while True:
        page = clicklog_table().query(**query)
        events.extend(_from_item(item) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return events
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def removals(visitor: str, *, after: str, movie_id: int | None = None) -> list[Event]:
    """Removals in a visitor's log that sort after `after` (of one movie if given), pending or
    confirmed: what a click sorting at `after` must not overtake."""
    return _query(visitor, after=after, movie_id=movie_id, kinds=("remove",))


def pending_adds_before(visitor: str, *, before: str, movie_id: int) -> list[Event]:
    """Clicks, ratings and dismissals of a movie still pending in a visitor's log, sorting
    before `before`: in flight, or left by requests that died."""
    return _query(visitor, before=before, movie_id=movie_id, kinds=MOVIE_KINDS, pending_only=True)


def events_for(visitor: str, after: str | None = None, *, pending: bool = False) -> list[Event]:
    """A visitor's confirmed events (`pending`: and the pending ones; never the cancelled),
    oldest first; `after`: only those whose sort key is greater (a key condition, so DynamoDB
    reads just those). Follows DynamoDB's pagination."""
    query = {
        "KeyConditionExpression": "visitor = :v" + (" AND sk > :after" if after else ""),
        "ExpressionAttributeValues": {":v": visitor, **({":after": after} if after else {})},
        "ConsistentRead": True,
    }
    events: list[Event] = []
    while True:
        page = clicklog_table().query(dynamodb.READS, **query)
        found = (_from_item(item) for item in page["Items"] if not item.get("cancelled"))
        events.extend(e for e in found if pending or not e.pending)
        if "LastEvaluatedKey" not in page:
            return events
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def events_put(events: list[Event], *, visitor: str) -> None:
    """Write confirmed events under `visitor` (their own sort keys, so writing them twice
    changes nothing)."""
    with clicklog_table().batch_writer() as batch:
        for event in events:
            batch.put_item(Item=_to_item(Event(**{**event.__dict__, "pending": False}), visitor))


def events_delete(visitor: str, sort_keys: list[str]) -> None:
    with clicklog_table().batch_writer() as batch:
        for sort_key in sort_keys:
            batch.delete_item(Key={"visitor": visitor, "sk": sort_key})


def events_copy(*, from_visitor: str, to_visitor: str) -> list[Event]:
    """Copy a visitor's confirmed events under another visitor id (same sort keys, so a
    second copy changes nothing); returns them."""
    events = events_for(from_visitor)
    events_put(events, visitor=to_visitor)
    return events


def events_drop(visitor: str) -> None:
    """Delete every item of a visitor's log, pending and cancelled ones included."""
    query = {"KeyConditionExpression": "visitor = :v", "ExpressionAttributeValues": {":v": visitor},
             "ProjectionExpression": "sk", "ConsistentRead": True}
    while True:
        page = clicklog_table().query(dynamodb.READS, **query)
        events_delete(visitor, [item["sk"] for item in page["Items"]])
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def events_move(*, from_visitor: str, to_visitor: str) -> list[Event]:
    """Re-key a visitor's whole log (the visitor-id migration). Copies first, then deletes, so
    a failure half-way leaves events under both keys, never lost, and a second run finishes."""
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
