"""Evaluate a checkpoint on the held-out split it was trained against: the command line of
`evaluation.checkpoint_metrics`.

    python -m pytorch_models.evaluate --dataset movielens --data-dir data/ml-latest-small \
        --checkpoint var/models/lightgcn/dev --k 20

    # a blend (pytorch_models.evaluation.blend): per-user z-scores of each, weighted
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

from pytorch_models.evaluation.checkpoint_metrics import blend_metrics


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
