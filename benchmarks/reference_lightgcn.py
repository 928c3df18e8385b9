"""The baseline for benchmarks/epoch_speed.py: one LightGCN training epoch written the way
the reference LightGCN-PyTorch code (gusye1234/LightGCN-PyTorch) does it.

- Sampling (`UniformSample_original_python`): a Python loop over n_train samples, each a
  random user, a random positive and a negative redrawn until it is not a positive.
- Propagation (`LightGCN.computer`): a coalesced COO `torch.sparse.mm` per layer, the layers
  stacked and averaged; autograd transposes the COO matrix in every backward pass.
- Loss (`BPRLoss.stageOne`): softplus BPR plus weight_decay · ½‖ego‖² / B.

Only the benchmark uses this; the models live in pytorch_models/.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn


def sample_python(train: np.ndarray, n_users: int, n_items: int, rng: np.random.Generator) -> np.ndarray:
    """(n_train, 3) [user, positive, negative] rows, one Python iteration per sample."""
    positives = [[] for _ in range(n_users)]
    for user, item in train:
        positives[user].append(item)
    positives = [np.asarray(items) for items in positives]
    samples = []
    for user in rng.integers(0, n_users, len(train)):
        items = positives[user]
        if len(items) == 0:
            continue
        positive = items[rng.integers(0, len(items))]
        while True:
            negative = rng.integers(0, n_items)
            if negative not in items:
                break
        samples.append([user, positive, negative])
    return np.asarray(samples)


def coo_graph(train: np.ndarray, n_users: int, n_items: int) -> torch.Tensor:
    """D^-1/2 A D^-1/2 as a coalesced torch COO tensor, built through scipy as the reference does."""
    n = n_users + n_items
    r = sp.coo_matrix((np.ones(len(train), np.float32), (train[:, 0], train[:, 1])), shape=(n_users, n_items))
    adjacency = sp.bmat([[None, r], [r.T, None]]).tocsr()
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    inv_sqrt = np.power(degree, -0.5, where=degree > 0, out=np.zeros_like(degree))
    norm = (sp.diags(inv_sqrt) @ adjacency @ sp.diags(inv_sqrt)).tocoo()
    index = torch.from_numpy(np.stack([norm.row, norm.col]).astype(np.int64))
    return torch.sparse_coo_tensor(index, torch.from_numpy(norm.data), (n, n)).coalesce()


class ReferenceLightGCN(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int = 64, layers: int = 3):
        super().__init__()
        self.n_users, self.layers = n_users, layers
        self.embedding_user = nn.Embedding(n_users, dim)
        self.embedding_item = nn.Embedding(n_items, dim)
        nn.init.normal_(self.embedding_user.weight, std=0.1)
        nn.init.normal_(self.embedding_item.weight, std=0.1)

    def computer(self, graph: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        all_emb = torch.cat([self.embedding_user.weight, self.embedding_item.weight])
        embs = [all_emb]
        for _ in range(self.layers):
            all_emb = torch.sparse.mm(graph, all_emb)
            embs.append(all_emb)
        out = torch.stack(embs, dim=1).mean(dim=1)
        return out[: self.n_users], out[self.n_users :]

    def bpr_loss(self, graph, users, pos, neg, weight_decay: float) -> torch.Tensor:
        all_users, all_items = self.computer(graph)
        u, p, n = all_users[users], all_items[pos], all_items[neg]
        reg = 0.5 * (
            self.embedding_user(users).norm(2).pow(2)
            + self.embedding_item(pos).norm(2).pow(2)
            + self.embedding_item(neg).norm(2).pow(2)
        ) / len(users)
        loss = nn.functional.softplus((u * n).sum(1) - (u * p).sum(1)).mean()
        return loss + weight_decay * reg


def epoch_seconds(
    train: np.ndarray, n_users: int, n_items: int, *, batch_size: int = 2048, max_batches: int | None = None,
    seed: int = 0,
) -> dict:
    """Time one reference epoch: sampling, then the training batches.

    With max_batches the batch loop stops early and the epoch time counts every batch at the
    median batch time measured (the sampling is always timed in full).
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    graph = coo_graph(train, n_users, n_items)
    model = ReferenceLightGCN(n_users, n_items)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    started = time.perf_counter()
    samples = torch.from_numpy(sample_python(train, n_users, n_items, rng))
    sampling = time.perf_counter() - started
    samples = samples[torch.randperm(len(samples))]
    n_batches = (len(samples) + batch_size - 1) // batch_size
    batch_times = []
    for start in range(0, len(samples), batch_size)[: max_batches or n_batches]:
        t0 = time.perf_counter()
        batch = samples[start : start + batch_size]
        loss = model.bpr_loss(graph, batch[:, 0], batch[:, 1], batch[:, 2], weight_decay=1e-4)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        batch_times.append(time.perf_counter() - t0)
    per_batch = float(np.median(batch_times))
    return {
        "sampling_seconds": sampling,
        "median_batch_seconds": per_batch,
        "batches_timed": len(batch_times),
        "n_batches": n_batches,
        "epoch_seconds": sampling + per_batch * n_batches,
    }
