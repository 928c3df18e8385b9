"""Plot recall@20 against wall-clock time from `pytorch_models.train` logs (not a test).

    python -m pytorch_models.train --dataset gowalla --data-dir ../shared/data/gowalla \
        --model lightgcn --epochs 1000 --time-budget 3600 --eval-every 5 --no-progress \
        --out var/bench/lightgcn 2> var/bench/lightgcn.log
    python -m benchmarks.plot_recall_vs_time var/bench/lightgcn.log var/bench/ngcf.log \
        var/bench/pinsage.log --out docs/gowalla_recall_vs_time.png

Time runs from the log's first line (written once the data files are read); each point is one
`epoch N metrics {...}` line the trainer logs every --eval-every epochs.
"""

from __future__ import annotations

import argparse
import ast
import re
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
# Periodic evaluations ("epoch N metrics {...}") and the final one ("trained in Ns: {...}").
METRICS = re.compile(r"(?:epoch (\d+) metrics|trained in [\d.]+s:) (\{.*\})")
# Full-ranking recall@20 / ndcg@20 on the Gowalla split of the NGCF and LightGCN papers. PinSage
# has no paper figure on it; BARS (the open benchmark) lists .1380 / .1196.
PUBLISHED = {
    "graphfilter": ("BSPM paper", 0.1920, 0.1597),
    "graphfilter-blend": ("ChebyCF paper", 0.1941, 0.1616),
    "lightgcn": ("LightGCN paper", 0.1830, 0.1554),
    "lightgcn-256": ("LightGCN paper", 0.1830, 0.1554),
    "ngcf": ("NGCF paper", 0.1570, 0.1327),
    "pinsage": ("BARS", 0.1380, 0.1196),
    "graphfilter+lightgcn": ("issue 10's goal", 0.1930, 0.1620),
}
# Issue 3's 60-minute bars.
BARS = {"lightgcn": 0.170, "ngcf": 0.150, "pinsage": 0.120}


def points(log: Path) -> list[tuple[float, str, dict]]:
    """(elapsed seconds, epoch label, metrics) for each evaluation in one training log."""
    start, found = None, []
    for line in log.read_text().splitlines():
        stamp = STAMP.match(line)
        if not stamp:
            continue
        at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f")
        start = start or at
        if metrics := METRICS.search(line):
            epoch = f"epoch {int(metrics.group(1)) + 1}" if metrics.group(1) else "final"
            found.append(((at - start).total_seconds(), epoch, ast.literal_eval(metrics.group(2))))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path,
                        help="training logs; the stem before the first '-' names the panel (model)")
    parser.add_argument("--metric", default="recall@20")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    panels: dict[str, list[Path]] = {}
    for log in args.logs:  # "lightgcn-constant-lr.log" joins the "lightgcn" panel
        panels.setdefault(log.stem.split("-")[0], []).append(log)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4), squeeze=False)
    for ax, (model, logs) in zip(axes[0], panels.items(), strict=True):
        for log in logs:
            series = points(log)
            minutes = [s / 60 for s, _, _ in series]
            ax.plot(minutes, [m[args.metric] for _, _, m in series], marker="o", markersize=3, label=log.stem)
            for seconds, epoch, metrics in series:
                print(f"{log.stem}\t{epoch}\t{seconds / 60:.1f} min\t"
                      f"{args.metric} {metrics[args.metric]:.4f}")
        if model in PUBLISHED:
            label, value, _ = PUBLISHED[model]
            ax.axhline(value, linestyle="--", linewidth=1, color="grey", label=f"{label} {value:.3f}")
        if model in BARS and args.metric == "recall@20":
            ax.axhline(BARS[model], linestyle=":", linewidth=1.2, color="tab:red",
                       label=f"60-min bar {BARS[model]:.3f}")
        ax.axvline(60, linewidth=0.8, color="black", alpha=0.3)
        ax.set_title(model)
        ax.set_xlabel("wall-clock minutes (evaluations included)")
        ax.set_ylabel(args.metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Gowalla, full ranking: {args.metric} against training time on the 2-core machine")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)


if __name__ == "__main__":
    main()
