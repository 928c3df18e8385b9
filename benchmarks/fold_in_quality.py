"""Fold-in quality: visitors folded in through the live path against users the model trained on.

    python -m benchmarks.fold_in_quality [--seeds 0 2 3] [--models lightgcn ngcf pinsage]

For each seed, each model trains on ml-latest-small without 10% of its users, with the site's
usual 80/20 split for the rest ("trained users"). Each held-out user then replays 80% of its
history as clicks, one click per round, all held-out users in one micro-batch per round,
through the same fold-in the live workers run (`pytorch_models.serving.fold_in`, with PinSage's walks
on a `VisitorGraph`); recall and ndcg@20 are measured on the other 20%. The baseline scores
held-out users by the plain mean of their items' published embeddings, with no fine-tune.
Each seed holds out only 61 users, so the seeds' users are pooled for the ratios and the
comparison with the baseline; every seed's own figures are printed too.

Trained checkpoints are kept under --cache-dir, so a second run only re-measures the fold-in.
Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import dgl
import numpy as np
import torch
from tqdm import tqdm

from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.data.graph import build_graph
from pytorch_models.data.interactions import (
    interactions_from_pairs,
    load_movielens,
    load_movielens_features,
    split_per_user,
)
from pytorch_models.evaluation.metrics import ranking_metrics
from pytorch_models.serving.fold_in import fold_in_for, fold_in_round, score_history
from pytorch_models.serving.visitor_batch import VisitorBatch
from pytorch_models.serving.visitor_graph import VisitorGraph
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model

K = 20
HELD_OUT_USERS = 0.1


def split_users(data, seed: int):
    """(trained-user Interactions, held-out users' (train, test) pairs in item rows)."""
    pairs = np.concatenate([data.train, data.test])  # all ratings, as [user row, item row]
    rng = np.random.default_rng(seed)
    held = np.sort(rng.choice(data.n_users, round(HELD_OUT_USERS * data.n_users), replace=False))
    is_held = np.isin(pairs[:, 0], held)
    trained_users = np.setdiff1d(np.arange(data.n_users), held)
    external = np.stack([pairs[~is_held, 0], data.item_ids[pairs[~is_held, 1]]], axis=1)
    trained = interactions_from_pairs(trained_users, data.item_ids, external, test_fraction=0.2, seed=seed)
    local = np.searchsorted(held, pairs[is_held, 0])
    visitor_train, visitor_test = split_per_user(np.stack([local, pairs[is_held, 1]], 1), len(held), 0.2,
                                                 seed)
    return trained, visitor_train, visitor_test, len(held)


def trained_checkpoint(name, trained, features, cache: Path, seed: int):
    folder = cache / f"{name}-seed{seed}"
    if not (folder / "meta.json").exists():
        result = train_model(name, trained, features, TrainOptions(seed=seed, progress=True))
        publish(result, trained, folder, item_features=features)
    return load_checkpoint(folder)


def walk_graphs(checkpoint) -> tuple:
    """PinSage's frozen training graph and an empty `VisitorGraph` for the live visitors' walks,
    as a live worker holds them; (None, None) for the other models."""
    if checkpoint.model_name != "pinsage":
        return None, None
    snapshot = checkpoint.graph()
    base = build_graph(snapshot.n_users, snapshot.n_items, snapshot.train_edges)
    return base, VisitorGraph(snapshot.n_items)


def fold_in_replay(checkpoint, histories: list[list[int]], seed: int) -> torch.Tensor:
    """Replay each visitor's history one click per round; returns the (V, I) final scores."""
    fold_in = fold_in_for(checkpoint)
    generator = torch.Generator().manual_seed(seed)
    dgl.seed(seed)  # PinSage's walks
    base, graph = walk_graphs(checkpoint)
    offsets = torch.zeros(len(histories), checkpoint.config["dim"])
    for r in tqdm(range(max(map(len, histories))), desc=f"{checkpoint.model_name} replay", leave=False):
        who = [v for v, h in enumerate(histories) if len(h) > r]
        rows = {str(v): histories[v][: r + 1] for v in who}
        offsets[who], _, _ = fold_in_round(fold_in, rows, offsets[who], graph=graph, base=base, now=float(r),
                                           generator=generator)
    batch = VisitorBatch.from_histories(histories)
    visits = None if graph is None else graph.visits(base, [graph.node_of[str(v)]
                                                            for v in range(len(histories))])
    return fold_in.scores(offsets, batch, visits)


def measure(scores: torch.Tensor, train, test, n: int, n_items: int) -> dict:
    return ranking_metrics(lambda users: scores[users], train, test, n, n_items, k=K)


def measure_seed(name: str, data, features, seed: int, cache: Path) -> dict[str, dict]:
    """{"trained", "live", "baseline"} metrics of `name` for the held-out users of `seed`."""
    trained, visitor_train, visitor_test, n_held = split_users(data, seed)
    histories = [[] for _ in range(n_held)]
    for user, item in visitor_train:
        histories[user].append(int(item))
    checkpoint = trained_checkpoint(name, trained, features, cache, seed)
    live = measure(fold_in_replay(checkpoint, histories, seed), visitor_train, visitor_test, n_held,
                   data.n_items)
    baseline = measure(torch.stack([score_history(checkpoint, h) for h in histories]), visitor_train,
                       visitor_test, n_held, data.n_items)
    return {"trained": checkpoint.meta["metrics"], "live": live, "baseline": baseline}


def pooled(runs: list[dict], row: str, metric: str) -> float:
    """The metric over all seeds' users together (each seed's mean weighted by its users)."""
    users = [run[row]["n_users_evaluated"] for run in runs]
    return sum(run[row][metric] * n for run, n in zip(runs, users, strict=True)) / sum(users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data/ml-latest-small")
    parser.add_argument("--models", nargs="+", default=["lightgcn", "ngcf", "pinsage"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 2, 3],
                        help="held-out draws, pooled (seed 1 chose the fold-in settings)")
    parser.add_argument("--cache-dir", default="var/benchmarks/fold_in_quality")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    data = load_movielens(args.data_dir, test_fraction=0.0)
    features = load_movielens_features(args.data_dir, data.item_ids)
    runs = {name: [measure_seed(name, data, features, seed, Path(args.cache_dir)) for seed in args.seeds]
            for name in args.models}

    recall, ndcg = f"recall@{K}", f"ndcg@{K}"
    print(f"\nfold-in quality on {args.data_dir}, @{K}; seeds {args.seeds}, pooled over their users")
    print(f"{'model':<9} {'rows':<15} {'recall':>7} {'ndcg':>7} {'users':>6}   per seed (recall / ndcg)")
    summary = {}
    for name, seeds in runs.items():
        for row, label in (("trained", "trained users"), ("live", "live fold-in"),
                           ("baseline", "baseline: mean")):
            users = sum(run[row]["n_users_evaluated"] for run in seeds)
            per_seed = "  ".join(f"{run[row][recall]:.4f}/{run[row][ndcg]:.4f}" for run in seeds)
            print(f"{name:<9} {label:<15} {pooled(seeds, row, recall):>7.4f} "
                  f"{pooled(seeds, row, ndcg):>7.4f} {users:>6}   {per_seed}")
        live = {m: pooled(seeds, "live", m) for m in (recall, ndcg)}
        base = {m: pooled(seeds, "baseline", m) for m in (recall, ndcg)}
        summary[name] = {
            "recall_ratio": round(live[recall] / pooled(seeds, "trained", recall), 4),
            "ndcg_ratio": round(live[ndcg] / pooled(seeds, "trained", ndcg), 4),
            "beats_baseline": bool(live[recall] > base[recall] and live[ndcg] > base[ndcg]),
            "live": {"recall": round(live[recall], 4), "ndcg": round(live[ndcg], 4)},
            "baseline": {"recall": round(base[recall], 4), "ndcg": round(base[ndcg], 4)},
        }
    for name, s in summary.items():
        print(f"{name:<9} live/trained recall {s['recall_ratio']:.3f}, ndcg {s['ndcg_ratio']:.3f} "
              f"(bar 0.97); beats baseline: {s['beats_baseline']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
