"""Impressions through the real DynamoDB (dynalite), Kafka (tansu) and database: a rendered
list records nothing, its posted token records one impression, a click carrying its id is
credited to it, and no impression ever reaches the models' training data."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.core import signing
from django.test import Client
from django.utils import timezone
from kafka import KafkaConsumer, TopicPartition

from eventstore import clicklog, stream
from movie.catalogue.models import Movie
from movie.experiments.models import Experiment
from movie.experiments.selectors import arm_ctr, visitor_arm
from movie.tracking import impression_tokens
from movie.tracking.impression_tokens import impression_token
from movie.tracking.impressions import ImpressionNotRecorded, impression_record, impressions_for
from movie.tracking.models import Impression, Interaction
from movie.tracking.selectors import visitor_interactions
from tests.movie.held import Held

pytestmark = pytest.mark.django_db

SHOWN = [3, 1, 4, 5]


@pytest.fixture
def movies(db):
    return [Movie.objects.create(id=i, title=f"Movie {i}", year=2000 + i) for i in range(1, 7)]


def _visitor_client(clicklog_table, impressions_table) -> Client:
    client = Client()
    client.get("/history/")  # a visitor id and a CSRF cookie, as a browser would have
    return client


@pytest.fixture
def visitor_client(clicklog_table, impressions_table):
    return _visitor_client(clicklog_table, impressions_table)


@pytest.fixture
def other_client(clicklog_table, impressions_table):
    return _visitor_client(clicklog_table, impressions_table)


def _visitor(client: Client) -> str:
    return client.session["visitor"]


def _token(client: Client, *, model="lightgcn", page="home", movie_ids=SHOWN) -> tuple[str, str]:
    """What a page rendering a list for this client's visitor puts on the list's <ul>."""
    return impression_token(visitor=_visitor(client), model=model, model_version="20240101T000000Z",
                            page=page, movie_ids=movie_ids)


def _post_impression(client: Client, body, key: str | None = None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post("/api/impressions", data=data, content_type="application/json", **headers)


def _click(client: Client, movie_id: int, **fields):
    return client.post("/api/events", data=json.dumps({"movie_id": movie_id, "kind": "click", **fields}),
                       content_type="application/json")


def _messages(topic: str, visitor: str) -> list[dict]:
    """Every message on `topic` keyed by `visitor`, read up to the end of each partition (a
    202 means the broker had acknowledged it, so the end offsets include it)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.KAFKA_BOOTSTRAP, group_id=None,
                             auto_offset_reset="earliest")
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        # offsets to read up to
        left = {p: end for p, end in consumer.end_offsets(partitions).items() if end > 0}
        found: list[dict] = []
        deadline = time.monotonic() + 10
        while left and time.monotonic() < deadline:
            for partition, records in consumer.poll(timeout_ms=200).items():
                found.extend(json.loads(r.value) for r in records if r.key and r.key.decode() == visitor)
                if records and records[-1].offset + 1 >= left.get(partition, 0):
                    left.pop(partition, None)
        assert not left, f"{topic}: not read to its end within 10 s"
        return found
    finally:
        consumer.close()


def _nothing_stored(visitor: str) -> bool:
    return (not Impression.objects.exists() and impressions_for(visitor, pending=True) == []
            and _messages(settings.KAFKA_IMPRESSIONS_TOPIC, visitor) == [])


def test_rendering_a_list_records_nothing(movies, visitor_client):
    for path in ("/", "/recommendations/lightgcn/", "/movies/3/"):
        assert visitor_client.get(path).status_code == 200
    impression_id, token = _token(visitor_client)

    assert uuid.UUID(impression_id) and token
    assert _nothing_stored(_visitor(visitor_client))


def test_a_posted_token_records_one_impression_however_often_it_is_sent(movies, visitor_client):
    impression_id, token = _token(visitor_client)
    visitor = _visitor(visitor_client)

    first = _post_impression(visitor_client, {"token": token}, key=impression_id)
    again = _post_impression(visitor_client, {"token": token}, key=impression_id)
    without_key = _post_impression(visitor_client, {"token": token})

    assert [r.status_code for r in (first, again, without_key)] == [202, 202, 202]
    assert first.json() == {"impression": impression_id}
    row = Impression.objects.get()
    assert (str(row.id), row.visitor, row.model, row.model_version, row.page, row.movie_ids, row.size) == (
        impression_id, visitor, "lightgcn", "20240101T000000Z", "home", SHOWN, len(SHOWN))
    [item] = impressions_for(visitor, pending=True)
    assert item["impression_id"] == impression_id and not item.get("pending")
    assert [int(m) for m in item["movie_ids"]] == SHOWN
    [message] = _messages(settings.KAFKA_IMPRESSIONS_TOPIC, visitor)
    assert ((message["kind"], message["impression_id"], message["movie_ids"])
            == ("impression", impression_id, SHOWN))


def _tampered(token: str) -> str:
    """The token with one character of its payload changed (the signature no longer fits)."""
    payload, rest = token.split(":", 1)
    return payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + ":" + rest


@pytest.mark.parametrize(
    ("make_body", "message"),
    [
        (lambda token, client, other: {"token": _tampered(token)}, "not valid"),
        (lambda token, client, other: {"token": _token(other)[1]}, "another visitor"),
        (lambda token, client, other: {"token": signing.dumps({"visitor": _visitor(client)}, salt="other")},
         "not valid"),
        (lambda token, client, other: {"token": "x" * 5000}, "impression token"),
        (lambda token, client, other: {"token": 12}, "impression token"),
        (lambda token, client, other: {}, "impression token"),
        (lambda token, client, other: "[1]", "JSON object"),
        (lambda token, client, other: "{not json", "JSON"),
    ],
)
def test_a_bad_token_is_400_and_stores_nothing(movies, visitor_client, other_client, make_body, message):
    _, token = _token(visitor_client)

    response = _post_impression(visitor_client, make_body(token, visitor_client, other_client))

    assert response.status_code == 400 and message in response.json()["error"]
    assert _nothing_stored(_visitor(visitor_client)) and _nothing_stored(_visitor(other_client))


def test_an_expired_token_or_a_wrong_key_is_400(movies, visitor_client):
    rendered = time.time() - impression_tokens.TOKEN_MAX_AGE_S - 60
    with mock.patch("django.core.signing.time.time", return_value=rendered):
        _, old = _token(visitor_client)
    impression_id, token = _token(visitor_client)

    expired = _post_impression(visitor_client, {"token": old})
    wrong_key = _post_impression(visitor_client, {"token": token}, key=str(uuid.uuid4()))

    assert expired.status_code == 400 and "expired" in expired.json()["error"]
    assert wrong_key.status_code == 400 and "impression id" in wrong_key.json()["error"]
    assert _nothing_stored(_visitor(visitor_client))


def test_broker_down_is_503_and_leaves_nothing(movies, visitor_client, settings, unused_tcp_port):
    impression_id, token = _token(visitor_client)
    # nothing listens there
    live, settings.KAFKA_BOOTSTRAP = settings.KAFKA_BOOTSTRAP, f"127.0.0.1:{unused_tcp_port}"
    try:
        response = _post_impression(visitor_client, {"token": token}, key=impression_id)
    finally:
        settings.KAFKA_BOOTSTRAP = live
        stream._producer.cache_clear()

    assert response.status_code == 503 and "try again" in response.json()["error"]
    assert not Impression.objects.exists() and impressions_for(_visitor(visitor_client), pending=True) == []
    # the retry
    assert _post_impression(visitor_client, {"token": token}, key=impression_id).status_code == 202
    assert Impression.objects.count() == 1


def test_a_click_carrying_the_impression_is_credited_to_it(movies, visitor_client):
    impression_id, token = _token(visitor_client)
    assert _post_impression(visitor_client, {"token": token}).status_code == 202
    visitor = _visitor(visitor_client)

    response = _click(visitor_client, 4, impression=impression_id, position=3)

    assert response.status_code == 202
    row = Interaction.objects.get(event_id=response.json()["event_id"])
    assert (str(row.impression_id), row.position) == (impression_id, 3)
    [logged] = clicklog.events_for(visitor)
    assert (logged.impression, logged.position) == (impression_id, 3)
    [message] = _messages(settings.KAFKA_TOPIC, visitor)
    assert (message["impression"], message["position"]) == (impression_id, 3)


@pytest.mark.parametrize(
    ("movie_id", "fields"),
    [
        (4, {"impression": str(uuid.uuid4()), "position": 3}),  # a list never recorded
        (2, {"impression": "shown", "position": 1}),  # a movie the list did not show
        (4, {"impression": "shown", "position": 1}),  # shown, but elsewhere in the list
        (4, {"impression": "other's", "position": 3}),  # another visitor's list
    ],
)
def test_a_click_no_list_earned_is_still_a_click_without_credit(movies, visitor_client, other_client,
                                                                movie_id, fields):
    shown_id, token = _token(visitor_client)
    others_id, others = _token(other_client)
    assert _post_impression(visitor_client, {"token": token}).status_code == 202
    assert _post_impression(other_client, {"token": others}).status_code == 202
    fields = {**fields, "impression": {"shown": shown_id, "other's": others_id}.get(fields["impression"],
                                                                                    fields["impression"])}

    response = _click(visitor_client, movie_id, **fields)

    assert response.status_code == 202
    row = Interaction.objects.get(event_id=response.json()["event_id"])
    assert ((row.visitor, row.movie_id, row.impression_id, row.position)
            == (_visitor(visitor_client), movie_id, None, None))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"movie_id": 4, "kind": "click", "impression": "not-a-uuid", "position": 1}, "'impression'"),
        ({"movie_id": 4, "kind": "click", "impression": 7, "position": 1}, "'impression'"),
        ({"movie_id": 4, "kind": "click", "impression": str(uuid.uuid4()), "position": "1"}, "'position'"),
        ({"movie_id": 4, "kind": "click", "impression": str(uuid.uuid4()), "position": 0}, "'position'"),
        ({"movie_id": 4, "kind": "click", "impression": str(uuid.uuid4()), "position": 101}, "'position'"),
        ({"movie_id": 4, "kind": "click", "impression": str(uuid.uuid4()), "position": True}, "'position'"),
        ({"movie_id": 4, "kind": "click", "position": 1}, "needs the 'impression'"),
        ({"movie_id": 4, "kind": "rate", "value": 4, "impression": str(uuid.uuid4())},
         "only allowed with kind"),
    ],
)
def test_malformed_list_fields_are_400_and_store_nothing(movies, visitor_client, body, message):
    response = visitor_client.post("/api/events", data=json.dumps(body), content_type="application/json")

    assert response.status_code == 400 and message in response.json()["error"]
    assert (not Interaction.objects.exists()
            and clicklog.events_for(_visitor(visitor_client), pending=True) == [])


def test_arm_ctr_follows_impressions_and_credited_clicks(movies, visitor_client):
    experiment = Experiment.objects.create(name="home-row", arms=[{"model": "lightgcn", "weight": 1}],
                                           started_at=timezone.now() - timedelta(hours=1))
    visitor = _visitor(visitor_client)
    arm = visitor_arm(visitor)
    impression_id, token = _token(visitor_client, model=arm)
    _, elsewhere = _token(visitor_client, model=arm, page="recommendations")  # not the experiment's page

    assert [(r.model, r.impressions, r.clicks) for r in arm_ctr(experiment)] == [("lightgcn", 0, 0)]
    for body in ({"token": token}, {"token": elsewhere}):
        assert _post_impression(visitor_client, body).status_code == 202
    assert [(r.model, r.impressions, r.clicks) for r in arm_ctr(experiment)] == [("lightgcn", 1, 0)]
    assert _click(visitor_client, 1, impression=impression_id, position=2).status_code == 202
    assert ([(r.model, r.impressions, r.clicks, r.ctr) for r in arm_ctr(experiment)]
            == [("lightgcn", 1, 1, 1.0)])


def test_impressions_never_reach_training_data(movies, visitor_client):
    """What the live workers read (the click log, through the task's reader; the clicks topic,
    through the consumer) and what the retrain reads (the history mirror) hold the click a
    list earned, and nothing of the list itself."""
    from workers.tasks import _read_log  # the live workers' reader of a visitor's log

    impression_id, token = _token(visitor_client)
    visitor = _visitor(visitor_client)
    assert _post_impression(visitor_client, {"token": token}).status_code == 202
    click = _click(visitor_client, 1, impression=impression_id, position=2).json()["event_id"]

    assert [(e.event_id, e.kind, e.movie_id) for e in _read_log(visitor, None)] == [(click, "click", 1)]
    assert [pair for pair in visitor_interactions() if pair[0] == visitor] == [(visitor, 1)]
    assert [m["event_id"] for m in _messages(settings.KAFKA_TOPIC, visitor)] == [click]
    assert settings.KAFKA_IMPRESSIONS_TOPIC != settings.KAFKA_TOPIC
    assert settings.DYNAMODB_IMPRESSIONS_TABLE != settings.DYNAMODB_TABLE


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_first_try_that_fails_after_its_retry_answered_undoes_nothing(movies, visitor_client, settings,
                                                                       unused_tcp_port):
    """The first try writes its row, then stalls past the browser's wait; the retry confirms
    and answers 202; then the first try's Kafka send fails. Old code: its rollback deleted the
    confirmed item and the row the 202 stood for."""
    visitor = _visitor(visitor_client)
    impression_id, token = _token(visitor_client)
    first = Held(settings, f"impression-mirror:{impression_id}", impression_record, visitor=visitor,
                 token=token)

    # the retry
    assert _post_impression(visitor_client, {"token": token}, key=impression_id).status_code == 202
    live, settings.KAFKA_BOOTSTRAP = settings.KAFKA_BOOTSTRAP, f"127.0.0.1:{unused_tcp_port}"
    stream._producer.cache_clear()
    try:
        outcome = first.release()
    finally:
        settings.KAFKA_BOOTSTRAP = live
        stream._producer.cache_clear()

    assert isinstance(outcome, ImpressionNotRecorded)
    assert Impression.objects.filter(pk=impression_id).exists()
    assert [(i["impression_id"], i.get("pending")) for i in impressions_for(visitor, pending=True)] == [
        (impression_id, None)]


def test_a_retry_finishes_a_rollback_that_could_not_delete_its_row(movies, visitor_client):
    """A failed try deleted its item but not its row (the database went away): no try can
    confirm that row any more. The retry deletes it and answers 503; the next try records the
    impression once."""
    visitor = _visitor(visitor_client)
    impression_id, token = _token(visitor_client)
    shown = impression_tokens.impression_token_read(token, visitor=visitor)
    Impression.objects.create(id=impression_id, visitor=visitor, model=shown.model, page=shown.page,
                              movie_ids=shown.movie_ids, size=len(shown.movie_ids),
                              created_at=shown.rendered_at, owner=uuid.uuid4().hex)

    assert _post_impression(visitor_client, {"token": token}, key=impression_id).status_code == 503
    assert not Impression.objects.exists() and impressions_for(visitor, pending=True) == []
    assert _post_impression(visitor_client, {"token": token}, key=impression_id).status_code == 202
    assert Impression.objects.count() == 1 and len(impressions_for(visitor)) == 1
