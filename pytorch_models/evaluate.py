"""Evaluate a checkpoint on the held-out split it was trained against.

    python -m pytorch_models.evaluate --dataset movielens --data-dir data/ml-latest-small \
        --checkpoint var/models/lightgcn/dev --k 20

The split (seed, test fraction) comes from the checkpoint's meta.json; the last stdout line
is one JSON object with recall/ndcg/precision/hit/mrr@k and seconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.data import load_dataset
from pytorch_models.metrics import ranking_metrics
from pytorch_models.scoring import checkpoint_scorer

log = logging.getLogger(__name__)


def checkpoint_metrics(checkpoint_dir, dataset: str, data_dir, *, k: int = 20) -> dict:
    """Full-ranking metrics (and the seconds they took) of a checkpoint folder on the held-out
    split of the data set on disk that it was trained against."""
    checkpoint = load_checkpoint(checkpoint_dir)
    split = checkpoint.meta.get("data", {}).get("split", {})
    data, _ = load_dataset(
        dataset, data_dir, test_fraction=split.get("test_fraction", 0.2), seed=split.get("seed", 0)
    )
    if not checkpoint.graph().trained_on(data.train):
        raise ValueError("the data set's train split differs from the checkpoint's training snapshot")
    started = time.perf_counter()
    scorer = checkpoint_scorer(checkpoint, data.train, data.n_users)
    metrics = ranking_metrics(scorer, data.train, data.test, data.n_users, data.n_items, k=k)
    metrics["seconds"] = time.perf_counter() - started
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Full-ranking evaluation of a saved checkpoint.")
    parser.add_argument("--dataset", choices=("gowalla", "movielens"), required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(json.dumps(checkpoint_metrics(args.checkpoint, args.dataset, args.data_dir, k=args.k)))


if __name__ == "__main__":
    main()
