"""A scheduled retrain's time at each size of `benchmarks.scale` (issue 24, items 4 and 6).

    python -m benchmarks.retrain_scale [--sizes small 5m 25m] [--work /tmp/cinegraph-scale]
                                       [--threads N]

Per size, on what `python -m benchmarks.scale` left behind: its database cg_scale_<size> (the
release and the clicks of its click_load's visitors, the new data a retrain folds in) and a
fresh copy of its MODEL_DIR (the live versions a retrain warm-starts from and is gated
against; the copy keeps the scale run's folder as it was). `python -m workers.retrain` runs
there as beat's retrain would: the settings' RETRAIN_BUDGET_S per model, replay sample and
gate, RETRAIN_THREADS cores unless --threads says otherwise, and a Redis of its own for the
lock. Measured: its wall time, CPU and peak memory (the child's, from the kernel), and per
model whether it published, why not, and recall@20 of the new version against the live one
(held-out users, a seeded sample of `predictors.versions.EVAL_USERS` past that many).

Goal (issue 24): at 25M ratings, a retrain of every model inside 15 minutes, each new version's
recall@20 not below the live version's (`goals` says how the closed-form models are judged).
Prints a table per size and the calibration loop; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.pages import calibration_ms
from benchmarks.scale_stack import SIZES
from benchmarks.soak_stack import ROOT
from devstack.services import RedisServer
from predictors.versions import RECALL_TOLERANCE
from pytorch_models.models.names import GRADIENT_TRAINED_MODELS

GOAL_S = 15 * 60
SLOWER = 1.5


def model_dir_of(work: Path, size: str, seed: int) -> Path:
    """The MODEL_DIR `benchmarks.scale` fitted for the size (`scale_stack.size_prepare`)."""
    return work / (f"models-{size}" if SIZES[size] is None else f"models-{size}-seed{seed}")


def retrain_once(size: str, args: argparse.Namespace, redis_url: str) -> dict:
    source = model_dir_of(args.work, size, args.seed)
    if not source.is_dir():
        raise SystemExit(f"no {source}: run python -m benchmarks.scale --sizes {size} first")
    models = args.work / f"retrain-{size}"
    shutil.rmtree(models, ignore_errors=True)
    shutil.copytree(source, models)
    env = {**os.environ, "DATABASE_URL": f"{args.server.rstrip('/')}/cg_scale_{size}",
           "MODEL_DIR": str(models), "REDIS_URL": redis_url, "BROKER_REDIS_URL": redis_url,
           "DJANGO_SETTINGS_MODULE": "webapp.settings"}
    if args.threads:
        env["RETRAIN_THREADS"] = str(args.threads)
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "workers.retrain"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, text=True)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"workers.retrain on {size} exited {os.waitstatus_to_exitcode(status)}")
    results = json.loads(out.strip().splitlines()[-1])
    return {"size": size, "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_mb": round(usage.ru_maxrss / 1024), "models": results,
            "threads": args.threads or "RETRAIN_THREADS"}


def row_print(row: dict) -> None:
    print(f"\n== {row['size']}: retrain {row['wall_s']:.0f} s wall ({row['wall_s'] / 60:.1f} min), "
          f"{row['cpu_s']:.0f} s CPU, peak {row['peak_mb']} MB, threads {row['threads']}")
    print(f"{'model':<13}{'published':>10}{'live recall':>13}{'new recall':>12}  reason")
    for model, result in row["models"].items():
        def figure(value):
            return f"{value:.4f}" if isinstance(value, float) else "-"
        print(f"{model:<13}{'yes' if result['published'] else 'no':>10}{figure(result['live_recall']):>13}"
              f"{figure(result['recall']):>12}  {result['reason'] or ''}")


def goals(row: dict) -> dict[str, bool]:
    """The time goal, and recall against the live version: not below it for the models a
    retrain trains further (warm-started), and within the gate's tolerance for those it refits
    in closed form, whose recall moves only with the data (the visitors' clicks added)."""
    judged = {m: r for m, r in row["models"].items()
              if r["recall"] is not None and r["live_recall"] is not None}
    trained = [r for m, r in judged.items() if m in GRADIENT_TRAINED_MODELS]
    refitted = [r for m, r in judged.items() if m not in GRADIENT_TRAINED_MODELS]
    return {f"retrain_le_{GOAL_S // 60}min": row["wall_s"] <= GOAL_S,
            "trained_recall_not_below_live": all(r["recall"] >= r["live_recall"] for r in trained),
            "refitted_recall_within_gate": all(r["recall"] >= (1 - RECALL_TOLERANCE) * r["live_recall"]
                                               for r in refitted)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=tuple(SIZES), default=["small", "5m", "25m"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/cinegraph-scale"),
                        help="benchmarks.scale's --work")
    parser.add_argument("--server", default="mysql://root@127.0.0.1:3306", help="benchmarks.scale's --server")
    parser.add_argument("--seed", type=int, default=0, help="benchmarks.scale's --seed")
    parser.add_argument("--threads", type=int,
                        help="RETRAIN_THREADS for the retrain (default: the settings')")
    args = parser.parse_args()
    calibration = calibration_ms()
    rows = []
    redis = RedisServer(log_dir=ROOT / "var" / "log").start()
    try:
        for size in sorted(dict.fromkeys(args.sizes), key=list(SIZES).index):
            row = retrain_once(size, args, redis.url)
            row["goals"] = goals(row)
            row_print(row)
            rows.append(row)
    finally:
        redis.stop()
    largest = rows[-1]
    print(f"\ncalibration: a fixed pure-Python loop took {calibration:.1f} ms. On a host {SLOWER:g}x "
          f"slower the retrain at {largest['size']} would take about "
          f"{SLOWER * largest['wall_s'] / 60:.1f} min "
          f"(the budget's {GOAL_S // 60} min goal judged at the largest size: "
          + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in largest["goals"].items()) + ")")
    print(json.dumps({"calibration_ms": round(calibration, 1), "sizes": rows, "goals_at": largest["size"],
                      "goals": largest["goals"]}))


if __name__ == "__main__":
    main()
