"""The statistics of an A/B test, pure: Wilson intervals for a CTR, and a two-proportion
z-test between the best arm and each other arm."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from movie.experiments.selectors import ArmCTR

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile: two-sided 95%
SIGNIFICANCE = 0.05


def wilson_interval(clicks: int, impressions: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion: unlike the normal approximation it stays
    inside [0, 1] and is honest for small counts and CTRs near 0. No impressions: (0, 1)."""
    if impressions == 0:
        return 0.0, 1.0
    p, n = clicks / impressions, impressions
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_test(clicks_a: int, impressions_a: int, clicks_b: int,
                        impressions_b: int) -> tuple[float, float]:
    """Pooled two-proportion z-test of CTR a = CTR b: (z, two-sided p). Equal to a chi-square
    test of the 2x2 table without continuity correction. Identical all-0 or all-1 samples show
    no difference: (0, 1). Needs impressions on both sides."""
    if impressions_a == 0 or impressions_b == 0:
        raise ValueError("a two-proportion test needs impressions in both arms")
    pooled = (clicks_a + clicks_b) / (impressions_a + impressions_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / impressions_a + 1 / impressions_b))
    if se == 0:
        return 0.0, 1.0
    z = (clicks_a / impressions_a - clicks_b / impressions_b) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


@dataclass(frozen=True)
class Comparison:
    model: str
    best: str
    z: float | None  # None: one of the two arms has no impressions yet
    p: float | None
    significant: bool


def arm_comparisons(rows: list[ArmCTR]) -> list[Comparison]:
    """Each arm against the best (highest CTR; the most impressions among equals): a pooled
    two-proportion z-test, significant below SIGNIFICANCE. No test runs more than once per
    arm, but several arms mean several tests: a reader wanting one verdict over k arms
    compares p with SIGNIFICANCE / (k - 1) (Bonferroni)."""
    if not rows:
        return []
    best = max(rows, key=lambda r: (r.ctr, r.impressions))
    comparisons = []
    for row in rows:
        if row is best:
            continue
        if row.impressions == 0 or best.impressions == 0:
            comparisons.append(Comparison(row.model, best.model, None, None, False))
            continue
        z, p = two_proportion_test(best.clicks, best.impressions, row.clicks, row.impressions)
        comparisons.append(Comparison(row.model, best.model, z, p, p < SIGNIFICANCE))
    return comparisons
