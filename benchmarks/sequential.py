"""Every model on MovieLens held out by time: where the sequence model wins and where it loses
(issue 25, item 3).

    python -m benchmarks.sequential [--data-dir data/ml-latest-small] [--models ...]
                                    [--out var/sequential]

Each user's latest 20% of ratings by timestamp is held out (`data.sequences`), and every
model trains on the rest with its defaults (the site's: `training.options.DEFAULTS`, the graph
filter with the site's rank) and ranks every movie the user has not rated (full ranking, the
training items masked). Besides recall@20 and ndcg@20 over all held-out items, per model:
- next: hit@20 of the user's first held-out item only, the next thing it rated;
- by history: recall@20 among users with the shortest, middle and longest third of training
  histories;
- head / tail: recall@20 of the held-out items among the 20% most rated in training, and of
  the rest (each user's other held-out items left out of that figure, not counted as misses).
Prints the table, draws it as grouped bars into --out/sequential.png; the last line is one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import pytorch_models  # noqa: F401  (sets DGLBACKEND before dgl loads)
from predictors.versions import SITE_OPTIONS
from pytorch_models.data.interactions import load_movielens_features
from pytorch_models.data.sequences import load_movielens_by_time
from pytorch_models.evaluation.metrics import ranking_metrics
from pytorch_models.models.names import SERVED_MODELS
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import train_model

K = 20
HEAD_SHARE = 0.2


def segments(data) -> dict[str, np.ndarray]:
    """Held-out pairs of each segment, by name."""
    test = data.test
    first = np.ones(len(test), dtype=bool)
    first[1:] = test[1:, 0] != test[:-1, 0]  # test rows are in (user, time) order: a user's next
    history = np.bincount(data.train[:, 0], minlength=data.n_users)
    thirds = np.quantile(history[np.unique(test[:, 0])], [1 / 3, 2 / 3])
    size = history[test[:, 0]]
    counts = np.bincount(data.train[:, 1], minlength=data.n_items)
    head = np.argsort(-counts, kind="stable")[: int(HEAD_SHARE * data.n_items)]
    in_head = np.isin(test[:, 1], head)
    return {"all": test, "next": test[first], "short history": test[size <= thirds[0]],
            "middle history": test[(size > thirds[0]) & (size <= thirds[1])],
            "long history": test[size > thirds[1]], "head items": test[in_head], "tail items": test[~in_head]}


def figures(scorer, data, parts: dict[str, np.ndarray]) -> dict[str, float]:
    row = {}
    for name, test in parts.items():
        metrics = ranking_metrics(scorer, data.train, test, data.n_users, data.n_items, k=K)
        if name == "all":
            row["recall"], row["ndcg"] = metrics[f"recall@{K}"], metrics[f"ndcg@{K}"]
        else:
            row[name] = metrics[f"hit@{K}" if name == "next" else f"recall@{K}"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/ml-latest-small"))
    parser.add_argument("--models", nargs="+", choices=SERVED_MODELS, default=list(SERVED_MODELS))
    parser.add_argument("--out", type=Path, default=Path("var/sequential"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_movielens_by_time(args.data_dir)
    features = load_movielens_features(args.data_dir, data.item_ids)
    parts = segments(data)
    rows = {}
    for model in args.models:
        started = time.perf_counter()
        options = TrainOptions(seed=args.seed, k=K, config_overrides=SITE_OPTIONS.get(model, {}))
        result = train_model(model, data, features, options)
        minutes = round((time.perf_counter() - started) / 60, 1)
        rows[model] = {**figures(result.scorer, data, parts), "minutes": minutes}
        print(f"{model}: {rows[model]}", flush=True)
    columns = ["recall", "ndcg", *[name for name in parts if name != "all"]]
    print(f"\n{data.n_users} users, {data.n_items} movies, {len(data.train):,} training ratings, "
          f"{len(data.test):,} held out (each user's latest 20%); @{K}, full ranking")
    print(f"{'model':<13}" + "".join(f"{c:>16}" for c in columns) + f"{'minutes':>9}")
    for model, row in rows.items():
        best = {c: max(rows, key=lambda m, c=c: rows[m][c]) for c in columns}
        cells = "".join(f"{row[c]:>15.4f}{'*' if best[c] == model else ' '}" for c in columns)
        print(f"{model:<13}{cells}{row['minutes']:>9}")
    print("* the best in its column; next is hit@20 of the first held-out rating, the rest recall@20")
    args.out.mkdir(parents=True, exist_ok=True)
    plot(rows, columns, args.out / "sequential.png")
    print(f"plot: {args.out / 'sequential.png'}")
    print(json.dumps({"k": K, "split": data.split, "models": rows}))


def plot(rows: dict[str, dict], columns: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(13, 5))
    width = 0.8 / len(rows)
    for i, (model, row) in enumerate(rows.items()):
        axis.bar(np.arange(len(columns)) + i * width, [row[c] for c in columns], width, label=model)
    axis.set_xticks(np.arange(len(columns)) + 0.4 - width / 2, columns)
    axis.set_ylabel(f"@{K} (next: hit; recall and segments: recall)")
    axis.set_title("MovieLens held out by time: each user's latest 20% of ratings")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
