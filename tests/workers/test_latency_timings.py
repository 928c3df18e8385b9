"""Click → fresh-list latency end to end: a click through the real API, Kafka, consumer and
Celery live worker leaves its timing in Redis, and the staff dashboard shows it."""

from __future__ import annotations

import re
import time

import pytest
from django.test import Client

from livepath import latency
from livepath.store import client
from predictors import cache
from pytorch_models.models.names import FINE_TUNED_LIVE
from tests.workers.clicks import click, wait_until

pytestmark = pytest.mark.timeout(300)


def test_a_clicks_wait_for_its_fresh_list_reaches_the_dashboard(
    catalogue_imported, trained_models, clicklog_table, click_consumer, live_celery_worker, django_user_model
):
    client().delete(latency.KEY)
    visitor_client = Client()
    started = time.time()
    event_id = click(visitor_client, 1)
    visitor = visitor_client.session["visitor"]
    wait_until(lambda: all((cache.recommendations_get(m, visitor) or {}).get("as_of_event") == event_id
                           for m in FINE_TUNED_LIVE), 30, "the click in every model")
    waited = time.time() - started
    wait_until(lambda: latency.latency_last_hour()[0].count == 1, 5, "the worker's timing")

    summary, [(_, seconds)] = latency.latency_last_hour()

    assert 0 < seconds <= waited + 0.1  # the timing is written just after the lists
    assert summary.p50 == summary.p95 == seconds
    staff = Client()
    staff.force_login(django_user_model.objects.create_user(username="ops", password="x" * 12, is_staff=True))
    panel = staff.get("/dashboard/").content.decode().split('id="latency"', 1)[1]
    assert "1 applied click:" in panel
    shown_ms = float(re.search(r'<strong class="p50">(\d+) ms</strong>', panel).group(1))
    assert shown_ms == pytest.approx(seconds * 1000, abs=1)
