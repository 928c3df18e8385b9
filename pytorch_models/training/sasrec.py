"""SASRec's training, as in the paper: every position of each user's training sequence predicts
the item that came next, against one random item the user never had, by binary cross-entropy;
Adam (β2 0.98), batches of whole sequences, dropout; the held-out metrics score every item as
what follows the user's whole training sequence. Data-parallel under torchrun as the other
models are (`training.distributed`): each rank its share of each batch's sequences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pytorch_models.data.interactions import Interactions
from pytorch_models.data.sequences import user_sequences
from pytorch_models.evaluation.metrics import held_out_metrics
from pytorch_models.models.sasrec import ITEM_OFFSET, SASRec, SASRecConfig, padded_rows
from pytorch_models.serving.scoring import sequence_scorer
from pytorch_models.training import distributed
from pytorch_models.training.loops import ModelFit, batch_loop, epochs_run, learning_rate_schedule
from pytorch_models.training.options import TrainOptions


class Negatives:
    """Uniform random items a user never had in training: each draw that hits one of the
    user's items is drawn again (a few rounds; what is left after them is kept, which with
    ml-latest-small's densest user, 2,698 of 9,742 movies, is rare)."""

    def __init__(self, train: np.ndarray, n_items: int, rounds: int = 8):
        self.n_items, self.rounds = n_items, rounds
        self.keys = torch.from_numpy(np.unique(train[:, 0] * n_items + train[:, 1]))

    def seen(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        keys = users * self.n_items + items
        at = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
        return self.keys[at] == keys

    def draw(self, users: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """users (B, L) -> (B, L) item indices."""
        items = torch.randint(self.n_items, users.shape, generator=generator)
        for _ in range(self.rounds):
            again = self.seen(users, items)
            if not again.any():
                break
            items[again] = torch.randint(self.n_items, (int(again.sum()),), generator=generator)
        return items


def training_batch(sequences: list[np.ndarray], users: torch.Tensor, max_len: int, negatives: Negatives,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, next items' rows, negatives' rows), each (B, L) and left-padded with 0: position
    t of a user's input is its item t, its target item t + 1, over its last max_len + 1 items."""
    inputs = padded_rows([sequences[u][:-1].tolist() for u in users.tolist()], max_len)
    targets = padded_rows([sequences[u][1:].tolist() for u in users.tolist()], max_len)
    drawn = negatives.draw(users[:, None].expand_as(targets), generator) + ITEM_OFFSET
    return inputs, targets, drawn.masked_fill(targets == 0, 0)


def sequence_loss(model: SASRec, inputs: torch.Tensor, targets: torch.Tensor,
                  negatives: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of each real position's next item (1) and its negative (0)."""
    states = model(inputs)
    positive = (states * model.items(targets)).sum(-1)
    negative = (states * model.items(negatives)).sum(-1)
    real = targets != 0
    if not real.any():  # a rank's empty share of a short last batch: no gradient, but a graph
        return states.sum() * 0.0
    return (F.binary_cross_entropy_with_logits(positive[real], torch.ones_like(positive[real]))
            + F.binary_cross_entropy_with_logits(negative[real], torch.zeros_like(negative[real])))


def fit_sasrec(data: Interactions, options: TrainOptions, generator: torch.Generator,
               initialise: Callable[[nn.Module], None] | None = None) -> ModelFit:
    """SASRec on `data.train` in time order (`data.train_stamps`); raises ValueError without."""
    if data.train_stamps is None:
        raise ValueError("sasrec learns from the order of each user's interactions, and these have no "
                         "timestamps: train it on MovieLens split by time (--split time)")
    ranks = distributed.current()
    config = SASRecConfig(n_items=data.n_items, dim=options.dim, blocks=options.layers,
                          **options.config_overrides)
    model = SASRec(config)
    if initialise:
        initialise(model)
    distributed.broadcast_parameters(model)
    sequences = user_sequences(data.train, data.train_stamps, data.n_users)
    learners = torch.tensor([u for u, items in enumerate(sequences) if len(items) >= 2], dtype=torch.int64)
    negatives = Negatives(data.train, data.n_items)
    optimiser = torch.optim.Adam(model.parameters(), lr=options.lr, betas=(0.9, 0.98))
    schedule = learning_rate_schedule(options, optimiser)
    n_batches = math.ceil(len(learners) / options.batch_size)
    synchronise = (lambda: distributed.average_gradients(model)) if ranks.many else None

    def run_epoch(epoch: int):
        model.train()
        order = learners[torch.randperm(len(learners), generator=torch.Generator().manual_seed(
            options.seed * 10_000 + epoch))]  # the same global batches on every rank
        batches = (training_batch(sequences, order[start:start + options.batch_size][ranks.rank::ranks.world],
                                  config.max_len, negatives, generator)
                   for start in range(0, len(order), options.batch_size))
        return batch_loop(batches, lambda batch: sequence_loss(model, *batch), optimiser, schedule,
                          epoch=epoch, n_batches=n_batches, progress=options.progress and ranks.primary,
                          desc=f"sasrec {epoch}", deadline=options.deadline, synchronise=synchronise)

    score = sequence_scorer(model, sequences)

    def evaluate() -> dict:
        return held_out_metrics(score, data, options.k, options.eval_users)

    history = epochs_run(run_epoch, evaluate, options)
    model.eval()
    return ModelFit(model, asdict(config), model.item_table().detach().clone(), {},
                    score if ranks.primary else None, history)
