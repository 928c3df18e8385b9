"""Full training of LightGCN, NGCF, PinSage and the popular baseline, and publishing.

    python -m pytorch_models.train --dataset movielens --data-dir data/ml-latest-small \
        --model lightgcn --out var/models/lightgcn/dev

The last stdout line is one JSON object (seconds_per_epoch, recall@20, ndcg@20, ...).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pytorch_models.data import Interactions, ItemFeatures, load_gowalla, load_movielens, load_movielens_features
from pytorch_models.fold_in import item_layers
from pytorch_models.graph import SymmetricAdjacency, build_graph
from pytorch_models.graphfilter.model import parse_override
from pytorch_models.graphfilter.train import train_graphfilter
from pytorch_models.architectures import CONFIGS, MODEL_NAMES, build_model
from pytorch_models.bpr_sampler import PositiveSet, bpr_batches
from pytorch_models.checkpoint import save_checkpoint
from pytorch_models.metrics import held_out_metrics
from pytorch_models.scoring import dot_scorer, pinsage_user_vectors, popularity_scorer
from pytorch_models.pinsage.sampler import WalkConfig, batch_loader, full_hops, neighbour_table

log = logging.getLogger(__name__)

# Defaults chosen on ml-latest-small (80/20 per-user split, seed 0, 2 cores); see the
# measurements in benchmarks/README.md. `epochs=1` gives a tiny run for integration tests.
DEFAULTS = {
    "lightgcn": {"epochs": 60, "lr": 5e-3},
    # NGCF, recall@20 after 40 epochs: lr 1e-3 .1779, 2e-3 .1923 (.1853 already at 25).
    "ngcf": {"epochs": 40, "lr": 2e-3},
    # PinSage on ml-latest-small, recall@20 (80/20 split, seed 0, with tags): 6 epochs of
    # uniform negatives and fresh walks per batch .1357; cached neighbour tables .142 (12
    # epochs); negatives drawn ∝ (degree + 1) ** 0.5 .165 (power 0 .142, .35 .172 with the
    # cosine decay, .75 .151, 1.0 .090); a cosine decay of lr .179 (12 epochs), .184 (20);
    # dim 128 .190 (16 epochs), .188 (20). 256 shared negatives, lr 1e-2 and batches of 1024
    # did not help (.130, .134, .181). Runs differ by about ±.003 with the sampled tables.
    "pinsage": {"epochs": 16, "lr": 3e-3, "dim": 128, "lr_schedule": "cosine", "neighbourhoods": "cached",
                "negative_power": 0.5},
    "popular": {"epochs": 0, "lr": 0.0},
    "graphfilter": {"epochs": 0, "lr": 0.0},  # training-free; its config comes through `options`
}
# What a model's DEFAULTS entry does not set.
GENERAL_DEFAULTS = {"dim": 64, "lr_schedule": "constant", "neighbourhoods": "sampled", "negative_power": 0.0}
# Hard-negative curriculum: epoch e adds min(e, hard_negatives) per query. Off by default:
# on ml-latest-small (9.7k movies) every band tried (ranks 32-128, 100-400) lowered
# recall@20 (0.140 without -> 0.076 / 0.119 with, 6-8 epochs); enable it for large catalogues.
MAX_HARD_NEGATIVES = 0


@dataclass
class TrainResult:
    model_name: str
    config: dict
    model: nn.Module | None
    item_embeddings: torch.Tensor  # (n_items, d)
    extra_tensors: dict[str, torch.Tensor]
    metrics: dict = field(default_factory=dict)
    # One entry per epoch: {epoch (from 1), loss, seconds (training only), recall@k (None
    # when that epoch was not evaluated), eval_seconds}; what the dashboard's curves draw.
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


class CosineDecay:
    """Sets the learning rate from `lr` down to `floor`·lr along half a cosine of the run's
    progress: the share of the time budget spent when there is one, else of the epochs."""

    def __init__(self, optimiser, lr: float, *, epochs: int, time_budget_s: float | None, floor: float = 0.05):
        self.optimiser, self.lr, self.epochs, self.time_budget_s, self.floor = optimiser, lr, epochs, time_budget_s, floor
        self.started = time.perf_counter()

    def step(self, epoch: int, batch: int, n_batches: int) -> None:
        if self.time_budget_s:
            progress = (time.perf_counter() - self.started) / self.time_budget_s
        else:
            progress = (epoch + batch / n_batches) / self.epochs
        factor = self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        for group in self.optimiser.param_groups:
            group["lr"] = self.lr * factor


def _schedule(name: str, optimiser, lr: float, epochs: int, time_budget_s: float | None):
    return CosineDecay(optimiser, lr, epochs=epochs, time_budget_s=time_budget_s) if name == "cosine" else None


def _loop(epochs, time_budget_s, run_epoch, evaluate_now, eval_every, k):
    """Shared epoch bookkeeping: the run's history, one entry per epoch, with the held-out
    recall@k every `eval_every` epochs (None between; no evaluation when it is None), and the
    time budget, which counts the evaluations too."""
    history, started = [], time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        loss = run_epoch(epoch)
        entry = {"epoch": epoch + 1, "loss": loss, "seconds": time.perf_counter() - t0, f"recall@{k}": None,
                 "eval_seconds": 0.0}
        log.info("epoch %d loss %.4f (%.2fs)", epoch, loss, entry["seconds"])
        if eval_every and (epoch + 1) % eval_every == 0:
            t1 = time.perf_counter()
            metrics = evaluate_now()
            entry[f"recall@{k}"], entry["eval_seconds"] = metrics.get(f"recall@{k}"), time.perf_counter() - t1
            log.info("epoch %d metrics %s (%.2fs)", epoch, metrics, entry["eval_seconds"])
        history.append(entry)
        if time_budget_s is not None and time.perf_counter() - started > time_budget_s:
            log.info("time budget of %.0fs reached after %d epochs", time_budget_s, epoch + 1)
            break
    return history


def _train_embedding(name, data, *, epochs, batch_size, dim, layers, lr, generator, progress, time_budget_s, eval_every, k,
                     lr_schedule, options, initialise):
    config = CONFIGS[name](n_users=data.n_users, n_items=data.n_items, dim=dim, layers=layers or 3, **options)
    model = build_model(name, asdict(config))
    if initialise:
        initialise(model)
    adjacency = SymmetricAdjacency(data.n_users, data.n_items, data.train)
    positives = PositiveSet(data.train, data.n_items)
    pairs = torch.from_numpy(data.train)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    n_batches = math.ceil(len(pairs) / batch_size)
    schedule = _schedule(lr_schedule, optimiser, lr, epochs, time_budget_s)

    def run_epoch(epoch):
        model.train()
        total = 0.0
        batches = bpr_batches(pairs, positives, batch_size, generator)
        for i, (users, pos, neg) in enumerate(tqdm(batches, total=n_batches, disable=not progress, desc=f"{name} {epoch}")):
            if schedule:
                schedule.step(epoch, i, n_batches)
            matrix = adjacency.dropped(config.node_dropout, generator) if name == "ngcf" else adjacency.matrix
            loss = model.loss(matrix, users, pos, neg)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss)
        return total / n_batches

    def scorer():
        model.eval()
        with torch.no_grad():
            users, items = model.embeddings(adjacency.matrix)
        return dot_scorer(users, items), items

    history = _loop(epochs, time_budget_s, run_epoch, lambda: held_out_metrics(scorer()[0], data, k), eval_every, k)
    score, items = scorer()
    # What fold-in needs frozen: every layer's item rows and the item degrees.
    layers, degree = item_layers(model, data.train)
    return model, asdict(config), items, {"item_layers": layers, "item_degree": degree}, score, history


def _train_pinsage(data, features, *, hard_negatives, epochs, batch_size, dim, layers, lr, seed, generator, progress,
                   time_budget_s, eval_every, k, lr_schedule, num_workers, neighbourhoods, shared_negatives, negative_power,
                   initialise):
    config = CONFIGS["pinsage"](
        n_items=data.n_items,
        dim=dim,
        layers=layers or 2,
        n_genres=features.genres.shape[1] if features is not None else 0,
        n_year_buckets=features.n_year_buckets if features is not None else 0,
        n_title_buckets=features.n_title_buckets if features is not None else 0,
        n_tag_buckets=features.n_tag_buckets if features is not None and features.tags is not None else 0,
        negative_power=negative_power,
    )
    model = build_model("pinsage", asdict(config))
    if initialise:
        initialise(model)
    tables = features.tensors() if features is not None else None
    g = build_graph(data.n_users, data.n_items, data.train)
    walks = WalkConfig(negative_power=negative_power)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    n_batches = math.ceil(len(data.train) / batch_size)
    schedule = _schedule(lr_schedule, optimiser, lr, epochs, time_budget_s)

    def run_epoch(epoch):
        model.train()
        total = 0.0
        # "cached": one importance-neighbour table per epoch (the one inference uses) instead
        # of fresh walks per batch; the blocks then cost an index lookup.
        table = neighbour_table(g, torch.arange(data.n_items), walks) if neighbourhoods == "cached" else None
        loader = batch_loader(
            g, config.layers, walks, batch_size=batch_size, n_batches=n_batches,
            n_hard=min(epoch, hard_negatives), seed=seed * 10_000 + epoch, num_workers=num_workers, table=table,
            n_shared=shared_negatives,
        )
        for i, batch in enumerate(tqdm(loader, total=n_batches, disable=not progress, desc=f"pinsage {epoch}")):
            if schedule:
                schedule.step(epoch, i, n_batches)
            loss = model.loss(batch.hops, tables, batch.queries, batch.pos, batch.neg, batch.shared_neg)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss)
        return total / n_batches

    def scorer():
        model.eval()
        table, weights = neighbour_table(g, torch.arange(data.n_items), walks)
        with torch.no_grad():
            items = model(full_hops(table, weights, config.layers), tables)
        bias = model.item_bias.detach().clone()
        users = pinsage_user_vectors(items, data.train, data.n_users)
        extra = {"item_bias": bias, "neighbour_table": table, "neighbour_weights": weights}
        return dot_scorer(users, items, bias), items, extra

    history = _loop(epochs, time_budget_s, run_epoch, lambda: held_out_metrics(scorer()[0], data, k), eval_every, k)
    score, items, extra = scorer()
    return model, asdict(config), items, extra, score, history


def train_model(
    model_name: str,
    interactions: Interactions,
    item_features: ItemFeatures | None = None,
    *,
    epochs: int | None = None,
    batch_size: int = 2048,
    dim: int | None = None,
    layers: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    progress: bool = True,
    time_budget_s: float | None = None,
    eval_every: int | None = None,
    k: int = 20,
    num_workers: int = 1,
    hard_negatives: int = MAX_HARD_NEGATIVES,
    options: dict | None = None,
    neighbourhoods: str | None = None,
    shared_negatives: int = 0,
    negative_power: float | None = None,
    lr_schedule: str | None = None,
    initialise=None,
) -> TrainResult:
    """Train `model_name` on `interactions.train` and evaluate on `interactions.test` (if any).

    epochs / lr default per model (DEFAULTS); layers defaults to 3 (LightGCN, NGCF) and
    2 (PinSage). num_workers: PinSage sampling processes (0 samples in this process).
    options: config fields to override (LightGCN/NGCF: l2, node_dropout, message_dropout; graphfilter:
        any GraphFilterConfig field).
    neighbourhoods: PinSage blocks from random walks per batch ("sampled") or from a
    neighbour table refreshed every epoch ("cached"). shared_negatives: PinSage random items
    that are negatives of every query in a batch, besides each query's own. negative_power:
    PinSage draws random negatives ∝ (degree + 1) ** negative_power (0: uniform). lr_schedule:
    "constant" or "cosine" (decay to 5% over the time budget, else over the epochs).
    Left as None, these three, dim, epochs and lr come from DEFAULTS, then GENERAL_DEFAULTS.
    initialise: called with the new model before training (a warm start, see `warm_start`).
    """
    if model_name not in MODEL_NAMES:
        raise ValueError(f"unknown model {model_name!r}; expected one of {MODEL_NAMES}")
    epochs = DEFAULTS[model_name]["epochs"] if epochs is None else epochs
    lr = DEFAULTS[model_name]["lr"] if lr is None else lr
    defaults = {**GENERAL_DEFAULTS, **DEFAULTS[model_name]}
    dim = defaults["dim"] if dim is None else dim
    neighbourhoods = defaults["neighbourhoods"] if neighbourhoods is None else neighbourhoods
    negative_power = defaults["negative_power"] if negative_power is None else negative_power
    lr_schedule = defaults["lr_schedule"] if lr_schedule is None else lr_schedule
    torch.manual_seed(seed)
    np.random.seed(seed)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    counts = torch.bincount(torch.from_numpy(interactions.train[:, 1]), minlength=interactions.n_items).float()
    common = dict(epochs=epochs, batch_size=batch_size, dim=dim, layers=layers, lr=lr, lr_schedule=lr_schedule, generator=generator,
                  progress=progress, time_budget_s=time_budget_s, eval_every=eval_every, k=k, initialise=initialise)
    if model_name == "popular":
        model, config, items, extra, score, history = None, {}, counts.clone().unsqueeze(1), {}, popularity_scorer(counts), []
    elif model_name == "graphfilter":
        model, config, items, extra, score, history = train_graphfilter(interactions, options=options or {}, progress=progress)
    elif model_name == "pinsage":
        import dgl

        dgl.seed(seed)
        model, config, items, extra, score, history = _train_pinsage(
            interactions, item_features, hard_negatives=hard_negatives, seed=seed, num_workers=num_workers,
            neighbourhoods=neighbourhoods, shared_negatives=shared_negatives, negative_power=negative_power, **common,
        )
    else:
        model, config, items, extra, score, history = _train_embedding(
            model_name, interactions, options=options or {}, **common
        )
    train_seconds = time.perf_counter() - started
    metrics = held_out_metrics(score, interactions, k)
    log.info("%s trained in %.1fs: %s", model_name, train_seconds, metrics)
    return TrainResult(
        model_name=model_name,
        config=config,
        model=model,
        item_embeddings=items.detach(),
        extra_tensors={**extra, "item_popularity": counts},
        metrics=metrics,
        history=history,
        train_seconds=train_seconds,
        hyper={"epochs": epochs, "lr": lr, "lr_schedule": lr_schedule, "batch_size": batch_size, "seed": seed, "hard_negatives": hard_negatives,
               **({"neighbourhoods": neighbourhoods, "shared_negatives": shared_negatives,
                   "negative_power": negative_power}
                  if model_name == "pinsage" else {})},
    )


def publish(
    result: TrainResult,
    interactions: Interactions,
    out_dir: str | Path,
    *,
    item_features: ItemFeatures | None = None,
    dataset: dict | None = None,
    extra_meta: dict | None = None,
) -> Path:
    """Save `result` as a checkpoint folder with the data snapshot fold-in needs."""
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
    )


def load_dataset(dataset: str, data_dir: str | Path, *, test_fraction: float = 0.2, seed: int = 0):
    """(Interactions, ItemFeatures or None) for `gowalla` or `movielens`."""
    if dataset == "gowalla":
        return load_gowalla(data_dir), None
    if dataset == "movielens":
        data = load_movielens(data_dir, test_fraction=test_fraction, seed=seed)
        return data, load_movielens_features(data_dir, data.item_ids)
    raise ValueError(f"unknown dataset {dataset!r}")


def main(argv: list[str] | None = None) -> None:
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
    parser.add_argument("--time-budget", type=float, help="stop after the epoch that passes this many seconds")
    parser.add_argument("--workers", type=int, default=1, help="PinSage sampling processes")
    parser.add_argument("--hard-negatives", type=int, default=MAX_HARD_NEGATIVES, help="PinSage curriculum cap")
    parser.add_argument("--neighbourhoods", choices=("sampled", "cached"),
                        help="PinSage blocks: random walks per batch, or a neighbour table refreshed per epoch "
                             "(default: cached)")
    parser.add_argument("--shared-negatives", type=int, default=0, help="PinSage negatives shared by a batch")
    parser.add_argument("--negative-power", type=float,
                        help="PinSage random negatives ∝ (degree + 1) ** this; 0 uniform (default 0.5)")
    parser.add_argument("--l2", type=float, help="LightGCN/NGCF: L2 weight on the batch's ego embeddings")
    parser.add_argument("--node-dropout", type=float, help="NGCF: edge dropout rate of the Laplacian")
    parser.add_argument("--message-dropout", type=float, help="NGCF: dropout on each layer's output")
    parser.add_argument("--filter", type=parse_override, action="append", default=[], metavar="KEY=VALUE",
                        help="graphfilter config field (factor_dim, idl_beta, T_b, K_b, T_s, K_s, solver); repeatable")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--out", help="checkpoint folder to write")
    args = parser.parse_args(argv)
    options = {key: value for key in ("l2", "node_dropout", "message_dropout") if (value := getattr(args, key)) is not None}
    options.update(dict(args.filter))
    # An option applies where the model's config has that field (NGCF: all three; LightGCN: l2).
    unknown = sorted(set(options) - {f.name for f in fields(CONFIGS[args.model])} if args.model in CONFIGS else options)
    if unknown:
        parser.error(f"--{'/--'.join(unknown).replace('_', '-')} does not apply to {args.model}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    data, features = load_dataset(args.dataset, args.data_dir, test_fraction=args.test_fraction, seed=args.seed)
    result = train_model(
        args.model, data, features, epochs=args.epochs, batch_size=args.batch_size, dim=args.dim,
        layers=args.layers, lr=args.lr, seed=args.seed, progress=not args.no_progress,
        time_budget_s=args.time_budget, eval_every=args.eval_every, num_workers=args.workers,
        hard_negatives=args.hard_negatives,
        options=options, neighbourhoods=args.neighbourhoods, lr_schedule=args.lr_schedule, shared_negatives=args.shared_negatives,
        negative_power=args.negative_power,
    )
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
