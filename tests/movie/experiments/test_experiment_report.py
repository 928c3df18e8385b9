"""`manage.py experiment_report`: each arm and the tests against the best, or a sentence."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from scipy import stats

from tests.movie.experiments.conftest import experiment_new, lists_shown


def test_the_report_prints_each_arm_and_the_tests_against_the_best(movies):
    experiment = experiment_new("report", {"ngcf": 1, "lightgcn": 1, "pinsage": 1, "popular": 1})
    experiment.save()
    lists_shown(experiment, "lightgcn", 200, clicked_at=[1] * 30)
    lists_shown(experiment, "ngcf", 180, clicked_at=[2] * 12)
    lists_shown(experiment, "pinsage", 190, clicked_at=[3] * 25)
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
    experiment_new("home-row").save()
    with pytest.raises(CommandError, match="No experiment named 'nope'. Experiments: home-row."):
        call_command("experiment_report", "nope", stdout=StringIO())
