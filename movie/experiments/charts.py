"""The staff dashboard's charts as PNG bytes, drawn with matplotlib in the site's colours.

Each chart is a `Figure` on its own Agg canvas: no pyplot, so no global figure state shared
between requests and no display needed. The functions take plain numbers and return bytes;
what to draw comes from `movie.experiments.dashboard`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# app.css: --panel, --text, --muted, --accent; a second series in a blue that reads on dark.
PANEL, TEXT, MUTED, ACCENT, SECOND = "#171a21", "#e8eaf0", "#9aa3b2", "#f5b301", "#60a5fa"
SERIES = (ACCENT, SECOND, "#34d399")
SIZE_IN, DPI = (6.4, 3.0), 100  # 640 x 300 px: two charts side by side on a wide screen


def _figure(columns: int = 1) -> tuple[Figure, list]:
    figure = Figure(figsize=(SIZE_IN[0] * columns, SIZE_IN[1]), dpi=DPI, facecolor=PANEL,
                    layout="constrained")
    axes = [figure.add_subplot(1, columns, i + 1) for i in range(columns)]
    for ax in axes:
        ax.set_facecolor(PANEL)
        ax.tick_params(colors=MUTED)
        ax.grid(color="#262a33", linewidth=0.8)
        ax.set_axisbelow(True)
        for spine in ax.spines.values():
            spine.set_color("#333846")
        ax.title.set_color(TEXT)
        ax.xaxis.label.set_color(MUTED)
        ax.yaxis.label.set_color(MUTED)
    return figure, axes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, color=MUTED, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _titled(title: str):
    """(figure, its one panel) with the panel's title set."""
    figure, (ax,) = _figure()
    ax.set_title(title)
    return figure, ax


def _empty_png(figure: Figure, ax, message: str) -> bytes:
    """The chart with `message` in place of data."""
    _empty(ax, message)
    return _png(figure)


def training_curves(history: Sequence[dict], *, metric: str = "recall@20") -> bytes:
    """Loss per epoch beside the held-out `metric` at the epochs that were evaluated."""
    figure, (loss_ax, metric_ax) = _figure(columns=2)
    loss_ax.set_title("training loss")
    metric_ax.set_title(f"held-out {metric}")
    if not history:
        _empty(loss_ax, "no curve recorded")
        _empty(metric_ax, "no curve recorded")
        return _png(figure)
    loss_ax.plot([e["epoch"] for e in history], [e["loss"] for e in history], color=ACCENT, marker=".")
    for ax in (loss_ax, metric_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    evaluated = [(e["epoch"], e[metric]) for e in history if e.get(metric) is not None]
    if evaluated:
        metric_ax.plot(*zip(*evaluated, strict=True), color=SECOND, marker=".")
    else:
        _empty(metric_ax, "not evaluated during training")
    return _png(figure)


def metrics_by_version(labels: Sequence[str], series: dict[str, Sequence[float | None]]) -> bytes:
    """One line per metric across versions, oldest first (a gap where a version lacks it)."""
    figure, ax = _titled("held-out metrics per version")
    if not labels:
        return _empty_png(figure, ax, "no version published")
    positions = range(len(labels))
    for colour, (name, values) in zip(SERIES, series.items(), strict=False):
        ax.plot(positions, [float("nan") if v is None else v for v in values], color=colour, marker="o",
                label=name)
    ax.set_xticks(list(positions), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.legend(facecolor=PANEL, edgecolor="#333846", labelcolor=TEXT, fontsize=8)
    return _png(figure)


def ctr_per_arm(models: Sequence[str], ctr: Sequence[float], low: Sequence[float], high: Sequence[float],
                impressions: Sequence[int]) -> bytes:
    """Each arm's CTR with its 95% interval as an error bar, its impressions written beside."""
    figure, ax = _titled("CTR per arm, 95% interval")
    if not models:
        return _empty_png(figure, ax, "no arms")
    rows = range(len(models))
    errors = [[c - lo for c, lo in zip(ctr, low, strict=True)],
              [hi - c for c, hi in zip(ctr, high, strict=True)]]
    ax.errorbar(ctr, rows, xerr=errors, fmt="o", color=ACCENT, ecolor=MUTED, capsize=4)
    for row, (c, n) in enumerate(zip(ctr, impressions, strict=True)):
        ax.annotate(f"{c:.1%} of {n:,}", (c, row), textcoords="offset points", xytext=(0, 8), ha="center",
                    color=TEXT, fontsize=8)
    ax.set_yticks(list(rows), models)
    ax.set_ylim(len(models) - 0.4, -0.6)  # the first arm on top
    ax.set_xlim(0, 1)
    ax.set_xlabel("clicked lists / lists shown")
    return _png(figure)


def latency(minutes_ago: Sequence[float], seconds: Sequence[float], *, p50: float | None,
            p95: float | None) -> bytes:
    """Each timing of the last hour as a point, with p50 and p95 as lines."""
    figure, ax = _titled("click → fresh recommendations, last hour")
    if not seconds:
        return _empty_png(figure, ax, "no clicks applied in the last hour")
    ax.scatter(minutes_ago, seconds, s=6, color=SECOND, alpha=0.6)
    for value, name, style in ((p50, "p50", "-"), (p95, "p95", "--")):
        ax.axhline(value, color=ACCENT, linestyle=style, linewidth=1)
        ax.annotate(f"{name} {value:.2f} s", (60, value), xytext=(4, 3), textcoords="offset points",
                    color=TEXT, fontsize=8)
    ax.set_xlim(60.5, -0.5)  # now on the right
    ax.set_ylim(bottom=min(0.0, *seconds))  # below 0: a worker's clock behind the web's
    ax.set_xlabel("minutes ago")
    ax.set_ylabel("seconds")
    return _png(figure)
