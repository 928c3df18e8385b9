"""Reads of the experiments: the running one, and CTR per arm, per model version and per
position, from the `Impression` mirror and the clicks credited to it (`Interaction.impression`),
with Wilson intervals (`statistics`).

Only the home page's "Recommended for you" row (page EXPERIMENT_PAGE) shows the visitor's arm,
so only its impressions count for an experiment: the per-model pages show the model the
visitor chose, and the "Popular now" row is the same list whatever the arm.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db.models import Count, Q
from django.utils import timezone as django_timezone

from movie.experiments.arms import arm_for, arms_validate
from movie.experiments.models import Experiment
from movie.experiments.statistics import wilson_interval
from movie.tracking.models import Impression, Interaction

EXPERIMENT_PAGE = "home"


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


def visitor_arm(visitor_id: str) -> str:
    """The model of the home page's "Recommended for you" row for this visitor, now."""
    return arm_for(visitor_id, running_experiment())


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
