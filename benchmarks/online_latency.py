"""Fold-in latency on a published checkpoint (not a test): one fine-tune + scores per click.

    python -m benchmarks.online_latency CHECKPOINT_DIR [CHECKPOINT_DIR ...]

Prints one JSON line per checkpoint: median / max seconds of add_interactions + fine_tune
+ scores for a new visitor clicking 10 movies one at a time.
"""

import json
import statistics
import sys
import time

import pytorch_models  # noqa: F401
from pytorch_models.online import OnlineModel


def main(folders: list[str]) -> None:
    for folder in folders:
        online = OnlineModel.from_checkpoint(folder)
        visitor = online.add_user()
        timings = []
        for item in range(0, 100, 10):
            started = time.perf_counter()
            online.add_interactions(visitor, [item])
            online.fine_tune(visitor)
            online.scores(visitor)
            timings.append(time.perf_counter() - started)
        print(json.dumps({"model": online.name, "median_s": statistics.median(timings), "max_s": max(timings)}))


if __name__ == "__main__":
    main(sys.argv[1:])
