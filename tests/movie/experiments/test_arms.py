"""movie.experiments.arms: which arm a visitor sees, stable, weighted, independent between
experiments, and kept across sign-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone
from scipy import stats

from movie.experiments.arms import DEFAULT_ARM, arm_for
from movie.experiments.selectors import running_experiment, visitor_arm
from movie.tracking.visitors import visitor_key
from tests.movie.experiments.conftest import ROOT, WEIGHTS, experiment_new, visitor_ids


def test_an_arm_is_stable_for_a_visitor_across_processes():
    """The same arms in a fresh interpreter with another hash seed: SHA-256, not hash()."""
    experiment, visitors = experiment_new(), visitor_ids(20)
    here = [arm_for(v, experiment) for v in visitors]
    assert here == [arm_for(v, experiment) for v in visitors]
    code = (
        "import django, json, sys; django.setup()\n"
        "from movie.experiments.arms import arm_for; from movie.experiments.models import Experiment\n"
        "e = Experiment(name=sys.argv[1], arms=json.loads(sys.argv[2]))\n"
        "print(' '.join(arm_for(v, e) for v in sys.argv[3:]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    there = subprocess.run([sys.executable, "-c", code, experiment.name, json.dumps(experiment.arms),
                            *visitors],
                           cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.split()
    assert there == here


def test_arms_follow_the_weights_over_10000_visitors():
    experiment, visitors = experiment_new(), visitor_ids(10_000)
    counts = {model: 0 for model in WEIGHTS}
    for visitor in visitors:
        counts[arm_for(visitor, experiment)] += 1

    total = sum(WEIGHTS.values())
    expected = [len(visitors) * WEIGHTS[m] / total for m in WEIGHTS]
    # Goodness of fit of all three arms at once...
    assert stats.chisquare(list(counts.values()), expected).pvalue > 0.01
    # ...and each arm inside its binomial 99.9% range.
    for model, weight in WEIGHTS.items():
        low, high = stats.binom.interval(0.999, len(visitors), weight / total)
        assert low <= counts[model] <= high, (model, counts)


def test_two_experiments_split_visitors_independently():
    """The experiment's name is hashed too: being in arm A of one experiment says nothing of
    the arm in the next (a 2x2 independence test over 10,000 visitors)."""
    halves = {"ngcf": 1, "lightgcn": 1}
    first, second = experiment_new("first", halves), experiment_new("second", halves)
    table = [[0, 0], [0, 0]]
    for visitor in visitor_ids(10_000, seed=3):
        table[arm_for(visitor, first) == "ngcf"][arm_for(visitor, second) == "ngcf"] += 1
    assert stats.chi2_contingency(table, correction=False).pvalue > 0.01


def test_no_running_experiment_means_the_default_arm(db):
    visitor = visitor_ids(1)[0]
    assert running_experiment() is None and visitor_arm(visitor) == DEFAULT_ARM

    stopped = experiment_new("over", stopped_at=timezone.now() - timedelta(minutes=1))
    stopped.save()
    experiment_new("later", started_at=timezone.now() + timedelta(days=1)).save()
    assert running_experiment() is None and visitor_arm(visitor) == DEFAULT_ARM


def test_the_newest_running_experiment_assigns(db):
    experiment_new("old", {"ngcf": 1}, started_at=timezone.now() - timedelta(days=2)).save()
    experiment_new("new", {"pinsage": 1}, started_at=timezone.now() - timedelta(days=1)).save()
    assert running_experiment().name == "new"
    assert visitor_arm(visitor_ids(1)[0]) == "pinsage"


def test_the_arm_survives_sign_up(client, db):
    """Through the real sign-up view: the account adopts the session's visitor id, so the arm
    the visitor had anonymously is the arm it has signed in."""
    experiment_new("even", {"pinsage": 1, "ngcf": 1, "lightgcn": 1, "popular": 1}).save()
    before = visitor_key(client.get(reverse("history")).wsgi_request)

    response = client.post(reverse("signup"), {"username": "ada", "password1": "correct-horse-battery",
                                               "password2": "correct-horse-battery"})

    assert response.status_code == 302
    after = client.get(reverse("history")).wsgi_request
    assert after.user.username == "ada" and visitor_key(after) == before
    assert visitor_arm(visitor_key(after)) == visitor_arm(before)
