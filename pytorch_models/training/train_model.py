"""A full training run of LightGCN, NGCF, PinSage, the graph filter or the popular baseline,
and its publication: `train_model` -> `TrainResult` (trained on an `Interactions`' train
split, evaluated on its test split), `publish` (a checkpoint folder with the data snapshot
fold-in needs; every checkpoint folder is written by it, the site's versions too).

What to train with is a `TrainOptions` (`training.options`); the epoch loops are in
`training.loops`. The command line over these is `python -m pytorch_models.train`.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dgl
import numpy as np
import torch
from torch import nn

from pytorch_models.checkpoint import save_checkpoint
from pytorch_models.data.interactions import Interactions, ItemFeatures
from pytorch_models.evaluation.metrics import held_out_metrics
from pytorch_models.models.names import EMBEDDING_MODELS, GRADIENT_TRAINED_MODELS, SERVED_MODELS
from pytorch_models.serving.scoring import popularity_scorer
from pytorch_models.training import distributed
from pytorch_models.training.graphfilter import train_graphfilter
from pytorch_models.training.loops import ModelFit, fit_embedding_model, fit_pinsage
from pytorch_models.training.memory import freed_memory_kept
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.sasrec import fit_sasrec
from pytorch_models.training.spectral_init import spectral_initialiser

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model_name: str
    config: dict
    model: nn.Module | None
    item_embeddings: torch.Tensor  # (n_items, d)
    extra_tensors: dict[str, torch.Tensor]
    metrics: dict = field(default_factory=dict)
    # One entry per epoch (`ModelFit.history`): {epoch, loss, seconds, recall@k, eval_seconds}.
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    hyper: dict = field(default_factory=dict)
    # What the time budget did (`budget_summary`): meta.json's `budget`.
    budget: dict = field(default_factory=dict)
    # user rows (B,) -> scores (B, n_items), as the held-out metrics were computed; None on
    # ranks other than 0 and for a model with nothing to score.
    scorer: Callable[[torch.Tensor], torch.Tensor] | None = None

    @property
    def epoch_seconds(self) -> list[float]:
        return [entry["seconds"] for entry in self.history]

    @property
    def losses(self) -> list[float]:
        return [entry["loss"] for entry in self.history]

    @property
    def seconds_per_epoch(self) -> float | None:
        return statistics.median(self.epoch_seconds) if self.epoch_seconds else None


def train_model(
    model_name: str,
    interactions: Interactions,
    item_features: ItemFeatures | None = None,
    options: TrainOptions | None = None,
    *,
    initialise=None,
    batch_pairs: np.ndarray | None = None,
    singular_start: np.ndarray | None = None,
) -> TrainResult:
    """Train `model_name` on `interactions.train` and evaluate on `interactions.test` (if any).

    options: how (None: every default); its unset fields take the model's defaults; its time
    budget starts now (`TrainOptions.time_budget_s`).
    initialise: called with the new model before training (a warm start, see `warm_start`).
    batch_pairs: (P, 2) rows of `interactions.train` that LightGCN, NGCF and PinSage draw their
    batches from (a retrain's new pairs and replay sample, `training.replay`); None: all of
    them. The graph is the whole train split either way; the closed-form models ignore it.
    singular_start: (n_items, m) singular vectors of an earlier graph filter, rows matched to
    these items, that its SVD starts from (a retrain's warm start; the other models ignore it).
    Raises ValueError for batch pairs that are not train pairs (a held-out pair would leak).
    """
    if model_name not in SERVED_MODELS:
        raise ValueError(f"unknown model {model_name!r}; expected one of {SERVED_MODELS}")
    options = (options or TrainOptions()).for_model(model_name)
    if model_name in EMBEDDING_MODELS:
        options = options.with_propagation(len(interactions.train))
        log.info("%s: %s propagation over %d training edges%s", model_name, options.propagation,
                 len(interactions.train), f", fan-out {options.fanout}" if options.fanout else "")
    started = time.perf_counter()
    if options.time_budget_s is not None:
        options = dataclasses.replace(options, deadline=time.monotonic() + options.time_budget_s)
    if batch_pairs is not None:
        batch_pairs = train_rows(interactions, batch_pairs)
    torch.manual_seed(options.seed)
    np.random.seed(options.seed)
    ranks = distributed.current()  # data-parallel: each rank its own negatives and samples
    generator = torch.Generator().manual_seed(options.seed + 7919 * ranks.rank)
    counts = torch.bincount(torch.from_numpy(interactions.train[:, 1]),
                            minlength=interactions.n_items).float()
    with freed_memory_kept():  # a step's large tensors reused, not faulted in afresh
        fit = _fit(model_name, interactions, item_features, options, generator, initialise, counts,
                   batch_pairs, singular_start)
        train_seconds = time.perf_counter() - started
        metrics = ({} if fit.scorer is None
                   else held_out_metrics(fit.scorer, interactions, options.k, options.eval_users,
                                         progress=f"{model_name} evaluation" if options.progress else None))
    log.info("%s trained in %.1fs: %s", model_name, train_seconds, metrics)
    return TrainResult(
        model_name=model_name,
        config=fit.config,
        model=fit.model,
        item_embeddings=fit.item_embeddings.detach(),
        extra_tensors={**fit.extra_tensors, "item_popularity": counts},
        metrics=metrics,
        history=fit.history,
        train_seconds=train_seconds,
        hyper={**options.hyper(model_name), "processes": ranks.world},
        budget=budget_summary(model_name, options, fit.history, train_seconds),
        scorer=fit.scorer,
    )


def train_rows(interactions: Interactions, pairs: np.ndarray) -> np.ndarray:
    """`pairs` as an (P, 2) int64 array, checked to be non-empty rows of `interactions.train`."""
    pairs = np.asarray(pairs, dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or len(pairs) == 0:
        raise ValueError(f"batch pairs must be a non-empty (P, 2) array, not of shape {pairs.shape}")
    train = np.unique(interactions.train[:, 0] * interactions.n_items + interactions.train[:, 1])
    if not np.isin(pairs[:, 0] * interactions.n_items + pairs[:, 1], train).all():
        raise ValueError("batch pairs must be train pairs: a held-out pair would leak into training")
    return pairs


def budget_summary(model_name: str, options: TrainOptions, history: list[dict], train_seconds: float) -> dict:
    """meta.json's `budget`: the seconds allowed (None: no budget, or a closed-form model, which
    is never budgeted), whether it stopped the run, the seconds trained, epochs and batches run."""
    budgeted = options.time_budget_s if model_name in GRADIENT_TRAINED_MODELS else None
    return {"seconds": budgeted, "hit": any(entry.get("budget_spent") for entry in history),
            "trained_seconds": round(train_seconds, 3), "epochs": len(history),
            "batches": sum(entry.get("batches", 0) for entry in history)}


def _fit(model_name, interactions, item_features, options: TrainOptions, generator, initialise,
         counts, batch_pairs=None, singular_start=None) -> ModelFit:
    if model_name == "popular":
        return ModelFit(None, {}, counts.clone().unsqueeze(1), {}, popularity_scorer(counts), [])
    if model_name == "graphfilter":
        return train_graphfilter(interactions, config_overrides=options.config_overrides,
                                 progress=options.progress, served=options.eval_served, start=singular_start)
    if model_name == "sasrec":
        return fit_sasrec(interactions, options, generator, initialise)
    if options.init == "spectral":
        spectral = spectral_initialiser(interactions.train, interactions.n_users, interactions.n_items)
        initialise = _then(spectral, initialise)
    dgl.seed(options.seed + 7919 * distributed.current().rank)  # PinSage's walks, LightGCN/NGCF's blocks
    if model_name == "pinsage":
        return fit_pinsage(interactions, item_features, options, initialise, batch_pairs)
    return fit_embedding_model(model_name, interactions, options, generator, initialise, batch_pairs)


def _then(first, second):
    """An `initialise` hook that runs `first`, then `second` when there is one."""
    if second is None:
        return first

    def both(model):
        first(model)
        second(model)

    return both


def publish(
    result: TrainResult,
    interactions: Interactions,
    out_dir: str | Path,
    *,
    item_features: ItemFeatures | None = None,
    dataset: dict | None = None,
    extra_meta: dict | None = None,
    visitors: dict[str, int] | None = None,
) -> Path:
    """Save `result` as a checkpoint folder with the data snapshot fold-in needs.

    The one writer of a trained checkpoint folder: the command line (`python -m
    pytorch_models.train --out`) and the site's versions (`predictors.versions.version_make`,
    into a folder the registry then renames into place) both write through it, so the two
    hold the same files and meta.json fields.

    visitors: visitor digest -> user row (`Checkpoint.visitors`), kept out of meta.json."""
    meta = {
        "metrics": result.metrics,
        "hyper": result.hyper,
        "data": {
            **(dataset or {}),
            "split": interactions.split,
            "n_users": interactions.n_users,
            "n_items": interactions.n_items,
            "n_train": int(len(interactions.train)),
            "n_test": int(len(interactions.test)),
        },
        "timings": {
            "train_seconds": result.train_seconds,
            "seconds_per_epoch": result.seconds_per_epoch,
            "epoch_seconds": result.epoch_seconds,
            "eval_seconds": sum(entry["eval_seconds"] for entry in result.history),
        },
        "losses": result.losses,
        "history": result.history,
        "budget": result.budget,
        **(extra_meta or {}),
    }
    return save_checkpoint(
        out_dir,
        model_name=result.model_name,
        config=result.config,
        state_dict=result.model.state_dict() if result.model is not None else {},
        item_embeddings=result.item_embeddings,
        extra_tensors=result.extra_tensors,
        meta=meta,
        train_edges=interactions.train,
        n_users=interactions.n_users,
        item_ids=interactions.item_ids,
        user_ids=interactions.user_ids,
        item_features=item_features,
        visitors=visitors,
        train_stamps=interactions.train_stamps,
    )
