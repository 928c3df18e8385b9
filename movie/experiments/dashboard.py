"""The staff dashboard: which version of each model is live and how it was measured, which
model visitors click, and how fast a click reaches their recommendations.

What each panel reads (all of it read-only):
- versions, offline metrics, training curves: every kept version's meta.json
  (`predictors.registry.version_meta`, a few KB each whatever the number of visitors),
  written by `pytorch_models.train.publish`; the registry keeps MODEL_VERSIONS_KEPT per model;
- CTR per arm: `movie.experiments.selectors` (the `Impression` mirror and the clicks credited to it);
- latency: the live workers' timings in Redis (`livepath.latency`, read through `eventstore.live`).
Charts are PNGs drawn by `movie.experiments.charts`, each at its own URL. A version's charts never change
once it is published, so they are drawn once per process and cached by the browser; the CTR
and latency charts are drawn on every request.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from redis.exceptions import RedisError

from eventstore.live import latency_last_hour
from movie.experiments import selectors
from movie.experiments.models import Experiment
from predictors import registry

OFFLINE_METRICS = ("recall@20", "ndcg@20", "hit@20")
CURVE_METRIC = "recall@20"
# Drawing a version's chart takes 0.1-0.5 s; 128 (model, version, chart) PNGs of ~30 KB are
# 4 MB per process at most.
CACHED_CHARTS = 128


def staff_only(view):
    """Anonymous visitors go to the log-in page (and come back); signed-in non-staff get 403."""
    @functools.wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("the dashboard is for staff")
        return view(request, *args, **kwargs)
    return guarded


# --- what the panels read ------------------------------------------------------------


@dataclass(frozen=True)
class VersionRow:
    version: str
    published_at: datetime | None
    live: bool
    metrics: tuple[float | None, ...]  # OFFLINE_METRICS, in order (None: not measured)
    epochs: int
    has_curve: bool  # False: trained before meta.json kept a history
    source: str | None  # "catalogue" (manage.py train) or "catalogue+visitors" (scheduled retrain)


@dataclass(frozen=True)
class ModelPanel:
    model: str
    live: VersionRow | None
    versions: list[VersionRow]  # newest first


def _version_row(version: str, meta: dict, live: str | None) -> VersionRow:
    metrics = meta.get("metrics", {})
    return VersionRow(
        version=version,
        published_at=registry.version_time(version),
        live=version == live,
        metrics=tuple(metrics.get(name) for name in OFFLINE_METRICS),
        epochs=len(meta.get("losses", [])),
        has_curve=bool(meta.get("history")),
        source=meta.get("data", {}).get("source"),
    )


def _kept_metas(model: str, versions) -> dict[str, dict]:
    """version -> meta.json of those still on disk: the registry removes old versions
    (`registry.versions_prune`), possibly between the listing and the read."""
    metas = {}
    for version in versions:
        try:
            metas[version] = registry.version_meta(model, version)
        except FileNotFoundError:
            continue
    return metas


def model_panels() -> list[ModelPanel]:
    """Per recommender: its live version (the newest) and every kept version, newest first
    (settings.MODEL_VERSIONS_KEPT, with those in their grace period)."""
    panels = []
    for model in settings.RECOMMENDATION_MODELS:
        published = registry.versions(model)
        live = published[-1] if published else None
        metas = _kept_metas(model, reversed(published))
        rows = [_version_row(version, meta, live) for version, meta in metas.items()]
        panels.append(ModelPanel(model, rows[0] if rows and rows[0].live else None, rows))
    return panels


@dataclass(frozen=True)
class CTRPanel:
    experiment: Experiment | None  # whose figures these are: the running one, else the newest
    running: bool
    arms: list[selectors.ArmCTR]
    versions: list[selectors.VersionCTR]


def ctr_panel() -> CTRPanel:
    """The running experiment's CTR per arm and per model version; with none running, the
    newest experiment's (marked as not running), or nothing when there has never been one."""
    experiment = selectors.running_experiment()
    running = experiment is not None
    if experiment is None:
        names = selectors.experiment_names()
        experiment = selectors.experiment_get(names[0]) if names else None
    if experiment is None:
        return CTRPanel(None, False, [], [])
    return CTRPanel(experiment, running, selectors.arm_ctr(experiment), selectors.version_ctr(experiment))


@dataclass(frozen=True)
class LatencyPanel:
    available: bool  # False: Redis did not answer
    count: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


def latency_panel() -> LatencyPanel:
    try:
        summary, _ = latency_last_hour()
    except RedisError:
        return LatencyPanel(available=False)
    return LatencyPanel(True, summary.count, _ms(summary.p50), _ms(summary.p95))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


# --- views ---------------------------------------------------------------------------


@staff_only
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "experiments/dashboard.html",
                  {"models": model_panels(), "metric_names": OFFLINE_METRICS, "ctr": ctr_panel(),
                   "latency": latency_panel()})


def _png(body: bytes, *, cache: str) -> HttpResponse:
    response = HttpResponse(body, content_type="image/png")
    response["Cache-Control"] = cache
    return response


@functools.lru_cache(maxsize=CACHED_CHARTS)
def _version_chart(folder: str, model: str, version: str, name: str) -> bytes:
    """A version's chart; `folder` (the model directory) keys the cache with the rest."""
    from movie.experiments import charts  # matplotlib takes ~1 s to import: only processes that draw pay it

    if name == "curves":
        return charts.training_curves(registry.version_meta(model, version).get("history", []),
                                      metric=CURVE_METRIC)
    # The versions up to this one: what the chart shows while this one is live, and after.
    shown = _kept_metas(model, [v for v in registry.versions(model) if v <= version])
    metas = [meta.get("metrics", {}) for meta in shown.values()]
    return charts.metrics_by_version([_label(v) for v in shown],
                                     {m: [meta.get(m) for meta in metas] for m in OFFLINE_METRICS})


def _label(version: str) -> str:
    published_at = registry.version_time(version)
    return published_at.strftime("%m-%d %H:%M:%S") if published_at else version


@staff_only
def version_chart(request: HttpRequest, model: str, version: str, name: str) -> HttpResponse:
    """`curves`: the version's loss and recall per epoch; `metrics`: held-out metrics of every
    version up to it. Both fixed once the version is published."""
    if model not in settings.RECOMMENDATION_MODELS or version not in registry.versions(model):
        raise Http404("no such model version")
    try:
        body = _version_chart(str(registry.model_dir()), model, version, name)
    except FileNotFoundError:  # removed since the listing (registry.versions_prune)
        raise Http404("no such model version") from None
    return _png(body, cache="private, max-age=31536000, immutable")


@staff_only
def ctr_chart(request: HttpRequest) -> HttpResponse:
    from movie.experiments import charts

    rows = ctr_panel().arms
    body = charts.ctr_per_arm([r.model for r in rows], [r.ctr for r in rows], [r.low for r in rows],
                              [r.high for r in rows], [r.impressions for r in rows])
    return _png(body, cache="no-store")


@staff_only
def latency_chart(request: HttpRequest) -> HttpResponse:
    from movie.experiments import charts

    try:
        summary, timings = latency_last_hour()
    except RedisError:
        return HttpResponse("latency timings unavailable: Redis did not answer", status=503,
                            content_type="text/plain")
    now = time.time()
    body = charts.latency([(now - at) / 60 for at, _ in timings], [s for _, s in timings],
                          p50=summary.p50, p95=summary.p95)
    return _png(body, cache="no-store")
