"""Seconds per training epoch on Gowalla, against the reference LightGCN code (not a test).

    python -m benchmarks.epoch_speed --data-dir ../shared/data/gowalla --epochs 3 \
        --models lightgcn ngcf pinsage

Trains each model for a few epochs (batch 2048 unless --batch-size, dim 64, 3 layers; PinSage 2
layers) without evaluation and prints one JSON line per model with the median epoch time. It then
times an epoch of the reference LightGCN-PyTorch code on the same data
(benchmarks/reference_lightgcn.py) and prints the ratio reference / ours for LightGCN. `--threads`
sets torch's thread count.
"""

import argparse
import json
import logging

import numpy as np
import torch

import pytorch_models  # noqa: F401
from benchmarks import reference_lightgcn
from pytorch_models.data.interactions import load_gowalla
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import train_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data/gowalla")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["lightgcn", "ngcf", "pinsage"])
    parser.add_argument("--batch-size", type=int, default=2048, help="the reference setting is 2048")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--reference-batches", type=int, default=40,
                        help="reference batches to time (0: skip the reference); the rest of its epoch is "
                             "counted at their median")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_gowalla(args.data_dir)
    no_test = type(data)(data.n_users, data.n_items, data.train, np.zeros((0, 2), np.int64), data.item_ids,
                         data.user_ids)
    ours = {}
    for name in args.models:
        layers = 2 if name == "pinsage" else 3
        options = TrainOptions(epochs=args.epochs, batch_size=args.batch_size, dim=64, layers=layers,
                               progress=True)
        result = train_model(name, no_test, options=options)
        ours[name] = result.seconds_per_epoch
        print(json.dumps({"model": name, "threads": torch.get_num_threads(), "batch_size": args.batch_size,
                          "seconds_per_epoch": round(result.seconds_per_epoch, 2),
                          "epochs": [round(s, 2) for s in result.epoch_seconds]}), flush=True)
    if args.reference_batches:
        reference = reference_lightgcn.epoch_seconds(
            data.train, data.n_users, data.n_items, batch_size=2048, max_batches=args.reference_batches
        )
        line = {"model": "reference-lightgcn", "threads": torch.get_num_threads(),
                **{k: round(v, 3) if isinstance(v, float) else v for k, v in reference.items()}}
        if "lightgcn" in ours:
            line["speedup_of_ours"] = round(reference["epoch_seconds"] / ours["lightgcn"], 2)
        print(json.dumps(line))


if __name__ == "__main__":
    main()
