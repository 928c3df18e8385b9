"""The graph filter's fit against the graph's size: time and peak memory (issue 24, item 5).

    python -m benchmarks.graphfilter_fit [--sizes gowalla 5m 25m] [--work /tmp/cinegraph-scale]

Per size, the train split of `benchmarks.train_scale` (Gowalla's, or a generated release split
80/20 per user), then what `training.graphfilter.train_graphfilter` fits with the site's
config, each step timed: `model.fit` (R̃, its truncated SVD: the filter's factors and the
serving eigenvectors in one) and `spectral.fit_spectral` (the serving tables: the sharpened ideal
term and, below `spectral.TAIL_MAX_FLOPS`, the tail). How exact the SVD is, whichever solver
`linalg.top_singular` chose: the largest relative residual ‖R̃ᵀR̃v − σ²v‖ / σ² over the
filter's factors (its first `factor_dim` vectors) and over every vector it found. Each size
runs in a process of its own, whose peak resident memory is read from the kernel (ru_maxrss)
before that check. The evaluation of every user against every movie that `train_model` adds is
not part of the fit and is not run.

Goal (issue 24): at 25M ratings the fit takes at most 20 minutes and 8 GB on two cores. Prints a
table and the calibration loop; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_models  # noqa: F401  (sets DGLBACKEND before dgl loads)
from benchmarks.pages import calibration_ms
from benchmarks.scale_stack import SIZES
from benchmarks.soak_stack import ROOT
from benchmarks.train_scale import interactions, split_load
from pytorch_models.linalg import binary_matrix, normalize, singular_residuals
from pytorch_models.models.graphfilter.model import GraphFilterConfig, fit
from pytorch_models.models.graphfilter.spectral import TAIL_MAX_FLOPS, fit_spectral, tail_flops

GOAL_S = 20 * 60
GOAL_MB = 8 * 1024


def fit_once(folder: Path) -> dict:
    """The fit of one split, in this process: seconds per step and what was published."""
    data = interactions(folder)
    config = GraphFilterConfig()
    started = time.perf_counter()
    graph_filter = fit(data.train, data.n_users, data.n_items, config)
    fitted = time.perf_counter()
    tables = fit_spectral(graph_filter, data.train, data.n_users, progress=True)
    done = time.perf_counter()
    peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    m = tables["spectral_vectors"].shape[1] if tables else 0
    values, vectors = graph_filter.singular
    residuals = singular_residuals(normalize(binary_matrix(data.train, data.n_users, data.n_items))[0],
                                   values, vectors)
    return {"train_pairs": len(data.train), "users": data.n_users, "items": data.n_items,
            "fit_s": round(fitted - started, 1), "spectral_s": round(done - fitted, 1),
            "total_s": round(done - started, 1), "serve_dim": m, "tail": "tail_items" in tables,
            "tail_flops": tail_flops(graph_filter, m) if m else 0.0, "vectors": len(values),
            "residual_factors": float(residuals[: config.factor_dim].max()),
            "residual_all": float(residuals.max()),
            "peak_mb": peak_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["gowalla", "5m", "25m"],
                        choices=["gowalla", *[s for s in SIZES if SIZES[s]]])
    parser.add_argument("--gowalla", type=Path, default=Path("../shared/data/gowalla"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cinegraph-scale")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)  # a child: fit this split
    args = parser.parse_args()
    if args.one:
        print(json.dumps(fit_once(args.one)))
        return
    calibration = calibration_ms()
    rows = {}
    for size in args.sizes:
        folder = split_load(size, args)
        done = subprocess.run([sys.executable, "-m", "benchmarks.graphfilter_fit", "--one", str(folder)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True, check=True)
        rows[size] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{size}: {rows[size]}", flush=True)  # each size as it ends: the next can take long
    print(f"\n{'size':<8} {'train pairs':>12} {'users':>8} {'items':>7} {'fit s':>7} {'serving s':>10} "
          f"{'total s':>8} {'peak MB':>8} {'tail':>6} {'residual: factors':>18} {'all':>8}")
    for size, row in rows.items():
        print(f"{size:<8} {row['train_pairs']:>12,} {row['users']:>8,} {row['items']:>7,} {row['fit_s']:>7} "
              f"{row['spectral_s']:>10} {row['total_s']:>8} {row['peak_mb']:>8} "
              f"{'yes' if row['tail'] else 'no':>6} {row['residual_factors']:>18.1e} "
              f"{row['residual_all']:>8.1e}")
    largest = rows[args.sizes[-1]]
    goal = {"size": args.sizes[-1], "seconds": largest["total_s"], "peak_mb": largest["peak_mb"],
            "met": largest["total_s"] <= GOAL_S and largest["peak_mb"] <= GOAL_MB,
            "seconds_on_a_host_1_5x_slower": round(1.5 * largest["total_s"], 1)}
    print(f"\ncalibration loop {calibration:.1f} ms; tail bound {TAIL_MAX_FLOPS:.0e} flops; goal at "
          f"{goal['size']} (<= {GOAL_S / 60:.0f} min, <= {GOAL_MB / 1024:.0f} GB): "
          f"{'met' if goal['met'] else 'NOT met'} "
          f"({goal['seconds_on_a_host_1_5x_slower']} s on a host 1.5x slower)")
    print(json.dumps({"calibration_ms": round(calibration, 1), "sizes": rows, "goal": goal}))


if __name__ == "__main__":
    main()
