"""Full-ranking top-K metrics (LightGCN paper code definitions), batched over users.

Every item is ranked for every user with test items; the user's training items are masked
out. Relevance is binary. recall = hits / |test|; precision = hits / K; ndcg = DCG / IDCG with
IDCG over min(K, |test|) ideal hits; hit = any hit; mrr = 1 / rank of the first hit (0 if none).

`users_max` bounds the cost: past it, a seeded uniform sample of that many users with test
items is ranked instead of all of them (at MovieLens-25M's 162,000 users, ranking every one
dominated a retrain). The same split and seed give the same sample.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from pytorch_models.linalg import row_pointers

# 1024 users × 40,981 Gowalla items is a 160 MB score chunk; topk over it takes ~0.1 s.
DEFAULT_BATCH = 1024


def _csr(pairs: np.ndarray, n_users: int) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = torch.as_tensor(np.asarray(pairs), dtype=torch.int64).reshape(-1, 2)
    order = torch.argsort(pairs[:, 0], stable=True)
    items = pairs[order, 1]
    return row_pointers(pairs[order, 0], n_users), items


def _rows(crow: torch.Tensor, items: torch.Tensor, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch row, item) coordinates of the listed users' items."""
    counts = crow[users + 1] - crow[users]
    batch_row = torch.repeat_interleave(torch.arange(len(users)), counts)
    offsets = (torch.arange(int(counts.sum()))
               - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts))
    return batch_row, items[crow[users][batch_row] + offsets]


@torch.no_grad()
def ranking_metrics(
    score_fn: Callable[[torch.Tensor], torch.Tensor],
    train_pairs: np.ndarray,
    test_pairs: np.ndarray,
    n_users: int,
    n_items: int,
    k: int = 20,
    batch_size: int = DEFAULT_BATCH,
    users_max: int | None = None,
    seed: int = 0,
    progress: str | None = None,
) -> dict[str, float]:
    """Mean recall/ndcg/precision/hit/mrr@k over users with at least one test item, or over
    `users_max` of them drawn with `seed` where there are more.

    score_fn: (B,) user rows -> (B, n_items) scores (higher is better). progress: a bar over the
    users, with this label (None: no bar).
    """
    train_crow, train_items = _csr(train_pairs, n_users)
    test_crow, test_items = _csr(test_pairs, n_users)
    n_test = test_crow[1:] - test_crow[:-1]
    users = users_sample(torch.nonzero(n_test > 0).flatten(), users_max, seed)
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64))
    ideal = torch.cumsum(discounts, 0)
    totals = dict.fromkeys(("recall", "ndcg", "precision", "hit", "mrr"), 0.0)
    bar = tqdm(total=len(users), desc=progress, unit="user", disable=progress is None)
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        scores = score_fn(batch).float().clone()  # (B, n_items)
        scores[_rows(train_crow, train_items, batch)] = float("-inf")
        top = torch.topk(scores, min(k, n_items), dim=1).indices  # (B, k)
        relevant = torch.zeros(len(batch), n_items, dtype=torch.bool)
        relevant[_rows(test_crow, test_items, batch)] = True
        hits = torch.gather(relevant, 1, top).double()  # (B, k)
        n_hits = hits.sum(1)
        size = n_test[batch].double()
        dcg = (hits * discounts[: hits.shape[1]]).sum(1)
        idcg = ideal[(size.clamp(max=k) - 1).long()]
        first = torch.where(hits.any(1), hits.argmax(1).double() + 1, torch.inf)
        totals["recall"] += float((n_hits / size).sum())
        totals["ndcg"] += float((dcg / idcg).sum())
        totals["precision"] += float((n_hits / k).sum())
        totals["hit"] += float((n_hits > 0).double().sum())
        totals["mrr"] += float((1.0 / first).sum())
        bar.update(len(batch))
    bar.close()
    n = max(len(users), 1)
    result = {f"{name}@{k}": value / n for name, value in totals.items()}
    result["n_users_evaluated"] = int(len(users))
    return result


def users_sample(users: torch.Tensor, users_max: int | None, seed: int) -> torch.Tensor:
    """`users` when at most `users_max` (None: no bound), else `users_max` of them drawn
    uniformly without replacement by `seed`, in their order."""
    if users_max is None or len(users) <= users_max:
        return users
    drawn = torch.randperm(len(users), generator=torch.Generator().manual_seed(seed))[:users_max]
    return users[drawn.sort().values]


def held_out_metrics(score_fn: Callable[[torch.Tensor], torch.Tensor], data, k: int = 20,
                     users_max: int | None = None, progress: str | None = None) -> dict[str, float]:
    """`ranking_metrics` of `score_fn` on the held-out split of `data` (an `Interactions`),
    its train pairs masked, over at most `users_max` users; empty when nothing is held out."""
    if len(data.test) == 0:
        return {}
    return ranking_metrics(score_fn, data.train, data.test, data.n_users, data.n_items, k=k,
                           users_max=users_max, progress=progress)
