"""The full-ranking metrics of saved checkpoints on the held-out split they were trained
against: one checkpoint (`checkpoint_metrics`) or a blend of several (`blend_metrics`). The
command line over these is `python -m pytorch_models.evaluate`.
"""

from __future__ import annotations

import time

from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.data.interactions import load_dataset
from pytorch_models.data.sequences import load_movielens_by_time
from pytorch_models.evaluation.blend import blended_scorer
from pytorch_models.evaluation.metrics import ranking_metrics
from pytorch_models.serving.scoring import checkpoint_scorer


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
    if splits[0].get("by") == "time":
        if dataset != "movielens":
            raise ValueError(f"the checkpoints were trained on movielens held out by time, not on {dataset}")
        data = load_movielens_by_time(data_dir, test_fraction=splits[0]["test_fraction"])
    else:
        data, _ = load_dataset(dataset, data_dir, test_fraction=splits[0].get("test_fraction", 0.2),
                               seed=splits[0].get("seed", 0))
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
