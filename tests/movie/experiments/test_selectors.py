"""movie.experiments.selectors: CTR per arm, per model version and per position, from the
impressions mirror and the clicks credited to it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from movie.experiments.selectors import arm_ctr, position_ctr, version_ctr
from movie.experiments.statistics import wilson_interval
from movie.tracking.models import Impression, Interaction
from tests.movie.experiments.conftest import experiment_new, lists_shown


def test_arm_ctr_counts_clicked_lists_of_the_experiment_only(movies):
    experiment = experiment_new(weights={"lightgcn": 1, "ngcf": 1, "pinsage": 1})
    experiment.save()
    lists_shown(experiment, "lightgcn", 10, clicked_at=[1, 2, 3])
    lists_shown(experiment, "ngcf", 4, clicked_at=[5])
    # Not the experiment's: other pages, a model that is no arm, lists from before it started.
    lists_shown(experiment, "lightgcn", 7, clicked_at=[1] * 7, page="recommendations")
    lists_shown(experiment, "popular", 3, clicked_at=[1])
    Impression.objects.create(id=uuid.uuid4(), visitor="v:" + "b" * 32, model="ngcf", page="home",
                              movie_ids=[1], size=1,
                              created_at=experiment.started_at - timedelta(seconds=1))
    # Two clicks on one list count once: CTR is the share of lists clicked.
    first = Impression.objects.filter(model="lightgcn", page="home", clicks__position=1).get()
    Interaction.objects.create(visitor=first.visitor, movie_id=1, kind="click", event_id=uuid.uuid4(),
                               created_at=first.created_at, impression=first, position=1)

    rows = arm_ctr(experiment)

    assert [(r.model, r.impressions, r.clicks) for r in rows] == [
        ("lightgcn", 10, 3), ("ngcf", 4, 1), ("pinsage", 0, 0)]
    assert rows[0].ctr == 0.3 and (rows[0].low, rows[0].high) == pytest.approx(wilson_interval(3, 10))
    assert (rows[2].ctr, rows[2].low, rows[2].high) == (0.0, 0.0, 1.0)


def test_ctr_per_version_and_per_position(movies):
    experiment = experiment_new(weights={"lightgcn": 1})
    experiment.save()
    lists_shown(experiment, "lightgcn", 4, clicked_at=[1, 1, 2], version="v1", size=3)
    lists_shown(experiment, "lightgcn", 2, clicked_at=[2], version="v2", size=2)

    versions = {(r.model, r.model_version): (r.impressions, r.clicks) for r in version_ctr(experiment)}
    assert versions == {("lightgcn", "v1"): (4, 3), ("lightgcn", "v2"): (2, 1)}
    positions = [(r.position, r.impressions, r.clicks) for r in position_ctr(experiment)]
    # Position 3 exists only in the four v1 lists.
    assert positions == [(1, 6, 2), (2, 6, 2), (3, 4, 0)]
