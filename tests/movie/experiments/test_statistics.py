"""movie.experiments.statistics: Wilson intervals and the two-proportion test, against scipy and
by hand, and each arm compared with the best."""

from __future__ import annotations

import pytest
from scipy import stats

from movie.experiments.selectors import (
    ArmCTR,
)
from movie.experiments.statistics import arm_comparisons, two_proportion_test, wilson_interval


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
