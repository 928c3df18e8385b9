"""A click through the whole pipeline: API → DynamoDB + Kafka → consumer → Celery worker
→ fine-tune → Redis → API. Every hop is a real process or service."""

from __future__ import annotations

import time

import pytest
from django.test import Client

pytestmark = pytest.mark.timeout(240)


def _wait_for_fresh(client: Client, model: str, event_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/api/recommendations/{model}/?k=20").json()
        if body["source"] == "fresh" and body["as_of_event"] == event_id:
            return body
        time.sleep(0.05)
    pytest.fail(f"{model}: no fresh recommendations for event {event_id} within {timeout} s")


def test_clicks_reach_fresh_recommendations(
    catalogue_imported, trained_models, clicklog_table, live_celery_worker, click_consumer
):
    client = Client()
    cold = client.get("/api/recommendations/ngcf/?k=20").json()
    assert cold["fallback"] is True and cold["reason"] == "no_history"

    clicked = [1, 260, 1196]
    event_ids = []
    for movie_id in clicked:
        response = client.post("/api/events", {"movie_id": movie_id, "kind": "click"},
                               content_type="application/json")
        assert response.status_code == 202
        event_ids.append(response.json()["event_id"])

    for model in ("pinsage", "ngcf", "lightgcn"):
        fresh = _wait_for_fresh(client, model, event_ids[-1], timeout=30)
        movie_ids = [item["movie_id"] for item in fresh["items"]]
        assert fresh["fallback"] is False and fresh["model_version"] == trained_models[model]
        assert len(movie_ids) == 20 and not set(movie_ids) & set(clicked)
        assert movie_ids != [item["movie_id"] for item in cold["items"]]


def test_bad_k_and_unknown_model(trained_models):
    client = Client()
    assert client.get("/api/recommendations/ngcf/?k=0").status_code == 400
    assert client.get("/api/recommendations/ngcf/?k=abc").status_code == 400
    assert client.get("/api/recommendations/ngcf/?k=²").status_code == 400  # a digit int() refuses
    assert client.get("/api/recommendations/word2vec/").status_code == 404
