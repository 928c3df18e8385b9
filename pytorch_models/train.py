"""Full training of LightGCN, NGCF, PinSage, the graph filter and the popular baseline, and publishing.

    python -m pytorch_models.train --dataset movielens --data-dir data/ml-latest-small \
        --model lightgcn --out var/models/lightgcn/dev

The last stdout line is one JSON object (seconds_per_epoch, recall@20, ndcg@20, ...). What to
train with is a `TrainOptions` (pytorch_models/train_options.py); the epoch loops are in
pytorch_models/training_loops.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pytorch_models.architectures import CONFIGS, MODEL_NAMES
from pytorch_models.checkpoint import save_checkpoint
from pytorch_models.data import Interactions, ItemFeatures, load_dataset
from pytorch_models.graphfilter.model import parse_override
from pytorch_models.graphfilter.train import train_graphfilter
from pytorch_models.metrics import held_out_metrics
from pytorch_models.scoring import popularity_scorer
from pytorch_models.spectral_init import spectral_initialiser
from pytorch_models.train_options import BPR_MODELS, MAX_HARD_NEGATIVES, TrainOptions
from pytorch_models.training_loops import ModelFit, fit_embedding_model, fit_pinsage

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
) -> TrainResult:
    """Train `model_name` on `interactions.train` and evaluate on `interactions.test` (if any).

    options: how (None: every default); its unset fields take the model's defaults.
    initialise: called with the new model before training (a warm start, see `warm_start`).
    """
    if model_name not in MODEL_NAMES:
        raise ValueError(f"unknown model {model_name!r}; expected one of {MODEL_NAMES}")
    options = (options or TrainOptions()).for_model(model_name)
    torch.manual_seed(options.seed)
    np.random.seed(options.seed)
    generator = torch.Generator().manual_seed(options.seed)
    started = time.perf_counter()
    counts = torch.bincount(torch.from_numpy(interactions.train[:, 1]),
                            minlength=interactions.n_items).float()
    fit = _fit(model_name, interactions, item_features, options, generator, initialise, counts)
    train_seconds = time.perf_counter() - started
    metrics = held_out_metrics(fit.scorer, interactions, options.k)
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
        hyper=options.hyper(model_name),
    )


def _fit(model_name, interactions, item_features, options: TrainOptions, generator, initialise,
         counts) -> ModelFit:
    if model_name == "popular":
        return ModelFit(None, {}, counts.clone().unsqueeze(1), {}, popularity_scorer(counts), [])
    if model_name == "graphfilter":
        return train_graphfilter(interactions, config_overrides=options.config_overrides,
                                 progress=options.progress)
    if options.init == "spectral":
        spectral = spectral_initialiser(interactions.train, interactions.n_users, interactions.n_items)
        initialise = _then(spectral, initialise)
    if model_name == "pinsage":
        import dgl

        dgl.seed(options.seed)
        return fit_pinsage(interactions, item_features, options, initialise)
    return fit_embedding_model(model_name, interactions, options, generator, initialise)


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
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train a Cinegraph recommender and save a checkpoint.")
    parser.add_argument("--dataset", choices=("gowalla", "movielens"), required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--model", choices=MODEL_NAMES, required=True)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int, default=2048)
    parser.add_argument("--dim", type=int, help="embedding size; default per model (DEFAULTS), else 64")
    parser.add_argument("--layers", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"),
                        help="cosine: decay to 5%% of --lr over --time-budget (else over --epochs); "
                             "default per model (DEFAULTS)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.2, help="movielens hold-out per user")
    parser.add_argument("--eval-every", type=int,
                        help="evaluate on the held-out split every N epochs: the recall curve in meta.json's "
                             "history. Off by default: on Gowalla one evaluation takes ~11 s against a "
                             "LightGCN epoch of ~25 s (docs/benchmarks.md)")
    parser.add_argument("--time-budget", type=float,
                        help="stop after the epoch that passes this many seconds")
    parser.add_argument("--workers", type=int, default=1, help="PinSage sampling processes")
    parser.add_argument("--hard-negatives", type=int, default=MAX_HARD_NEGATIVES,
                        help="PinSage curriculum cap")
    parser.add_argument("--neighbourhoods", choices=("sampled", "cached"),
                        help="PinSage blocks: random walks per batch, or a neighbour table refreshed "
                             "per epoch (default: cached)")
    parser.add_argument("--shared-negatives", type=int, default=0, help="PinSage negatives shared by a batch")
    parser.add_argument("--negative-power", type=float,
                        help="PinSage random negatives ∝ (degree + 1) ** this; 0 uniform (default 0.5)")
    parser.add_argument("--negative-candidates", type=int, default=1,
                        help="LightGCN/NGCF: train on the highest-scoring of this many uniform negatives "
                             "(dynamic negative sampling); 1: plain BPR")
    parser.add_argument("--init", choices=("random", "spectral"),
                        help="LightGCN/NGCF ego embeddings, PinSage's id table: random numbers, or R̃'s top "
                             "singular vectors (spectral_init; the default)")
    parser.add_argument("--l2", type=float, help="LightGCN/NGCF: L2 weight on the batch's ego embeddings")
    parser.add_argument("--node-dropout", type=float, help="NGCF: edge dropout rate of the Laplacian")
    parser.add_argument("--message-dropout", type=float, help="NGCF: dropout on each layer's output")
    parser.add_argument("--filter", type=parse_override, action="append", default=[], metavar="KEY=VALUE",
                        help="graphfilter config field (factor_dim, idl_beta, T_b, K_b, T_s, K_s, solver, "
                             "cheby_weight, ...); repeatable")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", help="checkpoint folder to write")
    return parser


def _options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TrainOptions:
    overrides = {key: value for key in ("l2", "node_dropout", "message_dropout")
                 if (value := getattr(args, key)) is not None}
    overrides.update(dict(args.filter))
    # An override applies where the model's config has that field (NGCF: all three; LightGCN: l2).
    known = {f.name for f in fields(CONFIGS[args.model])} if args.model in CONFIGS else set()
    unknown = sorted(set(overrides) - known)
    if unknown:
        parser.error(f"--{'/--'.join(unknown).replace('_', '-')} does not apply to {args.model}")
    if args.negative_candidates < 1 or (args.negative_candidates > 1 and args.model not in BPR_MODELS):
        parser.error("--negative-candidates takes a count ≥ 1, "
                     "and more than 1 applies to lightgcn and ngcf only")
    if args.init == "spectral" and args.model not in ("lightgcn", "ngcf", "pinsage"):
        parser.error(f"--init {args.init} applies to lightgcn, ngcf and pinsage, not {args.model}")
    return TrainOptions(
        epochs=args.epochs, batch_size=args.batch_size, dim=args.dim, layers=args.layers, lr=args.lr,
        lr_schedule=args.lr_schedule, seed=args.seed, progress=not args.no_progress,
        time_budget_s=args.time_budget, eval_every=args.eval_every, init=args.init,
        config_overrides=overrides, num_workers=args.workers,
        hard_negatives=args.hard_negatives, neighbourhoods=args.neighbourhoods,
        shared_negatives=args.shared_negatives, negative_power=args.negative_power,
        negative_candidates=args.negative_candidates,
    )


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    options = _options(args, parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    data, features = load_dataset(args.dataset, args.data_dir, test_fraction=args.test_fraction,
                                  seed=args.seed)
    result = train_model(args.model, data, features, options)
    if args.out:
        publish(result, data, args.out, item_features=features,
                dataset={"dataset": args.dataset, "data_dir": str(args.data_dir)})
    summary = {
        "model": args.model,
        "seconds_per_epoch": result.seconds_per_epoch,
        "train_seconds": round(result.train_seconds, 2),
        "epochs_run": len(result.epoch_seconds),
        **result.metrics,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
