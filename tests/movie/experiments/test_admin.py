"""movie.experiments.admin: the form explains bad arms and refuses new ones once started."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from movie.experiments.admin import ExperimentForm
from movie.experiments.models import Experiment
from tests.movie.experiments.conftest import experiment_new


def _form(arms, **fields) -> ExperimentForm:
    data = {"name": "x", "arms": json.dumps(arms), "started_at": "2030-01-01 00:00:00", **fields}
    return ExperimentForm(data=data)


@pytest.mark.parametrize(
    ("arms", "message"),
    [
        ([], "required"),
        ({"model": "ngcf"}, "non-empty list"),
        ([{"model": "ngcf"}], 'exactly "model" and "weight"'),
        ([{"model": "svd", "weight": 1}], "unknown model 'svd'"),
        ([{"model": "ngcf", "weight": 0}], "positive number"),
        ([{"model": "ngcf", "weight": "2"}], "positive number"),
        ([{"model": "ngcf", "weight": True}], "positive number"),
        ([{"model": "ngcf", "weight": 1}, {"model": "ngcf", "weight": 2}], "already an arm"),
    ],
)
def test_the_admin_form_explains_bad_arms(db, arms, message):
    form = _form(arms)
    assert not form.is_valid() and message in " ".join(form.errors["arms"])


def test_every_served_model_can_be_an_arm_sasrec_too(db):
    from pytorch_models.models.names import SERVED_MODELS

    assert "sasrec" in SERVED_MODELS
    assert _form([{"model": model, "weight": 1} for model in SERVED_MODELS]).is_valid()


def test_the_admin_form_refuses_a_stop_before_the_start_and_new_arms_once_started(db):
    stopped_first = _form([{"model": "ngcf", "weight": 1}], stopped_at="2029-01-01 00:00:00")
    assert "stop after it starts" in str(stopped_first.errors["stopped_at"])
    running = experiment_new()
    running.save()
    form = ExperimentForm(instance=running,
                          data={"name": running.name, "arms": '[{"model": "ngcf", "weight": 1}]',
                                "started_at": "2020-01-01 00:00:00"})
    assert not form.is_valid() and "cannot change" in str(form.errors["arms"])


def test_the_admin_adds_anexperiment_new(admin_client):
    response = admin_client.post(reverse("admin:experiments_experiment_add"), {
        "name": "home-row", "arms": '[{"model": "lightgcn", "weight": 2}, {"model": "ngcf", "weight": 1}]',
        "started_at_0": "2030-01-01", "started_at_1": "00:00:00",
    })
    assert response.status_code == 302
    assert Experiment.objects.get(name="home-row").arms[0] == {"model": "lightgcn", "weight": 2}
