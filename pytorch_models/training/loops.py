"""The epoch loops of the trained recommenders, and what they share.

LightGCN and NGCF learn with BPR on (user, positive, negative) triples of the train pairs
(`fit_embedding_model`); PinSage with a max-margin loss on its random-walk sampler's batches
(`fit_pinsage`). Both run `batch_loop` (the learning-rate schedule, `optimiser_step`, the
mean loss, the deadline) inside `epochs_run` (the per-epoch history, the evaluations, the
deadline again), and hand `train_model` a `ModelFit`.

The time budget (`TrainOptions.time_budget_s`, made a `deadline` by `train_model`) stops a run
at the first batch boundary after it, not at the end of an epoch: an epoch of a large graph can
outlast the whole budget of a scheduled retrain. A run always takes at least one step. Both fits
draw their batches from `batch_pairs` when given (a retrain's new pairs and its replay sample,
`training.replay`) and from every train pair otherwise; the graph they propagate over, sample
walks on and avoid as negatives is always the whole train split.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pytorch_models.data.graph import build_graph
from pytorch_models.data.interactions import Interactions, ItemFeatures
from pytorch_models.evaluation.metrics import held_out_metrics
from pytorch_models.models.architectures import CONFIGS, build_model
from pytorch_models.models.pinsage.model import PinSageConfig
from pytorch_models.models.pinsage.sampler import WalkConfig, batch_loader, full_hops, neighbour_table
from pytorch_models.serving.scoring import dot_scorer, pinsage_user_vectors
from pytorch_models.training import distributed
from pytorch_models.training.bpr_sampler import PositiveSet, bpr_batches, prepared_batches
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.propagation import FullPropagation, SampledPropagation

log = logging.getLogger(__name__)

Scorer = Callable[[torch.Tensor], torch.Tensor]  # user rows (B,) -> scores (B, n_items)


@dataclass(frozen=True)
class ModelFit:
    """One model after training, as `train_model` receives it."""

    model: nn.Module | None  # None: nothing learnt (popular, the graph filter)
    config: dict
    item_embeddings: torch.Tensor  # (n_items, d): the published item table
    extra_tensors: dict[str, torch.Tensor]
    scorer: Scorer | None  # for the final held-out evaluation; None on ranks other than 0
    # One entry per epoch: {epoch (from 1), loss, seconds (training only), recall@k (None
    # when that epoch was not evaluated), eval_seconds}; what the dashboard's curves draw.
    history: list[dict]


class CosineDecay:
    """Sets the learning rate from `lr` down to `floor`·lr along half a cosine of the run's
    progress: the share of the epochs done or, with a time budget, of the budget spent,
    whichever is further along (a run ends at whichever comes first).

    deadline: the `time.monotonic()` at which the budget ends (`TrainOptions.deadline`);
    None with a budget: `time_budget_s` from now."""

    def __init__(self, optimiser, lr: float, *, epochs: int, time_budget_s: float | None,
                 floor: float = 0.05, deadline: float | None = None):
        self.optimiser, self.lr, self.epochs = optimiser, lr, epochs
        self.time_budget_s, self.floor = time_budget_s, floor
        if deadline is None and time_budget_s:
            deadline = time.monotonic() + time_budget_s
        self.deadline = deadline

    def step(self, epoch: int, batch: int, n_batches: int) -> None:
        progress = (epoch + batch / n_batches) / self.epochs if self.epochs else 1.0
        if self.time_budget_s and self.deadline is not None:
            spent = 1 - (self.deadline - time.monotonic()) / self.time_budget_s
            progress = max(progress, spent)
        factor = self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        for group in self.optimiser.param_groups:
            group["lr"] = self.lr * factor


def learning_rate_schedule(options: TrainOptions, optimiser) -> CosineDecay | None:
    if options.lr_schedule != "cosine":
        return None
    return CosineDecay(optimiser, options.lr, epochs=options.epochs, time_budget_s=options.time_budget_s,
                       deadline=options.deadline)


def optimiser_step(optimiser: torch.optim.Optimizer, loss: torch.Tensor,
                   synchronise: Callable[[], None] | None = None) -> float:
    """One gradient step on `loss`, the gradients averaged over the ranks first by `synchronise`
    (`distributed.average_gradients`) when training data-parallel; returns the loss as a number."""
    optimiser.zero_grad()
    loss.backward()
    if synchronise is not None:
        synchronise()
    optimiser.step()
    return float(loss)


@dataclass(frozen=True)
class EpochRun:
    """What `batch_loop` did in one epoch."""

    loss: float  # mean over the batches it ran
    batches: int  # how many it ran
    cut: bool  # the deadline stopped it with batches left


def past(deadline: float | None) -> bool:
    """Whether `deadline` (a `time.monotonic()` time; None: none) has passed."""
    return deadline is not None and time.monotonic() >= deadline


def batch_loop(batches: Iterable, loss_of: Callable[[object], torch.Tensor], optimiser,
               schedule: CosineDecay | None, *, epoch: int, n_batches: int, progress: bool,
               desc: str, deadline: float | None = None,
               synchronise: Callable[[], None] | None = None) -> EpochRun:
    """One epoch: per batch the scheduled learning rate, then one step on `loss_of(batch)`
    (`synchronise`: see `optimiser_step`), until the batches end or, after a step, `deadline`
    has passed on any rank (so at least one step). The loss is the mean over the ranks."""
    total, done, cut = 0.0, 0, False
    for i, batch in enumerate(tqdm(batches, total=n_batches, disable=not progress, desc=desc)):
        if schedule:
            schedule.step(epoch, i, n_batches)
        total += optimiser_step(optimiser, loss_of(batch), synchronise)
        done += 1
        if deadline is not None and distributed.any_rank(past(deadline)):
            cut = i + 1 < n_batches
            break
    return EpochRun(distributed.mean_over_ranks(total / max(done, 1)), done, cut)


def epochs_run(run_epoch: Callable[[int], EpochRun], held_out: Callable[[], dict],
               options: TrainOptions) -> list[dict]:
    """`run_epoch` for each epoch: the run's history (see `ModelFit.history`), with the
    `held_out` metrics every `eval_every` epochs (on rank 0 only), until `options.deadline`
    (evaluations count; the ranks stop together).

    An epoch the deadline cut, or one that ends past it, is not evaluated (`train_model`'s
    final evaluation follows at once); the entry of the epoch the budget stopped the run in
    carries `budget_spent: True`."""
    k = options.k
    history = []
    for epoch in range(options.epochs):
        t0 = time.perf_counter()
        run = run_epoch(epoch)
        entry = {"epoch": epoch + 1, "loss": run.loss, "batches": run.batches,
                 "seconds": time.perf_counter() - t0, f"recall@{k}": None, "eval_seconds": 0.0}
        log.info("epoch %d loss %.4f (%d batches, %.2fs)", epoch, run.loss, run.batches, entry["seconds"])
        due = options.eval_every and (epoch + 1) % options.eval_every == 0 and distributed.current().primary
        if due and not (run.cut or past(options.deadline)):
            t1 = time.perf_counter()
            metrics = held_out()
            entry[f"recall@{k}"], entry["eval_seconds"] = metrics.get(f"recall@{k}"), time.perf_counter() - t1
            log.info("epoch %d metrics %s (%.2fs)", epoch, metrics, entry["eval_seconds"])
        history.append(entry)
        spent = options.deadline is not None and distributed.any_rank(past(options.deadline))
        if run.cut or (epoch + 1 < options.epochs and spent):
            entry["budget_spent"] = True
            log.info("time budget of %.0fs spent in epoch %d, after %d of its batches", options.time_budget_s,
                     epoch + 1, run.batches)
            break
    return history


def _built(name: str, config, initialise: Callable[[nn.Module], None] | None) -> nn.Module:
    model = build_model(name, asdict(config))
    if initialise:
        initialise(model)
    return model


def fit_embedding_model(name: str, data: Interactions, options: TrainOptions, generator: torch.Generator,
                        initialise: Callable[[nn.Module], None] | None = None,
                        batch_pairs: np.ndarray | None = None) -> ModelFit:
    """LightGCN or NGCF: BPR with one negative per pair of `batch_pairs` (None: every train
    pair), in shuffled batches; uniform, or the hardest of `options.negative_candidates`
    uniform ones. Propagated over the whole graph or over each batch's sampled blocks, as
    `options.propagation` says (after `TrainOptions.with_propagation`)."""
    ranks, device = distributed.current(), distributed.device_for(options.device)
    config = CONFIGS[name](n_users=data.n_users, n_items=data.n_items, dim=options.dim, layers=options.layers,
                           **options.config_overrides)
    model = _built(name, config, initialise).to(device)
    distributed.broadcast_parameters(model)
    propagation = (SampledPropagation(model, data, options.fanouts(), generator)
                   if options.propagation == "sampled" else FullPropagation(model, data, generator))
    positives = PositiveSet(data.train, data.n_items, data.negatives)
    pairs = torch.from_numpy(data.train if batch_pairs is None else batch_pairs)
    optimiser = torch.optim.Adam(model.parameters(), lr=options.lr)
    n_batches = math.ceil(len(pairs) / options.batch_size)
    schedule = learning_rate_schedule(options, optimiser)
    synchronise = (lambda: distributed.average_gradients(model)) if ranks.many else None

    def run_epoch(epoch: int) -> float:
        model.train()
        # Data-parallel: one shuffle of the global batches on every rank, each its share.
        order_seed, part = options.seed * 10_000 + epoch, (ranks.rank, ranks.world)
        if options.propagation == "sampled" and options.num_workers:  # blocks sampled in workers
            batches = prepared_batches(pairs, positives, options.batch_size, options.negative_candidates,
                                       order_seed=order_seed, seed=order_seed * ranks.world + ranks.rank,
                                       prepare=propagation.prepare, num_workers=options.num_workers,
                                       part=part)
        else:
            order = torch.Generator().manual_seed(order_seed) if ranks.many else None
            batches = map(propagation.prepare, bpr_batches(pairs, positives, options.batch_size, generator,
                                                           options.negative_candidates, order_generator=order,
                                                           part=part))
        return batch_loop(batches, propagation.loss, optimiser, schedule, epoch=epoch, n_batches=n_batches,
                          progress=options.progress and ranks.primary, desc=f"{name} {epoch}",
                          deadline=options.deadline, synchronise=synchronise)

    def scorer():
        model.eval()
        layers = [x.cpu() for x in propagation.layers()]
        final = model.combine(layers)
        items = final[data.n_users :]
        return dot_scorer(final[: data.n_users], items), items, layers

    def evaluate() -> dict:
        return held_out_metrics(scorer()[0], data, options.k, options.eval_users)

    history = epochs_run(run_epoch, evaluate, options)
    if not ranks.primary:  # rank 0 evaluates and publishes
        return ModelFit(model, asdict(config), torch.empty(0, config.dim), {}, None, history)
    score, items, layers = scorer()
    # What fold-in needs frozen: every layer's item rows and the item degrees.
    extra = {"item_layers": torch.stack([x[data.n_users :] for x in layers]),
             "item_degree": torch.bincount(torch.as_tensor(data.train[:, 1], dtype=torch.int64),
                                            minlength=data.n_items)}
    return ModelFit(model, asdict(config), items, extra, score, history)


def pinsage_config(data: Interactions, features: ItemFeatures | None, options: TrainOptions) -> PinSageConfig:
    """The config for `data`'s items, with an input table for each feature `features` has."""
    has_tags = features is not None and features.tags is not None
    return CONFIGS["pinsage"](
        n_items=data.n_items,
        dim=options.dim,
        layers=options.layers,
        n_genres=features.genres.shape[1] if features is not None else 0,
        n_year_buckets=features.n_year_buckets if features is not None else 0,
        n_title_buckets=features.n_title_buckets if features is not None else 0,
        n_tag_buckets=features.n_tag_buckets if has_tags else 0,
        negative_power=options.negative_power,
    )


def fit_pinsage(data: Interactions, features: ItemFeatures | None, options: TrainOptions,
                initialise: Callable[[nn.Module], None] | None = None,
                batch_pairs: np.ndarray | None = None) -> ModelFit:
    """PinSage: max-margin on the sampler's (query, positive, negatives) batches; items are
    embedded from their features over importance-weighted random-walk neighbourhoods. Queries
    come from the pairs of `batch_pairs` (None: from every train pair; `sample_positive_pairs`)."""
    ranks, device = distributed.current(), distributed.device_for(options.device)
    config = pinsage_config(data, features, options)
    model = _built("pinsage", config, initialise).to(device)
    distributed.broadcast_parameters(model)
    tables = features.tensors() if features is not None else None
    device_tables = None if tables is None else {key: value.to(device) for key, value in tables.items()}
    g = build_graph(data.n_users, data.n_items, data.train)
    walks = WalkConfig(negative_power=options.negative_power)
    optimiser = torch.optim.Adam(model.parameters(), lr=options.lr)
    edges = None if batch_pairs is None else torch.from_numpy(batch_pairs)
    n_batches = math.ceil(len(data.train if edges is None else edges) / options.batch_size)
    batch_size = options.batch_size
    if ranks.many:  # each rank its shard of the pairs and its share of each global batch
        pairs = torch.from_numpy(data.train) if edges is None else edges
        shuffled = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(options.seed))
        edges, batch_size = pairs[distributed.strided(shuffled, ranks)], math.ceil(batch_size / ranks.world)
    schedule = learning_rate_schedule(options, optimiser)
    synchronise = (lambda: distributed.average_gradients(model)) if ranks.many else None

    def loss_of(batch):
        batch = batch.to(device)
        return model.loss(batch.hops, device_tables, batch.queries, batch.pos, batch.neg, batch.shared_neg)

    def run_epoch(epoch: int) -> float:
        model.train()
        # "cached": one importance-neighbour table per epoch (the one inference uses) instead
        # of fresh walks per batch; the blocks then cost an index lookup.
        table = (neighbour_table(g, torch.arange(data.n_items), walks) if options.neighbourhoods == "cached"
                 else None)
        loader = batch_loader(
            g, config.layers, walks, batch_size=batch_size, n_batches=n_batches,
            n_hard=min(epoch, options.hard_negatives),
            seed=(options.seed * 10_000 + epoch) * ranks.world + ranks.rank,
            num_workers=options.num_workers, table=table, n_shared=options.shared_negatives, edges=edges,
        )
        return batch_loop(loader, loss_of, optimiser, schedule, epoch=epoch, n_batches=n_batches,
                          progress=options.progress and ranks.primary, desc=f"pinsage {epoch}",
                          deadline=options.deadline, synchronise=synchronise)

    def scorer():
        model.eval()
        table, weights = neighbour_table(g, torch.arange(data.n_items), walks)
        with torch.no_grad():
            items = model([hop.to(device) for hop in full_hops(table, weights, config.layers)],
                          device_tables).cpu()
        bias = model.item_bias.detach().cpu().clone()
        users = pinsage_user_vectors(items, data.train, data.n_users)
        extra = {"item_bias": bias, "neighbour_table": table, "neighbour_weights": weights}
        return dot_scorer(users, items, bias), items, extra

    def evaluate() -> dict:
        return held_out_metrics(scorer()[0], data, options.k, options.eval_users)

    history = epochs_run(run_epoch, evaluate, options)
    if not ranks.primary:  # rank 0 evaluates and publishes
        return ModelFit(model, asdict(config), torch.empty(0, config.dim), {}, None, history)
    score, items, extra = scorer()
    return ModelFit(model, asdict(config), items, extra, score, history)
