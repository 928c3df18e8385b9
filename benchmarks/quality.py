"""Quality on the yardstick: every model trained within a wall-clock budget, recall@20 against minutes.

    python -m benchmarks.quality --dataset gowalla --budget-minutes 60 \
        [--data-dir ../shared/data/gowalla] \
        [--models graphfilter,graphfilter-blend,lightgcn,ngcf,pinsage,lightgcn-256,graphfilter+lightgcn] \
        [--parallel 2] [--out var/quality]

Each model is one `python -m pytorch_models.train` run with the settings of docs/benchmarks.md
(SETTINGS below; on movielens, the site's settings), its log and checkpoint under --out.
`graphfilter-blend` is the graph filter with ChebyCF blended in (`--filter cheby_weight=0.5`);
`lightgcn-256` is LightGCN with 256-wide embeddings (Gowalla only); it and NGCF train on hard
negatives (`--negative-candidates 16`). On Gowalla the default list takes about three hours
and a quarter: the filter, then three hour-long stages (the blend's parts side by side, NGCF
beside LightGCN at 256, then PinSage alone on both cores).
`graphfilter+lightgcn` trains nothing of its own: it ranks with the z-scores of those two
checkpoints, half each (`pytorch_models.evaluation.blend`). Its two parts run side by side, one core each,
LightGCN's budget cut by BLEND_EVAL_S so that the parts and the blend's evaluation fit in the
budget; its minutes are the longer part's plus the evaluation's.
The other graph filter runs first, alone, with both cores (it needs minutes, not an hour);
then the GNNs, `--parallel` at a time with one torch thread each, so no run has more than
the machine's two cores, and last (on Gowalla) those in BOTH_CORES, alone. A GNN run stops
after the epoch that crosses its budget less MARGIN_S (room for the last epoch and the final
evaluation).

Prints the table (model, recall@20, ndcg@20, minutes, epochs, the published figure), writes
it to quality.md and a PNG of recall@20 against wall-clock minutes with the published figures
drawn as horizontal lines, and prints, as its last line, one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.plot_recall_vs_time import PUBLISHED, points  # noqa: E402
from predictors.versions import SITE_OPTIONS  # noqa: E402

# The best training settings found so far within the hour (docs/benchmarks.md says how).
# NGCF and LightGCN at 256 train BPR on the highest-scoring of 16 uniform negatives per pair
# (LightGCN at 256 with L2 3e-3: 0.1823 at 1e-4, then 1e-3 < 3e-3 in docs/benchmarks.md, "Hard
# negatives"); `lightgcn`, the blend's part, on uniform ones, as the blend was measured.
SETTINGS = {
    "graphfilter": [],  # the paper's Gowalla settings are GraphFilterConfig's defaults
    "graphfilter-blend": [],
    "lightgcn": ["--batch-size", "8192", "--dim", "64", "--layers", "3", "--lr", "1e-2",
                 "--lr-schedule", "cosine", "--init", "spectral"],
    "ngcf": ["--batch-size", "8192", "--dim", "64", "--layers", "3", "--lr", "5e-3", "--l2", "1e-3",
             "--lr-schedule", "cosine", "--init", "spectral", "--negative-candidates", "16"],
    "pinsage": ["--batch-size", "8192", "--dim", "64", "--layers", "2", "--lr", "1e-2",
                "--lr-schedule", "cosine", "--neighbourhoods", "cached", "--shared-negatives", "500",
                "--negative-power", "0", "--workers", "1", "--init", "spectral"],
    # LightGCN's best figure within the hour comes with 256-wide embeddings (the paper's at 64).
    "lightgcn-256": ["--batch-size", "8192", "--dim", "256", "--layers", "3", "--lr", "1e-2", "--l2", "3e-3",
                     "--lr-schedule", "cosine", "--init", "spectral", "--negative-candidates", "16"],
}
# Seconds of an epoch on one thread beside another run at those settings (docs/benchmarks.md;
# PinSage's on two threads alone), to space out the evaluations (about ten per run) and to
# leave the last epoch room inside the budget (LightGCN at 256: its 40 s SVD, a last epoch of
# up to 268 s and two evaluations of 21 s).
EPOCH_S = {"lightgcn": 25.0, "lightgcn-256": 261.0, "ngcf": 91.0, "pinsage": 40.0}
MARGIN_S = {"lightgcn": 30.0, "lightgcn-256": 420.0, "ngcf": 180.0, "pinsage": 180.0}
# Gowalla runs that get both cores to themselves, after the others, as their figures within
# the hour were measured (PinSage: an epoch on two threads takes 40 s against 56 s on one).
BOTH_CORES = {"pinsage"}
# Runs that are a model with other options: run name -> (model, options on every dataset).
VARIANTS = {"graphfilter-blend": ("graphfilter", ["--filter", "cheby_weight=0.5"]),
            "lightgcn-256": ("lightgcn", [])}
# Blends of finished runs: name -> (runs, weights). Equal weights, fixed before any test figure.
BLENDS = {"graphfilter+lightgcn": (("graphfilter-blend", "lightgcn"), (0.5, 0.5))}
# The blend's evaluation: scoring every user with both models, on both cores (~5 min on Gowalla).
BLEND_EVAL_S = 570.0


DEFAULT_MODELS = "graphfilter,graphfilter-blend,lightgcn,ngcf,pinsage,lightgcn-256,graphfilter+lightgcn"


def command(run: str, args: argparse.Namespace, out: Path) -> list[str]:
    model, options = VARIANTS.get(run, (run, []))
    cmd = [sys.executable, "-m", "pytorch_models.train", "--dataset", args.dataset,
           "--data-dir", args.data_dir, "--model", model, "--no-progress", "--out", str(out / run), *options]
    if args.dataset == "movielens":  # the site's data and settings, evaluated every epoch
        return [*cmd, "--eval-every", "1",
                *(f"--filter={k}={v}" for k, v in SITE_OPTIONS.get(model, {}).items())]
    cmd += SETTINGS[run]
    if run in EPOCH_S:
        budget = args.budget_minutes * 60 - (BLEND_EVAL_S if any(run in BLENDS[b][0] for b in args.blends)
                                             else 0)
        every = max(1, round(budget / 10 / EPOCH_S[run]))
        cmd += ["--epochs", "100000", "--time-budget", str(max(budget - MARGIN_S[run], 1.0)),
                "--eval-every", str(every)]
    return cmd


def run_all(models: list[str], args: argparse.Namespace, out: Path) -> dict[str, dict]:
    """Start the runs (the filter alone first, then a blend's parts side by side, then the GNNs
    `parallel` at a time, then BOTH_CORES's alone); model -> final JSON."""
    paired = [run for blend in args.blends for run in BLENDS[blend][0] if run in models]
    alone = [m for m in models if m not in EPOCH_S and m not in paired]
    gnns = [m for m in models if m in EPOCH_S and m not in paired]
    by_itself = [m for m in gnns if args.dataset == "gowalla" and m in BOTH_CORES]
    shared = [m for m in gnns if m not in by_itself]
    queue = ([[m] for m in alone] + ([paired] if paired else [])
             + [shared[i : i + args.parallel] for i in range(0, len(shared), args.parallel)]
             + [[m] for m in by_itself])
    results = {}
    for group in queue:
        # Other Gowalla GNNs get one thread even alone: their budgets and figures were measured so.
        gowalla_gnn = args.dataset == "gowalla" and group[0] in EPOCH_S and group[0] not in BOTH_CORES
        threads = "2" if len(group) == 1 and not gowalla_gnn else "1"
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        running = []
        for model in group:
            log = (out / f"{model}.log").open("w")
            print(f"started {model} ({threads} thread(s)): log {out / f'{model}.log'}", flush=True)
            running.append((model, log, subprocess.Popen(command(model, args, out), env=env,
                                                         stdout=subprocess.PIPE, stderr=log, text=True)))
        for model, log, proc in running:
            stdout, _ = proc.communicate()
            log.close()
            if proc.returncode != 0:
                raise SystemExit(f"{model} failed (exit {proc.returncode}); see {out / f'{model}.log'}")
            results[model] = json.loads(stdout.strip().splitlines()[-1])
    return results


def evaluate_blend(blend: str, args: argparse.Namespace, out: Path) -> tuple[dict, float]:
    """(final JSON, seconds) of `python -m pytorch_models.evaluate` on the blend's checkpoints."""
    runs, weights = BLENDS[blend]
    cmd = [sys.executable, "-m", "pytorch_models.evaluate", "--dataset", args.dataset,
           "--data-dir", args.data_dir, *(arg for run in runs for arg in ("--checkpoint", str(out / run))),
           "--weights", *map(str, weights)]
    print(f"evaluating {blend}: {' + '.join(runs)}", flush=True)
    started = time.monotonic()
    with (out / f"{blend}.log").open("w") as log:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=log, text=True,
                              env={**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"})
    if proc.returncode != 0:
        raise SystemExit(f"{blend} failed (exit {proc.returncode}); see {out / f'{blend}.log'}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.monotonic() - started


def table(rows: list[dict], dataset: str) -> str:
    lines = ["| model | recall@20 | ndcg@20 | wall-clock min | epochs | published (or goal) recall / ndcg |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        name, recall, ndcg = (PUBLISHED.get(r["model"], ("", None, None)) if dataset == "gowalla"
                              else ("", None, None))
        published = f"{recall:.4f} / {ndcg:.4f} ({name})" if recall else ""
        lines.append(f"| {r['model']} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {r['minutes']:.2f} | "
                     f"{r['epochs']} | {published} |")
    return "\n".join(lines)


def plot(curves: dict[str, list[tuple[float, float]]], budget_minutes: float, path: Path,
         dataset: str) -> None:
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, (model, series) in enumerate(curves.items()):
        colour = f"C{i}"
        one_point = len(series) == 1  # the graph filter: no training curve, one evaluation
        ax.plot([m for m, _ in series], [r for _, r in series], marker="*" if one_point else "o",
                markersize=12 if one_point else 3, color=colour, label=model)
        if model in PUBLISHED and dataset == "gowalla":
            name, recall, _ = PUBLISHED[model]
            ax.axhline(recall, linestyle="--", linewidth=1, color=colour, alpha=0.7,
                       label=f"{name} {recall:.4f}")
    if dataset == "gowalla":  # on movielens the models run to their default epochs, not a budget
        ax.axvline(budget_minutes, linewidth=0.8, color="black", alpha=0.3)
    ax.set_xlabel("wall-clock minutes (data loading, SVD and evaluations included)")
    ax.set_ylabel("recall@20 (full ranking)")
    ax.set_title(f"{dataset}: recall@20 against wall-clock minutes on this machine")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("gowalla", "movielens"), default="gowalla")
    parser.add_argument("--data-dir", help="default: ../shared/data/gowalla or data/ml-latest-small")
    parser.add_argument("--budget-minutes", type=float, default=60.0, help="wall clock per GNN run")
    parser.add_argument("--models", help=f"default: {DEFAULT_MODELS} (lightgcn-256 on gowalla only)")
    parser.add_argument("--parallel", type=int, default=2, help="GNN runs at once, one torch thread each")
    parser.add_argument("--out", default="var/quality")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir or ("../shared/data/gowalla" if args.dataset == "gowalla"
                                      else "data/ml-latest-small")
    models = args.models or (DEFAULT_MODELS if args.dataset == "gowalla"
                             else DEFAULT_MODELS.replace("lightgcn-256,", ""))
    requested = [m.strip() for m in models.split(",") if m.strip()]
    unknown = sorted(set(requested) - set(SETTINGS) - set(BLENDS))
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {sorted(SETTINGS) + sorted(BLENDS)}")
    args.blends = [m for m in requested if m in BLENDS]
    # A blend's parts run even when not asked for on their own.
    models = list(dict.fromkeys([*(m for m in requested if m not in BLENDS),
                                 *(run for blend in args.blends for run in BLENDS[blend][0])]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    finals = run_all(models, args, out)
    rows, curves = [], {}
    for model in models:
        series = points(out / f"{model}.log")  # (seconds since the log's first line, epoch, metrics)
        curves[model] = [(seconds / 60, m["recall@20"]) for seconds, _, m in series]
        rows.append({"model": model, "recall@20": finals[model]["recall@20"],
                     "ndcg@20": finals[model]["ndcg@20"],
                     "minutes": series[-1][0] / 60 if series else float("nan"),
                     "epochs": finals[model]["epochs_run"]})
    for blend in args.blends:
        final, seconds = evaluate_blend(blend, args, out)
        parts = [row["minutes"] for row in rows if row["model"] in BLENDS[blend][0]]
        minutes = max(parts) + seconds / 60
        curves[blend] = [(minutes, final["recall@20"])]
        rows.append({"model": blend, "recall@20": final["recall@20"], "ndcg@20": final["ndcg@20"],
                     "minutes": minutes, "epochs": 0})
    text = table(rows, args.dataset)
    (out / "quality.md").write_text(text + "\n")
    plot(curves, args.budget_minutes, out / "quality.png", args.dataset)
    print(text)
    print(f"table {out / 'quality.md'}, plot {out / 'quality.png'}, "
          f"{(time.monotonic() - started) / 60:.1f} min in all")
    print(json.dumps({"dataset": args.dataset, "budget_minutes": args.budget_minutes,
                      "parallel": args.parallel,
                      "models": {r["model"]: {k: v for k, v in r.items() if k != "model"} for r in rows},
                      "curves": curves}))


if __name__ == "__main__":
    main()
