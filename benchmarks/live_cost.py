"""Per-visitor update cost on ml-latest-small against a Gowalla-sized graph (not a test).

    python -m benchmarks.live_cost [--gowalla ../shared/data/gowalla] [--runs 8]

The update a live worker runs for a new visitor with 5 clicks, per model: its node and edges
in the visitor graph, PinSage's walks, the fine-tune and the scores of every item with top-k.
Timed for one visitor alone and per visitor in a micro-batch of 32, median of --runs, one
thread. The checkpoints are untrained (0 epochs: the cost does not depend on the weights'
values) and kept under --cache-dir. Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.data.graph import build_graph
from pytorch_models.data.interactions import load_gowalla, load_movielens, load_movielens_features
from pytorch_models.models.names import FINE_TUNED_LIVE
from pytorch_models.serving.fold_in import fold_in_for, fold_in_round
from pytorch_models.serving.visitor_graph import VisitorGraph
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model

# The models with a fold-in, in the order of the printed tables (lightgcn, ngcf, pinsage).
MODELS = tuple(sorted(FINE_TUNED_LIVE))
CLICKS = 5
BATCH = 32


def checkpoints(dataset: str, data_dir: str, cache: Path) -> dict:
    out = {}
    data = features = None
    for name in MODELS:
        folder = cache / f"{dataset}-{name}"
        if not (folder / "meta.json").exists():
            if data is None:
                data = (load_gowalla(data_dir) if dataset == "gowalla"
                        else load_movielens(data_dir, test_fraction=0.0))
                data.test = np.zeros((0, 2), dtype=np.int64)  # no evaluation: only the tables matter
                features = (load_movielens_features(data_dir, data.item_ids) if dataset == "movielens"
                            else None)
            result = train_model(name, data, features, TrainOptions(epochs=0, progress=False, num_workers=0))
            publish(result, data, folder, item_features=features)
        out[name] = load_checkpoint(folder)
    return out


def update_seconds(checkpoint, n_visitors: int, runs: int, seed: int = 0) -> float:
    """Median seconds per visitor of one micro-batch update of `n_visitors` new visitors."""
    fold_in = fold_in_for(checkpoint)
    n_items = checkpoint.item_embeddings.shape[0]
    base = graph = None
    if checkpoint.model_name == "pinsage":
        snapshot = checkpoint.graph()
        base, graph = (build_graph(snapshot.n_users, snapshot.n_items, snapshot.train_edges),
                       VisitorGraph(n_items))
    generator = torch.Generator().manual_seed(seed)
    dim = checkpoint.config["dim"]
    times = []
    for run in range(runs + 1):  # the first run warms caches up and is not counted
        histories = [torch.randint(0, n_items, (CLICKS,), generator=generator).unique().tolist()
                     for _ in range(n_visitors)]
        started = time.perf_counter()
        rows = {f"{run}-{v}": h for v, h in enumerate(histories)}
        offsets, batch, visits = fold_in_round(fold_in, rows, torch.zeros(n_visitors, dim), graph=graph,
                                               base=base, now=float(run), generator=generator)
        fold_in.top_unseen(offsets, batch, visits, 100)
        if run:
            times.append((time.perf_counter() - started) / n_visitors)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movielens", default="data/ml-latest-small")
    parser.add_argument("--gowalla", default="../shared/data/gowalla")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--cache-dir", default="var/benchmarks/live_cost")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cache = Path(args.cache_dir)
    sets = {"movielens": checkpoints("movielens", args.movielens, cache),
            "gowalla": checkpoints("gowalla", args.gowalla, cache)}
    ms = {(d, m, n): 1000 * update_seconds(ck, n, args.runs)
          for d, cks in sets.items() for m, ck in cks.items() for n in (1, BATCH)}

    print(f"\nper-visitor update ({CLICKS} clicks, new visitor), median of {args.runs}, 1 thread, ms")
    print(f"{'model':<9} {'ml alone':>9} {'gowalla alone':>14} {'ratio':>6} "
          f"{'ml in 32':>9} {'gowalla in 32':>14} {'ratio':>6}")
    summary = {}
    for m in MODELS:
        alone = ms["gowalla", m, 1] / ms["movielens", m, 1]
        batched = ms["gowalla", m, BATCH] / ms["movielens", m, BATCH]
        print(f"{m:<9} {ms['movielens', m, 1]:>9.1f} {ms['gowalla', m, 1]:>14.1f} {alone:>6.2f} "
              f"{ms['movielens', m, BATCH]:>9.2f} {ms['gowalla', m, BATCH]:>14.2f} {batched:>6.2f}")
        summary[m] = {"movielens_ms": round(ms["movielens", m, 1], 2),
                      "gowalla_ms": round(ms["gowalla", m, 1], 2),
                      "ratio": round(alone, 2), "movielens_batched_ms": round(ms["movielens", m, BATCH], 3),
                      "gowalla_batched_ms": round(ms["gowalla", m, BATCH], 3),
                      "batched_ratio": round(batched, 2)}
    all_ml = sum(ms["movielens", m, 1] for m in MODELS)
    all_gw = sum(ms["gowalla", m, 1] for m in MODELS)
    print(f"{'all three':<9} {all_ml:>9.1f} {all_gw:>14.1f} {all_gw / all_ml:>6.2f}")
    summary["all"] = {"movielens_ms": round(all_ml, 2), "gowalla_ms": round(all_gw, 2),
                      "ratio": round(all_gw / all_ml, 2)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
