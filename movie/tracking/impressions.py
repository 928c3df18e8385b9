"""Recording the lists visitors were shown (impressions), and attributing clicks to them.

A page signs what it shows (`impression_tokens.impression_token`); the page's script posts the token
back, and `impression_record` writes it the way `movie.tracking.events` writes a click, in the same
order: the DynamoDB impressions item, pending; the `Impression` mirror row; Kafka (acks=all);
the item confirmed. A failure gives the item up and answers 503; a retry (the impression id
inside the token is the idempotency key) finishes what an earlier try left and stores no
second row. A reader of the impressions table skips pending items, as the click log's readers do.

A 202 is final, with the click log's conditional writes (`clicklog.item_*`). Every try of an
impression writes the same item (its keys come from the token), so each try names itself
(`owner`, a random token) on the item it writes and on the mirror row it inserts:
- a try's pending write takes a pending item over, but never overwrites a confirmed one;
- a confirm succeeds only while the item exists and names the row's try (`item_confirm`);
- a rollback deletes the item only while it is pending and its own (`item_abandon`), and
  deletes its own row unless the item is confirmed;
- a retry that finds the item gone, or another try's, while a row names its writer, knows no
  confirm can succeed for that row any more (a try's token never comes back): it deletes the
  row and answers 503, and the next try records the impression afresh.
A 202 needs a confirmed item; nothing deletes a confirmed item or makes it pending again, and
a row is deleted only by its writer seeing the item unconfirmed or by a retry seeing it gone
or another's, both of which then stay so. So no 202 is undone: a first try that stalls past
the browser's wait while its retry confirms and answers 202 can fail at Kafka or at its
confirm afterwards and undoes nothing (its delete is refused: the item is confirmed).

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
from eventstore.clicklog import CONFIRMED, PENDING
from movie.tracking.faults import stall_point
from movie.tracking.impression_tokens import ShownList, TokenRejected, impression_token_read
from movie.tracking.models import Impression

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


NOT_RECORDED = "the impression could not be recorded, please try again"


def _publish_and_confirm(shown: ShownList, owner: str) -> bool:
    """Notify, then confirm the item for the try `owner`: False when it is gone or another try's."""
    stream.publish(visitor=shown.visitor, payload=_message(shown), topic=settings.KAFKA_IMPRESSIONS_TOPIC)
    return clicklog.item_confirm(_table(), _key(shown), owner=owner or None)


def _mirror(shown: ShownList, owner: str) -> None:
    with transaction.atomic():
        Impression.objects.create(id=shown.impression_id, visitor=shown.visitor, model=shown.model,
                                  model_version=shown.model_version, page=shown.page,
                                  movie_ids=shown.movie_ids, size=len(shown.movie_ids),
                                  created_at=shown.rendered_at, owner=owner)


def _row_undo(shown: ShownList, owner: str) -> None:
    clicklog.undo_logged("delete its mirror row",
                         lambda: Impression.objects.filter(pk=shown.impression_id, owner=owner).delete(),
                         f"impression {shown.impression_id}")


def _give_up(shown: ShownList, owner: str, *, row: bool) -> None:
    """Delete this try's item while it is pending; then (`row`: this try wrote one) its row,
    unless the item is confirmed: a confirmed item has its row, and answered 202."""
    try:
        outcome = clicklog.item_abandon(_table(), _key(shown), owner=owner)
    except Exception:
        log.exception("impression %s: could not give up its item", shown.impression_id)
        return
    if row and outcome != CONFIRMED:
        _row_undo(shown, owner)


def _first_try(shown: ShownList) -> bool:
    """Pending item, mirror row, Kafka, confirmed item; on failure give up and raise. False: the
    item is confirmed already (a concurrent try): finish like a retry."""
    owner = uuid.uuid4().hex
    try:
        if not clicklog.item_start(_table(), _item(shown, pending=True), owner=owner):
            return False
    except (BotoCoreError, ClientError) as exc:
        log.exception("impression %s not recorded: the impressions log is unreachable", shown.impression_id)
        raise ImpressionNotRecorded(NOT_RECORDED) from exc
    try:
        _mirror(shown, owner)
    except Exception as exc:
        _give_up(shown, owner, row=False)  # a concurrent try's row is not this try's to undo
        if isinstance(exc, IntegrityError):
            raise  # stored first by a concurrent try: finish like a retry
        log.exception("impression %s not recorded: the mirror refused it", shown.impression_id)
        raise ImpressionNotRecorded(NOT_RECORDED) from exc
    stall_point(f"impression-mirror:{shown.impression_id}")
    try:
        confirmed = _publish_and_confirm(shown, owner)
    except Exception as exc:
        log.exception("impression %s not recorded; compensating", shown.impression_id)
        _give_up(shown, owner, row=True)
        raise ImpressionNotRecorded(NOT_RECORDED) from exc
    if not confirmed:  # another try took the item: this row can never be confirmed
        _give_up(shown, owner, row=True)
        raise ImpressionNotRecorded(NOT_RECORDED)
    return True


def _retry(shown: ShownList) -> None:
    """The mirror holds this impression: confirm it if the try that wrote the row stopped
    before that (a confirmed item was published, since confirming is the last write)."""
    owner = Impression.objects.filter(pk=shown.impression_id).values_list("owner", flat=True).first()
    if owner is None:
        raise ImpressionNotRecorded(NOT_RECORDED)  # undone meanwhile: the next try records it afresh
    try:
        state = clicklog.item_state(_table(), _key(shown), owner=owner or None)
        if state == CONFIRMED:
            return
        if state == PENDING and _publish_and_confirm(shown, owner):
            return
    except Exception as exc:  # the row and its pending item stay: a later try finishes them
        log.exception("retried impression %s not confirmed", shown.impression_id)
        raise ImpressionNotRecorded(NOT_RECORDED) from exc
    if state != PENDING:  # gone, or another try's: the row's try can never confirm it; finish its undo
        _row_undo(shown, owner)
    raise ImpressionNotRecorded(NOT_RECORDED)


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
            if _first_try(shown):
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
    shown = (Impression.objects.filter(pk=impression, visitor=visitor).values_list("movie_ids", flat=True)
             .first())
    if shown is None or movie_id not in shown:
        return None, None
    found = shown.index(movie_id) + 1
    if position is not None and position != found:
        return None, None
    return str(uuid.UUID(impression)), found
