"""POST /api/events through the real DynamoDB (dynalite), Kafka (tansu) and database."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from kafka import KafkaConsumer, TopicPartition

from eventstore import clicklog, stream
from eventstore.clicklog import Event
from movie.catalogue.models import Movie
from movie.tracking import events, removal_marks
from movie.tracking.models import Interaction, RemovalMark
from movie.tracking.moves import history_move
from movie.tracking.removal_marks import marks_write
from movie.tracking.removals import history_remove
from predictors.live import history_after
from tests.movie.held import Held

pytestmark = pytest.mark.django_db


@pytest.fixture
def movies(db):
    return [Movie.objects.create(id=i, title=f"Movie {i}", year=2000 + i) for i in (1, 2, 3)]


@pytest.fixture
def visitor_client(clicklog_table):
    client = Client()
    client.get("/history/")  # a visitor id and a CSRF cookie, as a browser would have
    return client


def _visitor(client: Client) -> str:
    return client.session["visitor"]


def _post(client: Client, body, **extra):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/api/events", data=data, content_type="application/json", **extra)


def _messages_for(visitor: str, expected: int) -> list[dict]:
    """Messages on the topic keyed by `visitor` (waits up to 10 s for `expected` of them)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.KAFKA_BOOTSTRAP, group_id=None,
                             auto_offset_reset="earliest")
    try:
        topic = settings.KAFKA_TOPIC
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        found: list[dict] = []
        deadline = time.monotonic() + 10
        while len(found) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                found.extend(json.loads(r.value) for r in batch if r.key.decode() == visitor)
        return found
    finally:
        consumer.close()


def test_click_is_logged_mirrored_and_streamed(movies, visitor_client):
    response = _post(visitor_client, {"movie_id": 2, "kind": "click"})

    assert response.status_code == 202
    event_id = response.json()["event_id"]
    visitor = _visitor(visitor_client)
    [logged] = clicklog.events_for(visitor)
    assert (logged.event_id, logged.movie_id, logged.kind, logged.value) == (event_id, 2, "click", None)
    assert Interaction.objects.get(event_id=event_id).visitor == visitor
    assert [m["event_id"] for m in _messages_for(visitor, expected=1)] == [event_id]


def test_rating_keeps_its_value_and_events_come_back_in_order(movies, visitor_client):
    ids = [
        _post(visitor_client, {"movie_id": 1, "kind": "click"}).json()["event_id"],
        _post(visitor_client, {"movie_id": 3, "kind": "rate", "value": 4.5}).json()["event_id"],
    ]

    events = clicklog.events_for(_visitor(visitor_client))
    assert [e.event_id for e in events] == ids
    assert events[1].value == 4.5


def test_not_interested_is_an_event_like_a_click(movies, visitor_client):
    response = _post(visitor_client, {"movie_id": 2, "kind": "dismiss"})

    assert response.status_code == 202
    visitor = _visitor(visitor_client)
    [logged] = clicklog.events_for(visitor)
    assert (logged.event_id, logged.kind) == (response.json()["event_id"], "dismiss")
    assert Interaction.objects.get(event_id=logged.event_id).kind == "dismiss"
    assert [m["kind"] for m in _messages_for(visitor, expected=1)] == ["dismiss"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"movie_id": 1, "kind": "dismiss", "value": 3}, "only allowed"),
        ({"movie_id": 1, "kind": "dismiss", "impression": "0b5e6a35-5a54-4e8e-9d33-6a7b1d8c1e55"},
         "only allowed with kind 'click'"),
        ("{not json", "JSON"),
        ("[1, 2]", "JSON object"),
        ({"movie_id": 999, "kind": "click"}, "no movie with id 999"),
        ({"movie_id": "1", "kind": "click"}, "integer"),
        ({"movie_id": 1, "kind": "like"}, "'kind'"),
        ({"movie_id": 1, "kind": "rate", "value": 5.5}, "between 0.5 and 5"),
        ({"movie_id": 1, "kind": "rate", "value": 0}, "between 0.5 and 5"),
        ({"movie_id": 1, "kind": "rate", "value": 3.3}, "steps of 0.5"),
        ({"movie_id": 1, "kind": "rate"}, "numeric 'value'"),
        ({"movie_id": 1, "kind": "click", "value": 3}, "only allowed"),
        ({"movie_id": 1, "kind": "rate", "value": 10**400}, "between 0.5 and 5"),
        ({"movie_id": 10**400, "kind": "click"}, "'movie_id' must be from 1"),
        ('{"movie_id": 1' + "0" * 5000 + ', "kind": "click"}', "JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_bad_input_is_400_and_writes_nothing(movies, visitor_client, body, message):
    response = _post(visitor_client, body)

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert clicklog.events_for(_visitor(visitor_client)) == []
    assert not Interaction.objects.exists()


def test_get_is_405_and_missing_csrf_is_403(movies, clicklog_table):
    assert Client().get("/api/events").status_code == 405
    strict = Client(enforce_csrf_checks=True)
    assert _post(strict, {"movie_id": 1, "kind": "click"}).status_code == 403
    assert not Interaction.objects.exists()


def test_broker_down_is_503_and_leaves_nothing(movies, visitor_client, settings, unused_tcp_port):
    settings.KAFKA_BOOTSTRAP = f"127.0.0.1:{unused_tcp_port}"  # nothing listens there
    try:
        response = _post(visitor_client, {"movie_id": 1, "kind": "click"})
    finally:
        stream._producer.cache_clear()

    assert response.status_code == 503
    # Pending items too: a compensating delete that failed leaves a pending item behind.
    assert clicklog.events_for(_visitor(visitor_client), pending=True) == []
    assert not Interaction.objects.exists()


def test_click_log_down_is_503_and_leaves_nothing(movies, visitor_client, settings, unused_tcp_port):
    endpoint = settings.DYNAMODB_ENDPOINT
    settings.DYNAMODB_ENDPOINT = f"http://127.0.0.1:{unused_tcp_port}"  # nothing listens there
    response = _post(visitor_client, {"movie_id": 1, "kind": "click"})
    settings.DYNAMODB_ENDPOINT = endpoint

    assert response.status_code == 503 and "try again" in response.json()["error"]
    assert clicklog.events_for(_visitor(visitor_client), pending=True) == []
    assert not Interaction.objects.exists()


def test_remove_and_move_keep_the_log_whole(movies, visitor_client):
    _post(visitor_client, {"movie_id": 1, "kind": "click"})
    _post(visitor_client, {"movie_id": 2, "kind": "click"})
    visitor = _visitor(visitor_client)

    history_remove(visitor=visitor, movie_id=1)
    assert list(Interaction.objects.filter(visitor=visitor).values_list("movie_id", flat=True)) == [2]
    assert [e.kind for e in clicklog.events_for(visitor)] == ["click", "click", "remove"]

    account = "v:" + "4" * 32
    assert history_move(from_visitor=visitor, to_visitor=account) == 3
    assert clicklog.events_for(visitor, pending=True) == []
    assert [e.movie_id for e in clicklog.events_for(account)] == [1, 2, 1]
    assert Interaction.objects.filter(visitor=account).count() == 1
    assert history_move(from_visitor=visitor, to_visitor=account) == 0  # a second run changes nothing
    assert [e.movie_id for e in clicklog.events_for(account)] == [1, 2, 1]


def test_a_retry_with_the_same_idempotency_key_stores_nothing_new(movies, visitor_client):
    key = str(uuid.uuid4())
    first = _post(visitor_client, {"movie_id": 2, "kind": "click"}, HTTP_IDEMPOTENCY_KEY=key)
    again = _post(visitor_client, {"movie_id": 2, "kind": "click"}, HTTP_IDEMPOTENCY_KEY=key)

    assert first.status_code == again.status_code == 202
    assert first.json()["event_id"] == again.json()["event_id"] == key
    visitor = _visitor(visitor_client)
    assert [e.event_id for e in clicklog.events_for(visitor, pending=True)] == [key]
    assert Interaction.objects.filter(visitor=visitor).count() == 1


@pytest.mark.parametrize(
    ("body", "key", "status"),
    [
        ({"movie_id": 3, "kind": "click"}, "same", 422),  # the key of another event
        ({"movie_id": 2, "kind": "click"}, "not-a-uuid", 400),
        ({"movie_id": 2, "kind": "click"}, "0" * 65, 400),
    ],
)
def test_a_misused_idempotency_key_is_refused(movies, visitor_client, body, key, status):
    used = str(uuid.uuid4())
    assert _post(visitor_client, {"movie_id": 2, "kind": "click"},
                 HTTP_IDEMPOTENCY_KEY=used).status_code == 202
    response = _post(visitor_client, body, HTTP_IDEMPOTENCY_KEY=used if key == "same" else key)
    assert response.status_code == status and "idempotency key" in response.json()["error"]
    assert [e.event_id for e in clicklog.events_for(_visitor(visitor_client), pending=True)] == [used]
    assert Interaction.objects.count() == 1


def test_another_visitors_key_is_refused(movies, visitor_client):
    key = str(uuid.uuid4())
    assert _post(visitor_client, {"movie_id": 2, "kind": "click"},
                 HTTP_IDEMPOTENCY_KEY=key).status_code == 202
    intruder = Client()
    intruder.get("/history/")
    assert _post(intruder, {"movie_id": 2, "kind": "click"}, HTTP_IDEMPOTENCY_KEY=key).status_code == 422
    assert clicklog.events_for(_visitor(intruder), pending=True) == []


def test_a_retry_that_lost_its_first_tries_session_records_the_click(movies, visitor_client):
    """A first click in a new session gets its visitor id there, and only the answer carries the
    session's cookie: a process that died before answering (a pending item, a mirror row) leaves
    the browser's retry a new id. The unanswered event is given up and recorded under the retry's
    id, once; nothing stays under the lost one. (A confirmed one stays its visitor's: above.)"""
    lost = f"v:{uuid.uuid4().hex}"  # the session whose cookie never reached the browser
    key, ts = str(uuid.uuid4()), events._now()
    clicklog.event_put(Event(event_id=key, visitor=lost, movie_id=2, kind="click", ts=ts, pending=True))
    Interaction.objects.create(visitor=lost, movie_id=2, kind="click", event_id=key,
                               created_at=events._at(ts))

    response = _post(visitor_client, {"movie_id": 2, "kind": "click"}, HTTP_IDEMPOTENCY_KEY=key)

    visitor = _visitor(visitor_client)
    assert response.status_code == 202 and response.json() == {"event_id": key, "visitor": visitor}
    assert [e.event_id for e in clicklog.events_for(visitor, pending=True)] == [key]
    assert clicklog.events_for(lost, pending=True) == []
    assert list(Interaction.objects.filter(event_id=key).values_list("visitor", flat=True)) == [visitor]
    again = _post(visitor_client, {"movie_id": 2, "kind": "click"}, HTTP_IDEMPOTENCY_KEY=key)
    assert again.status_code == 202 and len(clicklog.events_for(visitor, pending=True)) == 1


@pytest.mark.parametrize("first_try", ["answered for", "pending"])
def test_a_retry_in_a_new_session_takes_over_the_id_its_first_try_made(movies, first_try):
    """A first click without a session gets its id in a new session, whose cookie only the
    answer carries. When that answer is lost, the browser's retry makes another session: it
    takes over the first try's id (which holds nothing else), so the click is the visitor's,
    once, instead of a 422 (the soak's 49) or a click the visitor cannot see."""
    key = str(uuid.uuid4())
    if first_try == "answered for":
        first = Client()
        assert _post(first, {"movie_id": 2, "kind": "click"}, HTTP_IDEMPOTENCY_KEY=key).status_code == 202
        made = _visitor(first)
    else:  # the process died before answering: a pending item and its row, under an id of its own
        made, ts = f"v:{uuid.uuid4().hex}", events._now()
        clicklog.event_put(Event(event_id=key, visitor=made, movie_id=2, kind="click", ts=ts, pending=True))
        Interaction.objects.create(visitor=made, movie_id=2, kind="click", event_id=key,
                                   created_at=events._at(ts))
    retry = Client()  # no cookie: the answer that carried it was lost

    response = _post(retry, {"movie_id": 2, "kind": "click"}, HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 202 and response.json() == {"event_id": key, "visitor": made}
    assert _visitor(retry) == made
    assert [(e.event_id, e.pending) for e in clicklog.events_for(made, pending=True)] == [(key, False)]
    assert list(Interaction.objects.filter(event_id=key).values_list("visitor", flat=True)) == [made]


def test_a_new_session_does_not_take_over_an_id_that_holds_more(movies):
    """An id with other events has a live session: a key alone does not hand it over."""
    first, key = Client(), str(uuid.uuid4())
    assert _post(first, {"movie_id": 2, "kind": "click"}, HTTP_IDEMPOTENCY_KEY=key).status_code == 202
    assert _post(first, {"movie_id": 3, "kind": "click"}).status_code == 202
    stranger = Client()

    assert _post(stranger, {"movie_id": 2, "kind": "click"}, HTTP_IDEMPOTENCY_KEY=key).status_code == 422
    assert _visitor(stranger) != _visitor(first)
    assert clicklog.events_for(_visitor(stranger), pending=True) == []


def test_readers_skip_pending_items(movies, visitor_client):
    visitor = _visitor(visitor_client)
    pending = Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=1, kind="click",
                    ts=events._now(), pending=True)
    clicklog.event_put(pending)
    assert clicklog.events_for(visitor) == []
    assert [e.event_id for e in clicklog.events_for(visitor, pending=True)] == [pending.event_id]


@pytest.mark.parametrize("age_s", [0, 120])
def test_a_retry_confirms_what_a_dead_request_left_pending(movies, visitor_client, age_s):
    """The web process died after the mirror's commit: a pending item, a mirror row, no 202.
    The browser's retry confirms the event (re-keyed when the workers may have read past its
    timestamp) and notifies the workers; it is applied once."""
    visitor = _visitor(visitor_client)
    key = str(uuid.uuid4())
    ts = events._ts(datetime.now(UTC) - timedelta(seconds=age_s))
    clicklog.event_put(Event(event_id=key, visitor=visitor, movie_id=2, kind="click", ts=ts, pending=True))
    Interaction.objects.create(visitor=visitor, movie_id=2, kind="click", event_id=key,
                               created_at=events._at(ts))
    assert clicklog.events_for(visitor) == []

    response = _post(visitor_client, {"movie_id": 2, "kind": "click"}, HTTP_IDEMPOTENCY_KEY=key)

    assert response.status_code == 202 and response.json()["event_id"] == key
    [confirmed] = clicklog.events_for(visitor, pending=True)
    assert confirmed.event_id == key and not confirmed.pending
    assert (confirmed.ts == ts) == (age_s < events.RETRY_SAME_KEY_S)
    assert Interaction.objects.get(event_id=key).created_at == events._at(confirmed.ts)
    assert [m["event_id"] for m in _messages_for(visitor, expected=1)] == [key]


def test_the_browser_waits_longer_than_a_click_can_take_to_fail():
    """A page that says "not saved" must be right: the server's bounds end before the browser's."""
    script = (Path(__file__).resolve().parents[3] / "movie" / "static" / "movie" / "app.js").read_text()
    browser_s = int(re.search(r"EVENT_TIMEOUT_MS = (\d+);", script).group(1)) / 1000
    database_s = 1.0  # an insert of one row and two reads by key, with margin
    # The longest requests make three click-log calls and one Kafka send: a first try (the
    # pending item, the look for a later removal, the confirm), a retry that re-keys (delete the
    # old item, the new pending item, its confirm; or delete refused, read, send), a retry of a
    # recent item (read, confirm). A click in flight while its visitor logs in makes three more
    # when it lands (copy, look for removals, delete): not counted, it happens once per log-in.
    assert 3 * clicklog.WRITE_BUDGET_S + stream.SEND_TIMEOUT_S + database_s < browser_s


# --- A 202 is final: a first try that stalls while its retry answers ---------------------------


def _log(visitor: str) -> list[Event]:
    return clicklog.events_for(visitor, pending=True)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("fails_at", ["kafka", "confirm"])
def test_a_first_try_that_fails_after_its_retry_answered_undoes_nothing(movies, visitor_client, settings,
                                                                       unused_tcp_port, fails_at):
    """The first try commits its mirror row, then stalls past the browser's wait; the retry
    confirms and answers 202; then the first try fails (Kafka gone, or its confirming write):
    its rollback must leave the event, which is in the log once, confirmed, with its row."""
    visitor, key = _visitor(visitor_client), str(uuid.uuid4())
    click = dict(visitor=visitor, movie_id=2, kind="click", idempotency_key=key)
    first = Held(settings, "mirror:2", events.event_record, **click)

    retried = events.event_record(**click)  # the browser's retry
    assert retried.event_id == key

    saved = settings.KAFKA_BOOTSTRAP, settings.DYNAMODB_ENDPOINT
    if fails_at == "kafka":
        settings.KAFKA_BOOTSTRAP = f"127.0.0.1:{unused_tcp_port}"  # nothing listens there
        stream._producer.cache_clear()
    else:
        settings.DYNAMODB_ENDPOINT = f"http://127.0.0.1:{unused_tcp_port}"
    try:
        outcome = first.release()
    finally:
        stream._producer.cache_clear()
    settings.KAFKA_BOOTSTRAP, settings.DYNAMODB_ENDPOINT = saved

    assert isinstance(outcome, events.EventNotRecorded)
    [logged] = _log(visitor)
    assert (logged.event_id, logged.pending, logged.ts) == (key, False, retried.ts)
    assert Interaction.objects.get(event_id=key).created_at == events._at(retried.ts)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_retry_that_re_keys_a_stalled_first_try_leaves_one_confirmed_key(movies, visitor_client, settings,
                                                                          monkeypatch):
    """The mirror stalls past RETRY_SAME_KEY_S: the retry re-keys the event, and the first try,
    going on, must not confirm its old key as well (the workers would apply both)."""
    monkeypatch.setattr(events, "RETRY_SAME_KEY_S", 0)  # the 30 s have passed
    visitor, key = _visitor(visitor_client), str(uuid.uuid4())
    click = dict(visitor=visitor, movie_id=2, kind="click", idempotency_key=key)
    first = Held(settings, "mirror:2", events.event_record, **click)
    [pending] = _log(visitor)

    retried = events.event_record(**click)
    outcome = first.release()

    assert isinstance(outcome, events.EventNotRecorded)
    assert retried.ts > pending.ts
    [logged] = _log(visitor)
    assert (logged.event_id, logged.pending, logged.ts) == (key, False, retried.ts)
    assert Interaction.objects.get(event_id=key).created_at == events._at(retried.ts)


# --- A removal racing a click of the same movie ------------------------------------------------


def _models_history(visitor: str) -> list[int]:
    """What the live workers' replay of the log makes of the visitor's history."""
    return history_after([], clicklog.events_for(visitor))


def _mirror_history(visitor: str) -> list[int]:
    return sorted(set(Interaction.objects.filter(visitor=visitor).values_list("movie_id", flat=True)))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("held_at", ["clicklog", "mirror"])
def test_a_click_in_flight_when_its_movie_is_removed_is_in_neither_history(movies, visitor_client, settings,
                                                                          held_at):
    """A click of movie 1 is pending (its row not written yet, or written) when the visitor
    removes movie 1: the click sorts before the removal, so the workers drop it; the history
    must not show it either. Old code: the row, committed after the removal's delete, stayed."""
    assert _post(visitor_client, {"movie_id": 1, "kind": "click"}).status_code == 202
    visitor = _visitor(visitor_client)
    click = Held(settings, f"{held_at}:1", events.event_record, visitor=visitor, movie_id=1, kind="click")

    removal = history_remove(visitor=visitor, movie_id=1)
    outcome = click.release()

    assert removal is not None and isinstance(outcome, events.EventNotRecorded)
    assert _mirror_history(visitor) == _models_history(visitor) == []
    assert [e.kind for e in _log(visitor)] == ["click", "remove"]  # the cancelled click is no one's


def test_a_click_that_sorts_before_a_removal_of_its_movie_is_refused(movies, visitor_client):
    """The removal's item is in the log before the click's: the click gives up before it
    writes a row (the browser's retry gets a later timestamp)."""
    visitor = _visitor(visitor_client)
    later = events._ts(datetime.now(UTC) + timedelta(seconds=5))
    marks_write(visitor, [1])  # as every writer of a removal item does first
    clicklog.event_put(Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=1, kind="remove",
                             ts=later))

    assert _post(visitor_client, {"movie_id": 1, "kind": "click"}).status_code == 503
    assert _post(visitor_client, {"movie_id": 2, "kind": "click"}).status_code == 202  # another movie: fine
    assert _mirror_history(visitor) == [2]
    assert [(e.kind, e.movie_id) for e in _log(visitor)] == [("click", 2), ("remove", 1)]


def test_a_removal_that_fails_gives_the_history_back(movies, visitor_client, settings, unused_tcp_port):
    for movie_id in (1, 2):
        assert _post(visitor_client, {"movie_id": movie_id, "kind": "click"}).status_code == 202
    visitor = _visitor(visitor_client)
    settings.KAFKA_BOOTSTRAP = f"127.0.0.1:{unused_tcp_port}"
    try:
        with pytest.raises(events.EventNotRecorded):
            history_remove(visitor=visitor, movie_id=1)
    finally:
        stream._producer.cache_clear()

    assert _mirror_history(visitor) == _models_history(visitor) == [1, 2]
    assert [e.kind for e in _log(visitor)] == ["click", "click"]


def test_a_removal_leaves_a_mark_that_sends_later_clicks_of_its_movie_to_the_log(movies, visitor_client):
    """Without a mark a click does not look in the log for later removals: every removal item
    is preceded by one (`movie.tracking.removal_marks`)."""
    assert _post(visitor_client, {"movie_id": 1, "kind": "click"}).status_code == 202
    visitor, now = _visitor(visitor_client), datetime.now(UTC)
    assert not removal_marks.removal_possible(visitor=visitor, movie_id=1, ts=now)
    assert history_remove(visitor=visitor, movie_id=1) is not None
    assert removal_marks.removal_possible(visitor=visitor, movie_id=1, ts=now)
    assert not removal_marks.removal_possible(visitor=visitor, movie_id=2, ts=now)
    assert not removal_marks.removal_possible(visitor="someone else", movie_id=1, ts=now)
    # A click whose own timestamp is old always looks: its mark may have been deleted since.
    old = now - timedelta(seconds=removal_marks.MARK_KEEP_S / 2)
    assert removal_marks.removal_possible(visitor=visitor, movie_id=2, ts=old)


def test_marks_are_kept_their_period_and_no_longer(db):
    marked = removal_marks.marks_write("v1", [1, 2, 2])
    assert RemovalMark.objects.count() == 2
    RemovalMark.objects.update(created_at=marked - timedelta(seconds=removal_marks.MARK_KEEP_S + 1))
    removal_marks.marks_write("v2", [3])
    assert list(RemovalMark.objects.values_list("visitor", "movie_id")) == [("v2", 3)]
    # A removal whose timestamp is taken long after its mark gives up instead of writing its item.
    assert removal_marks.mark_fresh(marked, marked + timedelta(seconds=1))
    assert not removal_marks.mark_fresh(marked, marked + timedelta(seconds=removal_marks.MARK_KEEP_S / 2))
