"""Upkeep beat runs on the retrain worker's queue: expired sessions out of the database every
day, and expired click-log and impression items out of DynamoDB where no TTL deletes them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from eventstore import clicklog, expiry
from eventstore.clicklog import Event
from predictors import TS_FORMAT
from workers import tasks


def test_beat_clears_sessions_daily_and_sweeps_expired_items_where_dynamodb_is_a_stand_in(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["clear-sessions"]["task"] == "workers.tasks.sessions_clear"
    assert schedule["clear-sessions"]["schedule"] == 24 * 3600
    assert settings.DYNAMODB_ENDPOINT and settings.EXPIRY_SWEEP  # dynalite: no TTL, so the sweep runs
    assert schedule["expired-items"]["task"] == "workers.tasks.expired_items_delete"
    # Never in a live tick's way, nor behind an hour-long retrain.
    assert tasks.sessions_clear.queue == tasks.expired_items_delete.queue == "upkeep"


@pytest.mark.django_db
def test_clear_sessions_deletes_the_expired_only():
    now = timezone.now()
    Session.objects.create(session_key="expired" + "x" * 25, session_data="",
                           expire_date=now - timedelta(seconds=1))
    Session.objects.create(session_key="current" + "x" * 25, session_data="",
                           expire_date=now + timedelta(days=1))

    tasks.sessions_clear()

    left = set(Session.objects.filter(session_key__in=["expired" + "x" * 25, "current" + "x" * 25])
               .values_list("session_key", flat=True))
    assert left == {"current" + "x" * 25}
    assert not Session.objects.filter(expire_date__lt=timezone.now()).exists()


def test_the_sweep_task_deletes_expired_click_log_items(clicklog_table, impressions_table, settings):
    settings.CLICKLOG_RETENTION_DAYS = 1
    expired = Event(event_id=str(uuid.uuid4()), visitor="v:upkeep", movie_id=1, kind="click",
                    ts="2020-01-01T00:00:00.000000Z")
    kept = Event(event_id=str(uuid.uuid4()), visitor="v:upkeep", movie_id=2, kind="click",
                 ts=timezone.now().strftime(TS_FORMAT))
    clicklog.event_put(expired)
    clicklog.event_put(kept)
    expiry._positions.clear()

    counts = tasks.expired_items_delete()

    assert counts == {clicklog_table: [2, 1], impressions_table: [0, 0]}
    assert [e.event_id for e in clicklog.events_for("v:upkeep")] == [kept.event_id]
