"""The scheduled retrain: a visitor's clicks become edges of the next version, and the running
web process and live worker serve that version without a restart."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from django.test import Client

from predictors import cache, registry
from predictors.recommend import GNN_MODELS, MODELS
from predictors.visitor_state import visitor_digest
from workers.tasks import retrain_models
from tests.workers.clicks import click, wait_until

pytestmark = pytest.mark.timeout(300)
CLICKED = [1, 260, 1196]


@pytest.fixture
def retrained(trained_models):
    """Runs the retrain task's body; the versions it publishes are removed afterwards."""
    results = {}
    yield results
    for model, result in results.items():
        if result["published"] and result["version"] != trained_models[model]:
            shutil.rmtree(registry.model_dir() / model / result["version"])


def test_retrain_publishes_visitor_clicks_and_serving_switches_without_restart(
    catalogue_imported, trained_models, clicklog_table, click_consumer, live_celery_worker, retrained
):
    client = Client()
    event_ids = [click(client, movie_id) for movie_id in CLICKED]
    visitor = client.session["visitor"]
    wait_until(lambda: all((cache.recommendations_get(m, visitor) or {}).get("as_of_event") == event_ids[-1]
                            for m in GNN_MODELS), 30, "the clicks in every model")

    retrained.update(retrain_models(epochs=2))

    assert set(retrained) == set(MODELS)
    for model in GNN_MODELS:
        result = retrained[model]
        assert result["published"], result["reason"]
        assert result["version"] != trained_models[model] == registry.published(model).checkpoint.meta["warm_start"]
        checkpoint = registry.published(model).checkpoint
        row = checkpoint.meta["visitors"][visitor_digest(visitor)]
        edges = checkpoint.graph().train_edges
        movie_rows = set(np.flatnonzero(np.isin(checkpoint.item_ids, CLICKED)).tolist())
        assert set(edges[edges[:, 0] == row, 1].tolist()) == movie_rows
        assert checkpoint.meta["data"]["n_visitors"] >= 1

    # The web process serves the new version at once, and asks the worker for a refresh ...
    page = client.get("/api/recommendations/ngcf/?k=20").json()
    assert page["model_version"] == retrained["ngcf"]["version"]
    # ... which the running worker re-derives on the new version, without a click.
    wait_until(lambda: all((cache.recommendations_get(m, visitor) or {}).get("model_version")
                            == retrained[m]["version"] for m in GNN_MODELS), 60, "the worker on the new versions")
    after = click(client, 2571)
    wait_until(lambda: all((cache.recommendations_get(m, visitor) or {}).get("as_of_event") == after
                            for m in GNN_MODELS), 30, "a new click on the new versions")
    fresh = client.get("/api/recommendations/lightgcn/?k=20").json()
    assert fresh["source"] == "fresh" and fresh["model_version"] == retrained["lightgcn"]["version"]
