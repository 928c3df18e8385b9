"""Evaluate a checkpoint on the held-out split it was trained against.

    python -m pytorch_models.evaluate --dataset movielens --data-dir data/ml-latest-small \
        --checkpoint var/models/lightgcn/dev --k 20

    # a blend (pytorch_models.blend): per-user z-scores of each, weighted
    python -m pytorch_models.evaluate --dataset gowalla --data-dir ../shared/data/gowalla \
        --checkpoint var/bench/graphfilter-blend --checkpoint var/bench/lightgcn --weights 0.5 0.5

The split (seed, test fraction) comes from the checkpoint's meta.json (a blend's checkpoints
must share it); the last stdout line is one JSON object with recall/ndcg/precision/hit/mrr@k
and seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from pytorch_models.blend import blended_scorer
from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.data import load_dataset
from pytorch_models.metrics import ranking_metrics
from pytorch_models.scoring import checkpoint_scorer

log = logging.getLogger(__name__)


def checkpoint_metrics(checkpoint_dir, dataset: str, data_dir, *, k: int = 20) -> dict:
    """Full-ranking metrics (and the seconds they took) of a checkpoint folder on the held-out
    split of the data set on disk that it was trained against."""
    return blend_metrics([checkpoint_dir], [1.0], dataset, data_dir, k=k)


def blend_metrics(checkpoint_dirs, weights, dataset: str, data_dir, *, k: int = 20) -> dict:
    """`checkpoint_metrics` of the blend of several checkpoints trained on the same split
    (one checkpoint: that model's own scores, unblended)."""
    checkpoints = [load_checkpoint(folder) for folder in checkpoint_dirs]
    splits = [checkpoint.meta.get("data", {}).get("split", {}) for checkpoint in checkpoints]
    if any(split != splits[0] for split in splits):
        raise ValueError(f"the checkpoints were trained on different splits: {splits}")
    data, _ = load_dataset(
        dataset, data_dir, test_fraction=splits[0].get("test_fraction", 0.2), seed=splits[0].get("seed", 0)
    )
    for folder, checkpoint in zip(checkpoint_dirs, checkpoints, strict=True):
        if not checkpoint.graph().trained_on(data.train):
            raise ValueError(f"the data set's train split differs from {folder}'s training snapshot")
    started = time.perf_counter()
    scorers = [checkpoint_scorer(checkpoint, data.train, data.n_users) for checkpoint in checkpoints]
    scorer = scorers[0] if len(scorers) == 1 else blended_scorer(scorers, weights, data.train, data.n_users,
                                                                 data.n_items)
    metrics = ranking_metrics(scorer, data.train, data.test, data.n_users, data.n_items, k=k)
    metrics["seconds"] = time.perf_counter() - started
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Full-ranking evaluation of a saved checkpoint.")
    parser.add_argument("--dataset", choices=("gowalla", "movielens"), required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--checkpoint", required=True, action="append",
                        help="a checkpoint folder; repeat it to evaluate a blend")
    parser.add_argument("--weights", type=float, nargs="+", help="a blend's weights, one per --checkpoint")
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args(argv)
    weights = args.weights or [1.0] * len(args.checkpoint)
    if len(weights) != len(args.checkpoint):
        parser.error(f"{len(args.checkpoint)} checkpoints and {len(weights)} weights: give one weight each")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    metrics = blend_metrics(args.checkpoint, weights, args.dataset, args.data_dir, k=args.k)
    print(json.dumps({"checkpoints": args.checkpoint, "weights": weights, **metrics}))


if __name__ == "__main__":
    main()
