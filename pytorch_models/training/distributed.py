"""Data-parallel training through torch.distributed: the same training code on one process or
on many, on one machine or several.

    python -m pytorch_models.train ...                                        # one process
    torchrun --nproc-per-node 2 -m pytorch_models.train ...                   # two on this machine
    torchrun --nnodes 2 --nproc-per-node 1 --rdzv-backend c10d \\
             --rdzv-endpoint HOST:PORT --rdzv-id RUN -m pytorch_models.train ...  # one on each of two

One process: `current()` is a single rank and nothing here communicates. Under torchrun,
`start` joins the process group its environment describes (gloo on the CPU, nccl on CUDA), and
every rank
- starts from rank 0's weights (`broadcast_parameters`);
- takes its own strided share of every global batch (the same shuffled order on every rank;
  `training.loops`), or for PinSage its own shard of the pairs its queries come from, with its
  own random negatives and its own sampled neighbourhoods;
- after each backward averages its gradients with the other ranks' (`average_gradients`), so
  every rank takes the Adam step one process would take on the global batch (the mean of the
  ranks' means: equal up to one pair per batch when the batch does not divide evenly);
- agrees with the others on when to stop (`any_rank`): each rank reads the time budget on its
  own clock, and a rank that stopped alone would leave the others waiting in a collective.
Rank 0 alone evaluates and publishes.

Why not DistributedDataParallel: a step here is not a `forward` call (a BPR loss over sampled
blocks, PinSage's hops), and DDP's reducer is armed by `forward`; the exchange below is the
same all-reduce, called after `backward`, plus a row-sparse one for embedding tables.

Embedding tables (LightGCN/NGCF's users and items, PinSage's id and feature tables): a sampled
step touches only its neighbourhood's rows, so each rank sends the indices and gradient rows
it touched and every rank adds all of them (duplicates add, as the dense sum would), instead of
all-reducing the whole table; when the ranks together touched half the table or more, the
dense all-reduce is cheaper and is used. Either way the result is the dense average.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

# How long a rank waits for the others in a collective: rank 0's evaluation between epochs
# and its layer-wise inference happen while the others wait.
TIMEOUT = timedelta(minutes=30)
# A table's rows travel sparsely while the ranks together touched fewer than this share of them.
SPARSE_BELOW = 0.5


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1

    @property
    def primary(self) -> bool:
        """Whether this rank evaluates and publishes."""
        return self.rank == 0

    @property
    def many(self) -> bool:
        return self.world > 1


def current() -> Ranks:
    """The process group this process has joined (`start`), or a single rank."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def device_for(name: str) -> torch.device:
    """The torch device "cpu" or "cuda" means for this process (under torchrun, CUDA's
    LOCAL_RANK-th GPU). Raises ValueError for CUDA where torch sees none."""
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda":
        raise ValueError(f"device {name!r}: expected 'cpu' or 'cuda'")
    if not torch.cuda.is_available():
        raise ValueError("device 'cuda': torch sees no CUDA device here (torch.cuda.is_available() is False)")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())


def start(device: str = "cpu") -> Ranks:
    """Join the process group torchrun describes in the environment (WORLD_SIZE > 1), with
    nccl for CUDA and gloo for the CPU; a no-op for one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if device == "cuda" else "gloo"
        if device == "cuda":
            torch.cuda.set_device(device_for(device))
        dist.init_process_group(backend, timeout=TIMEOUT)
    return current()


def stop() -> None:
    """Leave the process group, if this process joined one, once every rank has finished its
    collectives. The meeting point is the rendezvous store, not a gloo barrier: a barrier's
    last message can be lost when its sender tears the group down at once (seen: rank 0 past
    the barrier and gone, rank 1 waiting in it for the full TIMEOUT). Rank 0 leaves last, so
    a store that lives in rank 0's process outlives every rank's last question to it."""
    if dist.is_available() and dist.is_initialized():
        store, world = dist.distributed_c10d._get_default_store(), dist.get_world_size()
        _count_in(store, "cinegraph/stop/arrived", world)
        store.wait(["cinegraph/stop/arrived"])
        _count_in(store, "cinegraph/stop/left", world)
        if dist.get_rank() == 0:
            store.wait(["cinegraph/stop/left"])
        dist.destroy_process_group()


def _count_in(store: dist.Store, key: str, world: int) -> None:
    """Count this rank in at `key`; the last of the `world` ranks sets `key` for the waiters."""
    if store.add(f"{key}/count", 1) == world:
        store.set(key, "1")


def broadcast_parameters(model: nn.Module) -> None:
    """Every rank's parameters become rank 0's (a no-op for one process)."""
    if current().many:
        for tensor in [*model.parameters(), *model.buffers()]:
            dist.broadcast(tensor.data, src=0)


def any_rank(flag: bool, device: torch.device | None = None) -> bool:
    """Whether `flag` holds on any rank; every rank must call it at the same point."""
    if not current().many:
        return flag
    value = torch.tensor([int(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def mean_over_ranks(value: float, device: torch.device | None = None) -> float:
    """The mean of `value` over the ranks; every rank must call it at the same point."""
    if not current().many:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return float(total.item()) / current().world


def table_parameters(model: nn.Module) -> set[int]:
    """ids of the embedding tables' weights: the parameters whose gradients travel by rows."""
    return {id(module.weight) for module in model.modules() if isinstance(module, nn.Embedding)}


def average_gradients(model: nn.Module) -> None:
    """Replace every parameter's gradient by its mean over the ranks, in place (a no-op for one
    process). Embedding tables (`table_parameters`) travel by rows; the rest in one flat
    all-reduce. A parameter without a gradient counts as a zero one."""
    ranks = current()
    if not ranks.many:
        return
    tables = table_parameters(model)
    dense = []
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        if id(parameter) in tables and parameter.grad.dim() == 2:
            _average_rows(parameter.grad, ranks.world)
        else:
            dense.append(parameter.grad)
    if dense:
        flat = torch.cat([grad.reshape(-1) for grad in dense])
        dist.all_reduce(flat)
        flat /= ranks.world
        offset = 0
        for grad in dense:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()


def _average_rows(grad: torch.Tensor, world: int) -> None:
    """`grad` (R, d) <- the mean over the ranks of their (R, d) gradients, sending only the rows
    each rank touched while the ranks together touched fewer than SPARSE_BELOW of R."""
    rows = torch.nonzero(grad.abs().sum(1)).squeeze(1)
    counts = [torch.zeros(1, dtype=torch.int64, device=grad.device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([len(rows)], device=grad.device))
    counts = [int(c.item()) for c in counts]
    if sum(counts) >= SPARSE_BELOW * grad.shape[0]:
        dist.all_reduce(grad)
        grad /= world
        return
    width = max(counts)
    index = torch.full((width,), -1, dtype=torch.int64, device=grad.device)
    index[: len(rows)] = rows
    values = torch.zeros(width, grad.shape[1], dtype=grad.dtype, device=grad.device)
    values[: len(rows)] = grad[rows]
    indices = [torch.empty_like(index) for _ in range(world)]
    gathered = [torch.empty_like(values) for _ in range(world)]
    dist.all_gather(indices, index)
    dist.all_gather(gathered, values)
    grad.zero_()
    for index, values, count in zip(indices, gathered, counts, strict=True):
        grad.index_add_(0, index[:count], values[:count])
    grad /= world


def broadcast_json(value=None):
    """Rank 0's `value` (anything JSON can carry) on every rank, sent as UTF-8 bytes in a
    tensor (never pickled); the other ranks pass nothing. A no-op for one process."""
    if not current().many:
        return value
    data = json.dumps(value).encode() if current().primary else b""
    size = torch.tensor([len(data)], dtype=torch.int64)
    dist.broadcast(size, src=0)
    buffer = (torch.frombuffer(bytearray(data), dtype=torch.uint8) if current().primary
              else torch.empty(int(size.item()), dtype=torch.uint8))
    dist.broadcast(buffer, src=0)
    return value if current().primary else json.loads(buffer.numpy().tobytes())


def broadcast_array(array: np.ndarray | None = None) -> np.ndarray:
    """Rank 0's int64 `array` on every rank (its shape first, then its data); the other ranks
    pass nothing. A no-op for one process."""
    if not current().many:
        return array
    shape = broadcast_json(list(array.shape) if current().primary else None)
    tensor = (torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64)) if current().primary
              else torch.empty(shape, dtype=torch.int64))
    dist.broadcast(tensor, src=0)
    return tensor.numpy()


def strided(indices: torch.Tensor, ranks: Ranks | None = None) -> torch.Tensor:
    """This rank's share of `indices`: every world-th one from its rank."""
    ranks = current() if ranks is None else ranks
    return indices[ranks.rank :: ranks.world] if ranks.many else indices
