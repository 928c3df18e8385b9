"""BPR's batches: vectorised negative sampling (no Python loop per sample), and the batches of
an epoch made in DataLoader worker processes while the model trains (`prepared_batches`)."""

from __future__ import annotations

from collections.abc import Callable

import dgl
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

MAX_ROUNDS = 20  # redraw collisions; with ≤5% density 20 rounds leave ~1e-26 of them
# The share of a user's negatives drawn from the items it said it does not want, when it has any.
EXPLICIT_SHARE = 0.5


class PositiveSet:
    """Membership test for (user, item) pairs via sorted keys user * n_items + item; with
    `negatives` ((N, 2) [user, item], a site visitor's "Not interested"), the negatives that
    `sample_negatives` draws for those users instead of uniform ones, EXPLICIT_SHARE of the time."""

    def __init__(self, pairs: np.ndarray | torch.Tensor, n_items: int, negatives: np.ndarray | None = None):
        pairs = torch.as_tensor(np.asarray(pairs), dtype=torch.int64).reshape(-1, 2)
        self.n_items = n_items
        self.keys = torch.sort(pairs[:, 0] * n_items + pairs[:, 1]).values
        explicit = torch.as_tensor(np.asarray(negatives if negatives is not None else np.empty((0, 2))),
                                   dtype=torch.int64).reshape(-1, 2)
        explicit = explicit[torch.argsort(explicit[:, 0] * n_items + explicit[:, 1])]
        self.explicit_users, self.explicit_items = explicit[:, 0].contiguous(), explicit[:, 1].contiguous()

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if len(self.keys) == 0:
            return torch.zeros_like(users, dtype=torch.bool)
        query = users * self.n_items + items
        pos = torch.searchsorted(self.keys, query).clamp(max=len(self.keys) - 1)
        return self.keys[pos] == query

    def sample_negatives(
        self, users: torch.Tensor, generator: torch.Generator | None = None, n_per_user: int = 1
    ) -> torch.Tensor:
        """Items uniformly at random that the user has not interacted with.

        users: (B,) -> (B,) or (B, n_per_user) when n_per_user > 1.
        """
        users = users.repeat_interleave(n_per_user) if n_per_user > 1 else users
        items = torch.randint(0, self.n_items, users.shape, generator=generator)
        for _ in range(MAX_ROUNDS):
            bad = self.contains(users, items)
            if not bad.any():
                break
            items[bad] = torch.randint(0, self.n_items, (int(bad.sum()),), generator=generator)
        if len(self.explicit_users):
            items = self._explicit(users, items, generator)
        return items.view(-1, n_per_user) if n_per_user > 1 else items

    def _explicit(self, users: torch.Tensor, items: torch.Tensor, generator) -> torch.Tensor:
        """`items` with EXPLICIT_SHARE of those of users with negatives of their own replaced
        by one of those, drawn uniformly."""
        start = torch.searchsorted(self.explicit_users, users)
        count = torch.searchsorted(self.explicit_users, users, right=True) - start
        chosen = (count > 0) & (torch.rand(users.shape, generator=generator) < EXPLICIT_SHARE)
        pick = start + (torch.rand(users.shape, generator=generator) * count).long()
        return torch.where(chosen, self.explicit_items[pick.clamp(max=len(self.explicit_items) - 1)], items)


def bpr_batches(
    pairs: torch.Tensor, positives: PositiveSet, batch_size: int, generator: torch.Generator | None = None,
    n_negatives: int = 1, *, order_generator: torch.Generator | None = None, part: tuple[int, int] = (0, 1),
    share: tuple[int, int] = (0, 1),
):
    """One epoch of (users, positive items, negative items) batches over shuffled train pairs;
    the negatives are (B,), or (B, n_negatives) when n_negatives > 1.

    part: (rank, world) of data-parallel training (`training.distributed`): the pairs are
    shuffled with `order_generator` (the same on every rank; None: `generator`) into global
    batches of `batch_size`, and this rank takes every world-th pair of each; a last batch with
    fewer pairs than ranks is dropped, so every rank runs the same number of steps. The
    negatives come from `generator`, each rank's own.
    share: (worker, workers) of a DataLoader's sampling processes (`prepared_batches`): this
    one yields batches worker, worker + workers, ... of the epoch."""
    (rank, world), (worker, workers) = part, share
    order = torch.randperm(len(pairs), generator=order_generator or generator)
    for i, start in enumerate(range(0, len(pairs), batch_size)):
        chosen = order[start : start + batch_size]
        if world > 1:
            if len(chosen) < world:
                break
            chosen = chosen[rank::world]
        if i % workers != worker:
            continue
        batch = pairs[chosen]
        users, pos = batch[:, 0], batch[:, 1]
        yield users, pos, positives.sample_negatives(users, generator, n_negatives)


class _PreparedBatches(IterableDataset):
    """An epoch of `bpr_batches`, each passed through `prepare`; worker w of W makes batches
    w, w + W, ..., which the DataLoader hands out in order."""

    def __init__(self, pairs, positives, batch_size, n_negatives, order_seed, seed, part, prepare):
        self.pairs, self.positives, self.batch_size = pairs, positives, batch_size
        self.n_negatives = n_negatives
        self.order_seed, self.seed, self.part, self.prepare = order_seed, seed, part, prepare

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        generator = torch.Generator().manual_seed(self.seed * 1000 + worker)
        dgl.seed(self.seed * 1000 + worker)
        order = torch.Generator().manual_seed(self.order_seed)
        for batch in bpr_batches(self.pairs, self.positives, self.batch_size, generator, self.n_negatives,
                                 order_generator=order, part=self.part, share=(worker, workers)):
            yield self.prepare(batch)


def prepared_batches(pairs: torch.Tensor, positives: PositiveSet, batch_size: int, n_negatives: int, *,
                     order_seed: int, seed: int, prepare: Callable, num_workers: int,
                     part: tuple[int, int] = (0, 1)) -> DataLoader:
    """Producer-consumer: `num_workers` processes (one torch thread each) make an epoch's
    `bpr_batches` and `prepare` them (LightGCN/NGCF's sampled blocks) while the main process
    trains. The order comes from `order_seed` (the same on every rank), negatives and samples
    from `seed` and the worker."""
    return DataLoader(
        _PreparedBatches(pairs, positives, batch_size, n_negatives, order_seed, seed, part, prepare),
        batch_size=None, num_workers=num_workers, worker_init_fn=_one_thread if num_workers else None,
        prefetch_factor=4 if num_workers else None,
    )


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)
