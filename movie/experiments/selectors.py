"""A/B experiments between the recommenders: who sees which model, and which model wins.

- Assignment: `arm_for(visitor, experiment)` hashes (experiment name, visitor id) with SHA-256
  onto [0, 1) and picks the arm whose slice of the cumulative weights holds the point. Stable
  for a visitor (no state is stored), independent between experiments (the name is hashed
  too), and it survives sign-up because the new account adopts the session's visitor id
  (`movie.accounts`). With no experiment running every visitor gets DEFAULT_ARM.
- Impression tokens: a page that shows a list signs what it showed (`impression_token`) and
  records nothing; the browser posts the token back and `movie.impressions` records it. The
  page pays for an HMAC (tens of µs), not for a DynamoDB put and a Kafka send.
- CTR: per arm, per model version and per position, from the `Impression` mirror and the
  clicks attributed to it (`Interaction.impression`), with Wilson intervals and a
  two-proportion z-test between the best arm and each other arm.

Only the home page's "Recommended for you" row (page EXPERIMENT_PAGE) shows the visitor's arm,
so only its impressions count for an experiment: the per-model pages show the model the
visitor chose, and the "Popular now" row is the same list whatever the arm.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.utils import timezone as django_timezone

from movie.models import Experiment, Impression, Interaction
from predictors import TS_FORMAT

# What a visitor gets when no experiment runs: the model the home row showed before
# experiments existed.
DEFAULT_ARM = "lightgcn"

# The pages that show lists (what `impression_token(page=...)` accepts). "home": the
# visitor's arm in "Recommended for you"; "popular": the home page's "Popular now" row for a
# visitor without history; "recommendations": a per-model page; "similar": "More like this".
PAGES = ("home", "popular", "recommendations", "similar")
EXPERIMENT_PAGE = "home"

TOKEN_SALT = "impression"
# A token is posted by the page's script as soon as the page loads; a day leaves room for a
# slow network and a tab restored later, and bounds how long a copied token stays usable.
TOKEN_MAX_AGE_S = 24 * 3600
MAX_TOKEN_CHARS = 4096  # a token for 100 movies is about 1 KB

Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile: two-sided 95%
SIGNIFICANCE = 0.05


# --- experiments and arms -------------------------------------------------------------


@dataclass(frozen=True)
class Arm:
    model: str
    weight: float


def arms_validate(raw) -> list[Arm]:
    """An experiment's `arms` JSON as Arms; ValidationError with a sentence an editor can act on."""
    if not isinstance(raw, list) or not raw:
        raise ValidationError('Arms must be a non-empty list like [{"model": "lightgcn", "weight": 1}].')
    arms: list[Arm] = []
    for number, arm in enumerate(raw, start=1):
        if not isinstance(arm, dict) or set(arm) != {"model", "weight"}:
            raise ValidationError(f'Arm {number} must be an object with exactly "model" and "weight".')
        model, weight = arm["model"], arm["weight"]
        if model not in settings.RECOMMENDATION_MODELS:
            raise ValidationError(
                f"Arm {number}: unknown model {model!r}; "
                f"choose from {', '.join(settings.RECOMMENDATION_MODELS)}."
            )
        if any(a.model == model for a in arms):
            raise ValidationError(
                f"Arm {number}: model {model!r} is already an arm; each model may appear once."
            )
        if (isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight)
                or weight <= 0):
            raise ValidationError(f"Arm {number} ({model}): the weight must be a positive number.")
        arms.append(Arm(model, float(weight)))
    return arms


def experiment_get(name: str) -> Experiment | None:
    return Experiment.objects.filter(name=name).first()


def experiment_names() -> list[str]:
    return list(Experiment.objects.order_by("-started_at").values_list("name", flat=True))


# Every home page asks for the running experiment: each process keeps the answer this long,
# so starting or stopping one in the admin takes effect within it.
RUNNING_CACHE_S = 5


def running_experiment(at: datetime | None = None) -> Experiment | None:
    """The experiment running at `at` (now): started, not yet stopped; the newest if several."""
    if at is None:
        return cache.get_or_set("running_experiment", lambda: running_experiment(django_timezone.now()),
                                RUNNING_CACHE_S)
    return (
        Experiment.objects.filter(started_at__lte=at)
        .filter(Q(stopped_at__isnull=True) | Q(stopped_at__gt=at))
        .order_by("-started_at", "-id")
        .first()
    )


def unit_hash(*parts: str) -> float:
    """A uniform number in [0, 1) fixed by `parts`: SHA-256, the same in every process and
    Python version (the built-in hash() is salted per process)."""
    digest = hashlib.sha256(json.dumps(parts).encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2**53  # 53 bits: every value a float holds exactly


def arm_for(visitor_id: str, experiment: Experiment | None) -> str:
    """The model `visitor_id` is shown in `experiment` (DEFAULT_ARM when there is none).
    Arms take slices of [0, 1) in their listed order, each as wide as its share of the weights."""
    if experiment is None:
        return DEFAULT_ARM
    arms = arms_validate(experiment.arms)
    point = unit_hash(experiment.name, visitor_id) * sum(arm.weight for arm in arms)
    for arm in arms:
        point -= arm.weight
        if point < 0:
            return arm.model
    return arms[-1].model  # float rounding at the very top of the range


def visitor_arm(visitor_id: str) -> str:
    """The model of the home page's "Recommended for you" row for this visitor, now."""
    return arm_for(visitor_id, running_experiment())


# --- impression tokens ----------------------------------------------------------------


class TokenRejected(ValueError):
    """The impression token is not one this site signed for this visitor: answer 400."""


@dataclass(frozen=True)
class ShownList:
    """What a page showed one visitor, as its signed token says."""

    impression_id: str
    visitor: str
    model: str
    model_version: str | None
    page: str
    movie_ids: list[int]
    at: str  # when the page was rendered, TS_FORMAT

    @property
    def rendered_at(self) -> datetime:
        return datetime.strptime(self.at, TS_FORMAT).replace(tzinfo=UTC)


def impression_token(*, visitor: str, model: str, model_version: str | None, page: str,
                     movie_ids: list[int]) -> tuple[str, str]:
    """(impression id, signed token) for a list a page is about to show; records nothing.
    The page puts both on the list's <ul> (data-impression, data-impression-token)."""
    if page not in PAGES or model not in settings.RECOMMENDATION_MODELS:
        raise ValueError(f"impression_token: page must be one of {PAGES} and model a recommender")
    impression_id = str(uuid.uuid4())
    payload = {"id": impression_id, "visitor": visitor, "model": model, "model_version": model_version,
               "page": page, "movie_ids": [int(m) for m in movie_ids],
               "at": datetime.now(UTC).strftime(TS_FORMAT)}
    return impression_id, signing.dumps(payload, salt=TOKEN_SALT)


def impression_token_read(token, *, visitor: str) -> ShownList:
    """The list a token describes, if this site signed it for `visitor` within TOKEN_MAX_AGE_S."""
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
        raise TokenRejected("'token' must be the list's impression token")
    try:
        payload = signing.loads(token, salt=TOKEN_SALT, max_age=TOKEN_MAX_AGE_S)
    except signing.SignatureExpired:
        raise TokenRejected("the impression token has expired") from None
    except (signing.BadSignature, ValueError):  # tampered, forged, or not a token at all
        raise TokenRejected("the impression token is not valid") from None
    if payload["visitor"] != visitor:
        raise TokenRejected("the impression token belongs to another visitor")
    return ShownList(impression_id=payload["id"], visitor=visitor, model=payload["model"],
                     model_version=payload["model_version"], page=payload["page"],
                     movie_ids=payload["movie_ids"], at=payload["at"])


# --- statistics (pure) ----------------------------------------------------------------


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


# --- CTR of an experiment -------------------------------------------------------------


@dataclass(frozen=True)
class ArmCTR:
    model: str
    impressions: int
    clicks: int  # impressions clicked at least once: CTR is a proportion of impressions
    ctr: float
    low: float  # 95% Wilson interval
    high: float


@dataclass(frozen=True)
class VersionCTR:
    model: str
    model_version: str | None
    impressions: int
    clicks: int
    ctr: float
    low: float
    high: float


@dataclass(frozen=True)
class PositionCTR:
    model: str
    position: int  # from 1, the first poster of the list
    impressions: int  # lists that had a poster at this position
    clicks: int  # of those, how many had that poster clicked
    ctr: float


@dataclass(frozen=True)
class Comparison:
    model: str
    best: str
    z: float | None  # None: one of the two arms has no impressions yet
    p: float | None
    significant: bool


def _ctr(clicks: int, impressions: int) -> tuple[float, float, float]:
    return (clicks / impressions if impressions else 0.0, *wilson_interval(clicks, impressions))


def experiment_impressions(experiment: Experiment):
    """The experiment's impressions: its page, its arms' models, rendered while it ran."""
    models = [arm.model for arm in arms_validate(experiment.arms)]
    shown = Impression.objects.filter(page=EXPERIMENT_PAGE, model__in=models,
                                      created_at__gte=experiment.started_at)
    if experiment.stopped_at is not None:
        shown = shown.filter(created_at__lt=experiment.stopped_at)
    return shown


def _counts(experiment: Experiment, *fields: str) -> tuple[dict, dict]:
    """(impressions, clicked impressions) grouped by `fields` of Impression."""
    shown = experiment_impressions(experiment)
    totals = {tuple(row[f] for f in fields): row["n"]
              for row in shown.values(*fields).annotate(n=Count("id"))}
    clicked = (shown.filter(clicks__kind=Interaction.Kind.CLICK).values(*fields)
               .annotate(n=Count("id", distinct=True)))
    return totals, {tuple(row[f] for f in fields): row["n"] for row in clicked}


def arm_ctr(experiment: Experiment) -> list[ArmCTR]:
    """Per arm, in the experiment's order: impressions, clicked impressions, CTR and its 95%
    interval. An arm with no impressions yet has CTR 0 and the interval (0, 1)."""
    totals, clicked = _counts(experiment, "model")
    rows = []
    for arm in arms_validate(experiment.arms):
        shown, clicks = totals.get((arm.model,), 0), clicked.get((arm.model,), 0)
        rows.append(ArmCTR(arm.model, shown, clicks, *_ctr(clicks, shown)))
    return rows


def version_ctr(experiment: Experiment) -> list[VersionCTR]:
    """Like `arm_ctr`, split by the model version that made each list (a retrain mid-experiment
    shows as two rows)."""
    totals, clicked = _counts(experiment, "model", "model_version")
    return [VersionCTR(model, version, shown, clicked.get((model, version), 0),
                       *_ctr(clicked.get((model, version), 0), shown))
            for (model, version), shown in sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))]


def position_ctr(experiment: Experiment) -> list[PositionCTR]:
    """CTR@position per arm: of the lists with a poster at position p, the share whose poster
    at p was clicked. Positions come from the server's record of the list, not the browser."""
    shown = experiment_impressions(experiment)
    sizes: dict[str, dict[int, int]] = defaultdict(dict)
    for row in shown.values("model", "size").annotate(n=Count("id")):
        sizes[row["model"]][row["size"]] = row["n"]
    clicked = {
        (row["impression__model"], row["position"]): row["n"]
        for row in Interaction.objects.filter(impression__in=shown, kind=Interaction.Kind.CLICK)
        .values("impression__model", "position").annotate(n=Count("impression", distinct=True))
    }
    rows = []
    for arm in arms_validate(experiment.arms):
        by_size = sizes.get(arm.model, {})
        for position in range(1, max(by_size, default=0) + 1):
            lists = sum(n for size, n in by_size.items() if size >= position)
            clicks = clicked.get((arm.model, position), 0)
            rows.append(PositionCTR(arm.model, position, lists, clicks, clicks / lists if lists else 0.0))
    return rows


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
