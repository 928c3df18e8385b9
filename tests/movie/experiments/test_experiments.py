"""movie.experiments: arm assignment, the statistics, CTR per arm/version/position, the admin
form and `manage.py experiment_report`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from scipy import stats

from movie.catalogue.models import Movie
from movie.experiments.admin import ExperimentForm
from movie.experiments.arms import DEFAULT_ARM, arm_for
from movie.experiments.models import Experiment
from movie.experiments.selectors import (
    ArmCTR,
    arm_ctr,
    position_ctr,
    running_experiment,
    version_ctr,
    visitor_arm,
)
from movie.experiments.statistics import arm_comparisons, two_proportion_test, wilson_interval
from movie.tracking.models import Impression, Interaction
from movie.tracking.visitors import visitor_key

ROOT = Path(__file__).resolve().parents[3]
WEIGHTS = {"pinsage": 1, "ngcf": 2, "lightgcn": 3}


def _visitor_ids(n: int, seed: int = 9) -> list[str]:
    """Synthetic visitor ids shaped like movie.tracking.visitors makes them; seeded, so the test is fixed."""
    rng = random.Random(seed)
    return [f"v:{rng.getrandbits(128):032x}" for _ in range(n)]


def _experiment(name: str = "home-row", weights: dict = WEIGHTS, **fields) -> Experiment:
    arms = [{"model": model, "weight": weight} for model, weight in weights.items()]
    return Experiment(name=name, arms=arms,
                      started_at=fields.pop("started_at", timezone.now() - timedelta(hours=1)), **fields)


# --- assignment -----------------------------------------------------------------------


def test_an_arm_is_stable_for_a_visitor_across_processes():
    """The same arms in a fresh interpreter with another hash seed: SHA-256, not hash()."""
    experiment, visitors = _experiment(), _visitor_ids(20)
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
    experiment, visitors = _experiment(), _visitor_ids(10_000)
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
    first, second = _experiment("first", halves), _experiment("second", halves)
    table = [[0, 0], [0, 0]]
    for visitor in _visitor_ids(10_000, seed=3):
        table[arm_for(visitor, first) == "ngcf"][arm_for(visitor, second) == "ngcf"] += 1
    assert stats.chi2_contingency(table, correction=False).pvalue > 0.01


def test_no_running_experiment_means_the_default_arm(db):
    visitor = _visitor_ids(1)[0]
    assert running_experiment() is None and visitor_arm(visitor) == DEFAULT_ARM

    stopped = _experiment("over", stopped_at=timezone.now() - timedelta(minutes=1))
    stopped.save()
    _experiment("later", started_at=timezone.now() + timedelta(days=1)).save()
    assert running_experiment() is None and visitor_arm(visitor) == DEFAULT_ARM


def test_the_newest_running_experiment_assigns(db):
    _experiment("old", {"ngcf": 1}, started_at=timezone.now() - timedelta(days=2)).save()
    _experiment("new", {"pinsage": 1}, started_at=timezone.now() - timedelta(days=1)).save()
    assert running_experiment().name == "new"
    assert visitor_arm(_visitor_ids(1)[0]) == "pinsage"


def test_the_arm_survives_sign_up(client, db):
    """Through the real sign-up view: the account adopts the session's visitor id, so the arm
    the visitor had anonymously is the arm it has signed in."""
    _experiment("even", {"pinsage": 1, "ngcf": 1, "lightgcn": 1, "popular": 1}).save()
    before = visitor_key(client.get(reverse("history")).wsgi_request)

    response = client.post(reverse("signup"), {"username": "ada", "password1": "correct-horse-battery",
                                               "password2": "correct-horse-battery"})

    assert response.status_code == 302
    after = client.get(reverse("history")).wsgi_request
    assert after.user.username == "ada" and visitor_key(after) == before
    assert visitor_arm(visitor_key(after)) == visitor_arm(before)


# --- statistics -----------------------------------------------------------------------


@pytest.mark.parametrize(("clicks", "impressions"),
                         [(0, 10), (1, 10), (30, 200), (12, 180), (50, 50), (1, 1)])
def test_the_wilson_interval_matches_scipy(clicks, impressions):
    expected = stats.binomtest(clicks, impressions).proportion_ci(0.95, method="wilson")
    assert wilson_interval(clicks, impressions) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_the_wilson_interval_by_hand():
    # No click in 10: the upper end is z^2 / (n + z^2) = 3.8415 / 13.8415.
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.27754), abs=1e-5)
    assert wilson_interval(0, 0) == (0.0, 1.0)  # nothing seen: anything is possible


def test_the_two_proportion_test_matches_a_chi_square_and_the_hand_sum():
    z, p = two_proportion_test(30, 200, 12, 180)
    # By hand: pooled 42/380 = 0.110526; se = sqrt(0.110526 * 0.889474 * (1/200 + 1/180))
    # = 0.032214; z = (0.15 - 0.066667) / 0.032214 = 2.5869.
    assert z == pytest.approx(2.5869, abs=1e-4)
    chi2 = stats.chi2_contingency([[30, 170], [12, 168]], correction=False)
    assert z * z == pytest.approx(chi2.statistic) and p == pytest.approx(chi2.pvalue)
    assert p == pytest.approx(2 * stats.norm.sf(z))


def test_the_two_proportion_test_edge_cases():
    assert two_proportion_test(0, 10, 0, 20) == (0.0, 1.0)
    assert two_proportion_test(5, 5, 7, 7) == (0.0, 1.0)
    with pytest.raises(ValueError):
        two_proportion_test(0, 0, 1, 10)


def test_each_arm_is_compared_with_the_best():
    rows = [ArmCTR("ngcf", 180, 12, 12 / 180, 0, 1), ArmCTR("lightgcn", 200, 30, 0.15, 0, 1),
            ArmCTR("pinsage", 190, 25, 25 / 190, 0, 1), ArmCTR("popular", 0, 0, 0.0, 0, 1)]
    by_model = {c.model: c for c in arm_comparisons(rows)}
    assert ({c.best for c in by_model.values()} == {"lightgcn"}
            and set(by_model) == {"ngcf", "pinsage", "popular"})
    assert by_model["ngcf"].significant and by_model["ngcf"].p == pytest.approx(0.00968, abs=1e-4)
    assert not by_model["pinsage"].significant
    assert by_model["popular"].p is None and not by_model["popular"].significant


# --- CTR from the mirror --------------------------------------------------------------


@pytest.fixture
def movies(db):
    return [Movie.objects.create(id=i, title=f"Movie {i}") for i in range(1, 6)]


def _shown(experiment: Experiment, model: str, n: int, *, clicked_at: list[int | None] = (),
           page: str = "home", version: str = "v1", size: int = 5, visitor: str = "v:" + "a" * 32) -> None:
    """`n` lists shown (as the mirror holds them); the i-th clicked at position clicked_at[i]."""
    at = experiment.started_at + timedelta(minutes=1)
    shown = Impression.objects.bulk_create(
        Impression(id=uuid.uuid4(), visitor=visitor, model=model, model_version=version, page=page,
                   movie_ids=list(range(1, size + 1)), size=size, created_at=at) for _ in range(n))
    Interaction.objects.bulk_create(
        Interaction(visitor=visitor, movie_id=position, kind="click", event_id=uuid.uuid4(), created_at=at,
                    impression=impression, position=position)
        for impression, position in zip(shown, clicked_at, strict=False) if position is not None)


def test_arm_ctr_counts_clicked_lists_of_the_experiment_only(movies):
    experiment = _experiment(weights={"lightgcn": 1, "ngcf": 1, "pinsage": 1})
    experiment.save()
    _shown(experiment, "lightgcn", 10, clicked_at=[1, 2, 3])
    _shown(experiment, "ngcf", 4, clicked_at=[5])
    # Not the experiment's: other pages, a model that is no arm, lists from before it started.
    _shown(experiment, "lightgcn", 7, clicked_at=[1] * 7, page="recommendations")
    _shown(experiment, "popular", 3, clicked_at=[1])
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
    experiment = _experiment(weights={"lightgcn": 1})
    experiment.save()
    _shown(experiment, "lightgcn", 4, clicked_at=[1, 1, 2], version="v1", size=3)
    _shown(experiment, "lightgcn", 2, clicked_at=[2], version="v2", size=2)

    versions = {(r.model, r.model_version): (r.impressions, r.clicks) for r in version_ctr(experiment)}
    assert versions == {("lightgcn", "v1"): (4, 3), ("lightgcn", "v2"): (2, 1)}
    positions = [(r.position, r.impressions, r.clicks) for r in position_ctr(experiment)]
    # Position 3 exists only in the four v1 lists.
    assert positions == [(1, 6, 2), (2, 6, 2), (3, 4, 0)]


# --- the admin ------------------------------------------------------------------------


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


def test_the_admin_form_refuses_a_stop_before_the_start_and_new_arms_once_started(db):
    stopped_first = _form([{"model": "ngcf", "weight": 1}], stopped_at="2029-01-01 00:00:00")
    assert "stop after it starts" in str(stopped_first.errors["stopped_at"])
    running = _experiment()
    running.save()
    form = ExperimentForm(instance=running,
                          data={"name": running.name, "arms": '[{"model": "ngcf", "weight": 1}]',
                                "started_at": "2020-01-01 00:00:00"})
    assert not form.is_valid() and "cannot change" in str(form.errors["arms"])


def test_the_admin_adds_an_experiment(admin_client):
    response = admin_client.post(reverse("admin:experiments_experiment_add"), {
        "name": "home-row", "arms": '[{"model": "lightgcn", "weight": 2}, {"model": "ngcf", "weight": 1}]',
        "started_at_0": "2030-01-01", "started_at_1": "00:00:00",
    })
    assert response.status_code == 302
    assert Experiment.objects.get(name="home-row").arms[0] == {"model": "lightgcn", "weight": 2}


# --- manage.py experiment_report ------------------------------------------------------


def test_the_report_prints_each_arm_and_the_tests_against_the_best(movies):
    experiment = _experiment("report", {"ngcf": 1, "lightgcn": 1, "pinsage": 1, "popular": 1})
    experiment.save()
    _shown(experiment, "lightgcn", 200, clicked_at=[1] * 30)
    _shown(experiment, "ngcf", 180, clicked_at=[2] * 12)
    _shown(experiment, "pinsage", 190, clicked_at=[3] * 25)
    out = StringIO()

    call_command("experiment_report", "report", stdout=out)

    lines = out.getvalue().splitlines()
    low, high = stats.binomtest(30, 200).proportion_ci(0.95, method="wilson")
    assert f"lightgcn           200      30  15.00%  [{low:.2%}, {high:.2%}]" in lines
    assert "popular              0       0   0.00%  [0.00%, 100.00%]" in lines
    assert "Best arm: lightgcn (highest CTR)" in lines
    ngcf = stats.chi2_contingency([[30, 170], [12, 168]], correction=False)
    assert (f"ngcf vs lightgcn: z = {ngcf.statistic ** 0.5:.2f}, p = {ngcf.pvalue:.4f}, "
            "significant at 0.05") in lines
    pinsage = stats.chi2_contingency([[30, 170], [25, 165]], correction=False)
    assert (f"pinsage vs lightgcn: z = {pinsage.statistic ** 0.5:.2f}, p = {pinsage.pvalue:.4f}, "
            "not significant at 0.05") in lines
    assert "popular vs lightgcn: no test yet, an arm has no impressions" in lines


def test_the_report_of_an_unknown_experiment_is_a_command_error(db):
    _experiment("home-row").save()
    with pytest.raises(CommandError, match="No experiment named 'nope'. Experiments: home-row."):
        call_command("experiment_report", "nope", stdout=StringIO())
