"""The learning rate of a retrain that steps over a sample (issue 24): a trained version,
warm-started and stepped once over a share of its training pairs at its own rate and at a tenth.

    python -m benchmarks.retrain_lr [--data-dir /tmp/cinegraph-1m] [--models ngcf lightgcn]
                                    [--epochs 2] [--shares 0.025 1.0] [--steps 244]

Per model: trained for --epochs on a generated release of 1M ratings (written by
`benchmarks.synthetic_movielens` if --data-dir has none; checkpoints cached under --cache-dir),
with sampled propagation as at 25M. Then, warm-started from that version (every row carried),
one epoch over a seeded share of its training pairs, and recall@20 on the held-out split. A
share of 2.5% is what a scheduled retrain stepped over at 25M ratings (RETRAIN_REPLAY_MAX, then 500k of
20M pairs); its pass there takes 244 steps of 2,048 pairs, so a sample's pass here is cut into
--steps batches (each row gets about as many touches, the dense layers as many steps). The
whole split is stepped over in the model's own batches. `predictors.versions.SAMPLED_BELOW` and
the models' `sampled_retrain_lr` come from this table. Prints it with the calibration loop; the
last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch

from benchmarks.pages import calibration_ms
from benchmarks.synthetic_movielens import release_write
from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.data.interactions import load_movielens, load_movielens_features
from pytorch_models.training.options import DEFAULTS, TrainOptions
from pytorch_models.training.train_model import publish, train_model
from pytorch_models.training.warm_start import warm_start

RATINGS = 1_000_000


def trained(name: str, data, features, folder: Path, epochs: int):
    if not (folder / "meta.json").exists():
        result = train_model(name, data, features, TrainOptions(epochs=epochs, propagation="sampled", seed=0))
        publish(result, data, folder, item_features=features)
    return load_checkpoint(folder)


def stepped_once(name: str, live, data, features, share: float, lr: float, steps: int) -> float:
    """recall@20 after one epoch, warm-started from `live`, over a seeded `share` of the pairs."""
    rows = np.random.default_rng(0).choice(len(data.train), int(share * len(data.train)), replace=False)
    keys = [str(u) for u in range(data.n_users)]
    batch = math.ceil(len(rows) / steps) if share < 1 else None
    result = train_model(
        name, data, features,
        TrainOptions(epochs=1, lr=lr, batch_size=batch, propagation="sampled", init="random", seed=0),
        initialise=lambda model: warm_start(model, live, item_ids=data.item_ids, user_keys=keys,
                                            checkpoint_user_keys=keys),
        batch_pairs=data.train[rows])
    return result.metrics["recall@20"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/cinegraph-1m"))
    parser.add_argument("--models", nargs="+", default=["ngcf", "lightgcn"])
    parser.add_argument("--epochs", type=int, default=2, help="the live version's training")
    parser.add_argument("--shares", nargs="+", type=float, default=[0.025, 1.0])
    parser.add_argument("--steps", type=int, default=244, help="batches in a sample's pass")
    parser.add_argument("--cache-dir", type=Path, default=Path("var/benchmarks/retrain_lr"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    calibration = calibration_ms()
    if not (args.data_dir / "ratings.csv").exists():
        release_write(args.data_dir, RATINGS, seed=0)
    data = load_movielens(str(args.data_dir), test_fraction=0.2, seed=0)
    features = load_movielens_features(str(args.data_dir), data.item_ids)
    torch.manual_seed(0)

    rows = []
    for name in args.models:
        live = trained(name, data, features, args.cache_dir / f"{name}-{args.epochs}ep", args.epochs)
        before = live.meta["metrics"]["recall@20"]
        own = DEFAULTS[name]["lr"]
        for share in args.shares:
            for lr in (own, own / 10):
                after = stepped_once(name, live, data, features, share, lr, args.steps)
                rows.append({"model": name, "live": round(before, 4), "share": share, "lr": lr,
                             "recall@20": round(after, 4), "change": round(after / before - 1, 3)})
                print(json.dumps(rows[-1]), flush=True)

    print(f"\n{data.n_users} users, {data.n_items} movies, {len(data.train)} training pairs; live versions "
          f"trained {args.epochs} epochs; calibration loop {calibration:.1f} ms")
    print(f"{'model':<10} {'live':>7} {'share':>6} {'lr':>8} {'recall@20':>10} {'change':>8}")
    for row in rows:
        print(f"{row['model']:<10} {row['live']:>7.4f} {row['share']:>6.3f} {row['lr']:>8.0e} "
              f"{row['recall@20']:>10.4f} {row['change']:>+8.1%}")
    print(json.dumps({"calibration_ms": round(calibration, 1), "rows": rows}))


if __name__ == "__main__":
    main()
