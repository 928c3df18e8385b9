"""Seconds per training epoch per model on Gowalla (not a test).

    python -m benchmarks.epoch_speed --data-dir ../shared/data/gowalla --epochs 3 \
        --models lightgcn ngcf pinsage

Trains each model for a few epochs (batch 2048, dim 64, 3 layers) without evaluation and
prints one JSON line per model with the median epoch time.
"""

import argparse
import json
import logging

import numpy as np

import pytorch_models  # noqa: F401
from pytorch_models.data import load_gowalla
from pytorch_models.train import train_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default="../shared/data/gowalla")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["lightgcn", "ngcf", "pinsage"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    data = load_gowalla(args.data_dir)
    no_test = type(data)(data.n_users, data.n_items, data.train, np.zeros((0, 2), np.int64), data.item_ids, data.user_ids)
    for name in args.models:
        layers = 2 if name == "pinsage" else 3
        result = train_model(name, no_test, epochs=args.epochs, batch_size=2048, dim=64, layers=layers, progress=True)
        print(json.dumps({"model": name, "seconds_per_epoch": result.seconds_per_epoch, "epochs": result.epoch_seconds}))


if __name__ == "__main__":
    main()
