"""Retention: every click-log and impression item carries `expires`, and the sweep that
deletes expired items where no TTL does (dynalite here) walks the whole table, a bounded
number of items per run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from devstack.services import aws_kwargs, ensure_table_ttl
from eventstore import clicklog, expiry
from eventstore.clicklog import Event
from predictors import TS_FORMAT


def _table(services, name: str):
    return boto3.resource("dynamodb", endpoint_url=services["DYNAMODB_ENDPOINT"], **aws_kwargs()).Table(name)


def _ts(at: datetime) -> str:
    return at.strftime(TS_FORMAT)


def test_a_click_log_item_expires_its_retention_after_the_event(services, clicklog_table, settings):
    settings.CLICKLOG_RETENTION_DAYS = 30
    event = Event(event_id=str(uuid.uuid4()), visitor="v:expiry", movie_id=1, kind="click",
                  ts="2024-01-01T00:00:00.250000Z", pending=True)
    clicklog.event_put(event)
    clicklog.event_put(Event(**{**event.__dict__, "pending": False}))  # the confirm: the same `expires`

    key = {"visitor": event.visitor, "sk": event.sort_key}
    item = _table(services, clicklog_table).get_item(Key=key)["Item"]
    assert int(item["expires"]) == int(datetime(2024, 1, 31, tzinfo=UTC).timestamp())
    assert clicklog.events_for("v:expiry")[0].event_id == event.event_id  # readers ignore the attribute


def test_an_impression_item_expires_its_retention_after_the_render(settings):
    from movie.tracking.impression_tokens import ShownList
    from movie.tracking.impressions import _item

    settings.IMPRESSIONS_RETENTION_DAYS = 90
    shown = ShownList(impression_id="i-1", visitor="v:1", model="ngcf", model_version=None, page="home",
                      movie_ids=[1, 2], at="2024-03-01T12:00:00.000000Z")
    assert _item(shown, pending=True)["expires"] == _item(shown, pending=False)["expires"] == int(
        datetime(2024, 5, 30, 12, tzinfo=UTC).timestamp())


def test_dynalite_has_no_ttl_so_the_sweep_is_what_deletes(services, clicklog_table):
    """Why the sweep exists: were this to pass one day, TTL could do its job here too."""
    assert ensure_table_ttl(services["DYNAMODB_ENDPOINT"], clicklog_table) is False


def test_the_sweep_walks_the_table_a_budget_at_a_time_and_deletes_only_the_expired(services, clicklog_table,
                                                                                   settings):
    now = datetime(2025, 6, 1, tzinfo=UTC)
    settings.CLICKLOG_RETENTION_DAYS = 10
    old, recent = [], []
    for n in range(60):  # 30 visitors' items 11+ days old, 30 from yesterday, interleaved by key
        at = now - timedelta(days=11 + n % 3) if n % 2 else now - timedelta(days=1)
        event = Event(event_id=str(uuid.uuid4()), visitor=f"v:sweep{n:02d}", movie_id=n + 1, kind="click",
                      ts=_ts(at))
        clicklog.event_put(event)
        (old if n % 2 else recent).append(event)
    client = boto3.client("dynamodb", endpoint_url=services["DYNAMODB_ENDPOINT"], **aws_kwargs())
    expiry._positions.pop(clicklog_table, None)

    runs = []
    while not runs or expiry._positions.get(clicklog_table) is not None:
        runs.append(expiry.expired_delete(client, table=clicklog_table, budget=16, now=now.timestamp()))
        assert runs[-1][0] <= 16  # never more than its budget read in one run
        assert len(runs) < 10
    assert sum(read for read, _ in runs) == 60 and sum(deleted for _, deleted in runs) == 30
    assert len(runs) == 4  # 16 + 16 + 16 + 12: one pass over the table, each run where the last stopped

    left = {item["sk"]["S"] for item in client.scan(TableName=clicklog_table)["Items"]}
    assert left == {e.sort_key for e in recent}
    # A new pass starts at the table's beginning and finds nothing more to delete.
    assert expiry.expired_delete(client, table=clicklog_table, budget=100, now=now.timestamp()) == (30, 0)


def test_an_item_written_again_with_a_later_expiry_is_not_deleted(services, clicklog_table, settings):
    """The delete is conditional on `expires` at delete time, not at scan time."""
    settings.CLICKLOG_RETENTION_DAYS = 1
    event = Event(event_id=str(uuid.uuid4()), visitor="v:kept", movie_id=1, kind="click",
                  ts="2024-01-01T00:00:00.000000Z")
    clicklog.event_put(event)
    client = boto3.client("dynamodb", endpoint_url=services["DYNAMODB_ENDPOINT"], **aws_kwargs())
    key = {"visitor": {"S": event.visitor}, "sk": {"S": event.sort_key}}
    now = datetime(2024, 1, 3, tzinfo=UTC).timestamp()
    settings.CLICKLOG_RETENTION_DAYS = 365
    clicklog.event_put(event)  # now kept a year
    assert expiry._delete(client, clicklog_table, key, now) == 0
    assert "Item" in client.get_item(TableName=clicklog_table, Key=key)


@pytest.mark.parametrize("days", [1, 400])
def test_expires_at_counts_days_from_the_items_own_time(days):
    assert expiry.expires_at("2024-02-28T23:59:59.999999Z", days=days) == int(
        (datetime(2024, 2, 28, 23, 59, 59, tzinfo=UTC) + timedelta(days=days)).timestamp())
