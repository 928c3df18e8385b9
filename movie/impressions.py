"""Recording the lists visitors were shown (impressions), and attributing clicks to them.

A page signs what it shows (`experiments.impression_token`); the page's script posts the token
back, and `impression_record` writes it the way `movie.events` writes a click, in the same
order: the DynamoDB impressions item, pending; the `Impression` mirror row; Kafka (acks=all);
the item again, confirmed. A failure undoes what was written and answers 503; a retry (the
impression id inside the token is the idempotency key) finishes what an earlier try left and
stores no second row. A reader of the impressions table skips pending items, as the click
log's readers do.

Impressions never become training data, by construction: their items live in their own table
(DYNAMODB_IMPRESSIONS_TABLE), their messages on their own topic (KAFKA_IMPRESSIONS_TOPIC), their
rows in their own model. The live workers read the click log and consume the clicks topic;
the retrain reads `Interaction`. None of the three ever holds an impression.
"""

from __future__ import annotations

import logging
import uuid

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import IntegrityError, transaction

from eventstore import clicklog, expiry, stream
from movie.experiments import ShownList, TokenRejected, impression_token_read
from movie.models import Impression

log = logging.getLogger(__name__)


class ImpressionRejected(ValueError):
    """The request is wrong (bad token, wrong key): answer 400, nothing stored."""


class ImpressionNotRecorded(RuntimeError):
    """A backing service failed; nothing was kept. Answer 503."""


def _table():
    return clicklog.dynamodb_table(settings.DYNAMODB_IMPRESSIONS_TABLE)


def _key(shown: ShownList) -> dict:
    """The item's keys: the visitor, and the render time plus the id, both from the signed
    token, so every retry writes the same item."""
    return {"visitor": shown.visitor, "sk": f"{shown.at}#{shown.impression_id}"}


def _item(shown: ShownList, *, pending: bool) -> dict:
    item = {**_key(shown), "impression_id": shown.impression_id, "model": shown.model, "page": shown.page,
            "movie_ids": shown.movie_ids, "ts": shown.at,
            # Kept IMPRESSIONS_RETENTION_DAYS after the render, then deleted (eventstore.expiry).
            "expires": expiry.expires_at(shown.at, days=settings.IMPRESSIONS_RETENTION_DAYS)}
    if shown.model_version is not None:
        item["model_version"] = shown.model_version
    if pending:
        item["pending"] = True
    return item


def _message(shown: ShownList) -> dict:
    return {"kind": "impression", "impression_id": shown.impression_id, "visitor": shown.visitor,
            "model": shown.model, "model_version": shown.model_version, "page": shown.page,
            "movie_ids": shown.movie_ids, "ts": shown.at}


def _publish_and_confirm(shown: ShownList) -> None:
    stream.publish(visitor=shown.visitor, payload=_message(shown), topic=settings.KAFKA_IMPRESSIONS_TOPIC)
    _table().put_item(Item=_item(shown, pending=False))


def _mirror(shown: ShownList) -> None:
    with transaction.atomic():
        Impression.objects.create(id=shown.impression_id, visitor=shown.visitor, model=shown.model,
                                  model_version=shown.model_version, page=shown.page,
                                  movie_ids=shown.movie_ids, size=len(shown.movie_ids),
                                  created_at=shown.rendered_at)


def _first_try(shown: ShownList) -> None:
    """Pending item, mirror row, Kafka, confirmed item; on failure undo and raise."""
    subject = f"impression {shown.impression_id}"
    try:
        _table().put_item(Item=_item(shown, pending=True))
    except (BotoCoreError, ClientError) as exc:
        log.exception("impression %s not recorded: the impressions log is unreachable", shown.impression_id)
        raise ImpressionNotRecorded("the impression could not be recorded, please try again") from exc
    try:
        _mirror(shown)
    except Exception as exc:
        clicklog.undo_logged("delete its pending item", lambda: _table().delete_item(Key=_key(shown)), subject)
        if isinstance(exc, IntegrityError):
            raise  # the same impression, stored first by a concurrent request
        log.exception("impression %s not recorded: the mirror refused it", shown.impression_id)
        raise ImpressionNotRecorded("the impression could not be recorded, please try again") from exc
    try:
        _publish_and_confirm(shown)
    except Exception as exc:
        log.exception("impression %s not recorded; compensating", shown.impression_id)
        if clicklog.undo_logged("delete its item", lambda: _table().delete_item(Key=_key(shown)), subject):
            clicklog.undo_logged("delete its mirror row",
                                 lambda: Impression.objects.filter(pk=shown.impression_id).delete(), subject)
        raise ImpressionNotRecorded("the impression could not be recorded, please try again") from exc


def _retry(shown: ShownList) -> None:
    """The mirror holds this impression: confirm it if an earlier try stopped before that
    (a confirmed item was published, since confirming is the last write)."""
    try:
        stored = _table().get_item(Key=_key(shown), ConsistentRead=True).get("Item")
        if stored is None or stored.get("pending"):
            _publish_and_confirm(shown)
    except Exception as exc:  # the mirror row stays: the list was shown
        log.exception("retried impression %s not confirmed", shown.impression_id)
        raise ImpressionNotRecorded("the impression could not be recorded, please try again") from exc


def impression_record(*, visitor: str, token, idempotency_key: str | None = None) -> ShownList:
    """Verify a page's impression token for `visitor` and record the list it describes, once
    however many times it is posted. The idempotency key, when sent, must be the impression id."""
    try:
        shown = impression_token_read(token, visitor=visitor)
    except TokenRejected as exc:
        raise ImpressionRejected(str(exc)) from None
    if idempotency_key not in (None, "") and idempotency_key != shown.impression_id:
        raise ImpressionRejected("the idempotency key must be the impression id")
    if not Impression.objects.filter(pk=shown.impression_id).exists():
        try:
            _first_try(shown)
            return shown
        except IntegrityError:
            pass  # a concurrent request stored it first: finish like a retry
    _retry(shown)
    return shown


def impressions_for(visitor: str, *, pending: bool = False) -> list[dict]:
    """A visitor's logged impressions, oldest first (`pending`: the unconfirmed ones too)."""
    query = {"KeyConditionExpression": "visitor = :v", "ExpressionAttributeValues": {":v": visitor},
             "ConsistentRead": True}
    items: list[dict] = []
    while True:
        page = _table().query(**query)
        items.extend(item for item in page["Items"] if pending or not item.get("pending"))
        if "LastEvaluatedKey" not in page:
            return items
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def click_attribution(*, visitor: str, movie_id: int, impression: str | None,
                      position: int | None) -> tuple[str | None, int | None]:
    """(impression id, position) a click is credited to, or (None, None). A click is credited
    only to a list this visitor was shown that holds the movie (at `position`, if the browser
    says where); otherwise it is still a click, just not one any list earned: the history
    must not lose it because the list's impression was lost, late, or another visitor's."""
    if impression is None:
        return None, None
    shown = Impression.objects.filter(pk=impression, visitor=visitor).values_list("movie_ids", flat=True).first()
    if shown is None or movie_id not in shown:
        return None, None
    found = shown.index(movie_id) + 1
    if position is not None and position != found:
        return None, None
    return str(uuid.UUID(impression)), found
