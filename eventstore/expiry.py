"""Retention of the click log and the impressions: each item carries `expires` (epoch seconds),
and what deletes it once that has passed.

On AWS the tables' TTL on `expires` deletes them (devstack.services.ensure_table_ttl turns it
on; AWS deletes an expired item within about two days, and until then reads still return
it). dynalite (`make demo`, the tests) has no UpdateTimeToLive and DynamoDB Local (the compose
file) deletes nothing, so there `expired_delete` does it: beat runs it every
EXPIRY_SWEEP_S (settings; on by default where DYNAMODB_ENDPOINT names a local stand-in), each
run reading at most `budget` items of a table and deleting the expired ones among them.
Items written before `expires` existed carry none and are kept.
"""

from __future__ import annotations

import functools
import logging
import time
from datetime import UTC, datetime

import boto3
from botocore.config import Config
from django.conf import settings

log = logging.getLogger(__name__)

ATTRIBUTE = "expires"
DAY_S = 24 * 3600
SCAN_PAGE = 1000  # items a Scan page reads; DynamoDB also stops a page at 1 MB


def expires_at(ts: str, *, days: float) -> int:
    """Epoch seconds `days` after `ts` (the item's own ISO-8601 UTC time, so every write of the
    same item, a retry or a confirm, carries the same value)."""
    at = datetime.fromisoformat(ts)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() + days * DAY_S)


# table name -> where the last run stopped (a Scan's LastEvaluatedKey), so that run after run
# the sweep walks the whole table instead of re-reading its first `budget` items. Per process:
# a worker that restarts begins again at the start of the table.
_positions: dict[str, dict] = {}


def expired_delete(client, *, table: str, budget: int, now: float | None = None) -> tuple[int, int]:
    """Read up to `budget` items of `table` from where the last call stopped (the start of the
    table after its end) and delete those whose `expires` has passed. Returns (read, deleted).

    `client` is a low-level boto3 DynamoDB client. A delete is conditional on `expires` still
    being past, so an item written again in between (a confirm) is never removed by a stale
    read."""
    now = time.time() if now is None else now
    read = deleted = 0
    while read < budget:
        scan = {"TableName": table, "Limit": min(SCAN_PAGE, budget - read), "ConsistentRead": False,
                "FilterExpression": "#e < :now", "ExpressionAttributeNames": {"#e": ATTRIBUTE},
                "ExpressionAttributeValues": {":now": {"N": str(int(now))}}}
        if table in _positions:
            scan["ExclusiveStartKey"] = _positions[table]
        page = client.scan(**scan)
        read += page.get("ScannedCount", 0)
        for item in page.get("Items", []):
            deleted += _delete(client, table, {"visitor": item["visitor"], "sk": item["sk"]}, now)
        if "LastEvaluatedKey" in page:
            _positions[table] = page["LastEvaluatedKey"]
        else:
            _positions.pop(table, None)  # the end of the table: the next run starts again
            break
    if deleted:
        log.info("deleted %d expired items of %s (%d read)", deleted, table, read)
    return read, deleted


def _delete(client, table: str, key: dict, now: float) -> int:
    try:
        client.delete_item(TableName=table, Key=key, ConditionExpression="#e < :now",
                           ExpressionAttributeNames={"#e": ATTRIBUTE},
                           ExpressionAttributeValues={":now": {"N": str(int(now))}})
    except client.exceptions.ConditionalCheckFailedException:
        return 0
    return 1


@functools.cache
def _client(endpoint: str | None, region: str):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=region,
                        config=Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard"}))


def tables_sweep() -> dict[str, tuple[int, int]]:
    """One run of the sweep over the click log and the impressions: table -> (read, deleted)."""
    client = _client(settings.DYNAMODB_ENDPOINT, settings.AWS_REGION)
    return {table: expired_delete(client, table=table, budget=settings.EXPIRY_SWEEP_ITEMS)
            for table in (settings.DYNAMODB_TABLE, settings.DYNAMODB_IMPRESSIONS_TABLE)}
