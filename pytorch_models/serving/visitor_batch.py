"""A micro-batch of visitors for the live fold-in (`fold_in`), as flat index tensors, and the
draws a fine-tune step makes from it: positives, random negatives, the walk band's hard
negatives, the dismissal pairs, and the top k a visitor neither has nor dismissed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

MAX_POSITIVES = 256  # a visitor's items used per step (its newest first)


@dataclass
class VisitorBatch:
    """A micro-batch of visitors' histories as flat index tensors.

    items: (E,) item rows, each visitor's items contiguous; owner: (E,) the visitor (0..V-1)
    of each; count: (V,) items per visitor (> 0). user_row: (V,) the visitor's row in the
    version's training graph, or -1 when the version has never seen it. dismissed: (D,) item
    rows the visitors said "Not interested" to, dismissed_owner: (D,) whose.
    """

    items: torch.Tensor
    owner: torch.Tensor
    count: torch.Tensor
    user_row: torch.Tensor
    dismissed: torch.Tensor
    dismissed_owner: torch.Tensor

    @classmethod
    def from_histories(cls, histories: Sequence[Sequence[int]], user_rows: Sequence[int] | None = None,
                       dismissed: Sequence[Sequence[int]] | None = None):
        if any(len(h) == 0 for h in histories):
            raise ValueError("every visitor in a batch needs at least one item")
        count = torch.tensor([len(h) for h in histories], dtype=torch.int64)
        items = torch.tensor([i for h in histories for i in h], dtype=torch.int64)
        owner = torch.repeat_interleave(torch.arange(len(histories)), count)
        rows = [-1] * len(histories) if user_rows is None else list(user_rows)
        dismissed = [[] for _ in histories] if dismissed is None else dismissed
        return cls(items, owner, count, torch.tensor(rows, dtype=torch.int64),
                   torch.tensor([i for d in dismissed for i in d], dtype=torch.int64),
                   torch.repeat_interleave(torch.arange(len(histories)),
                                           torch.tensor([len(d) for d in dismissed], dtype=torch.int64)))

    def __len__(self) -> int:
        return len(self.count)

    def segment_sum(self, values: torch.Tensor) -> torch.Tensor:
        """(E, d) per-item values -> (V, d) sums per visitor."""
        return torch.zeros(len(self), values.shape[1], dtype=values.dtype).index_add(0, self.owner, values)

    def recent(self, cap: int) -> torch.Tensor:
        """(E,) mask of each visitor's newest `cap` items (histories are oldest first)."""
        ends = torch.cumsum(self.count, 0)[self.owner]
        return ends - torch.arange(len(self.items)) <= cap

    def positives(self, cap: int = MAX_POSITIVES) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(items, owners, weights) of the pairs a fine-tune step trains on: each visitor's newest
        `cap` items, weighted 1/count so each visitor's loss is its own mean."""
        keep = self.recent(cap)
        owners = self.owner[keep]
        return self.items[keep], owners, 1.0 / torch.bincount(owners, minlength=len(self)).float()[owners]

    def seen(self, n_items: int) -> torch.Tensor:
        """(V, n_items) bool: the visitor has the item, or dismissed it."""
        mask = torch.zeros(len(self), n_items, dtype=torch.bool)
        mask[self.owner, self.items] = True
        mask[self.dismissed_owner, self.dismissed] = True
        return mask

    def dismissal_pairs(self, generator=None) -> tuple[torch.Tensor, ...]:
        """(positives, negatives, owners, weights), one pair per dismissal: a movie of the
        visitor's history drawn uniformly against the dismissed movie, weighted 1/dismissals so
        a visitor's dismissals weigh as much together as its positives."""
        owners = self.dismissed_owner
        starts = torch.cumsum(self.count, 0) - self.count
        pick = starts[owners] + (torch.rand(len(owners), generator=generator) * self.count[owners]).long()
        weight = 1.0 / torch.bincount(owners, minlength=len(self)).float()[owners]
        return self.items[pick], self.dismissed, owners, weight


def draw_weights(weight: torch.Tensor) -> torch.Tensor:
    """(I,) float64 cumulative shares of `weight`, for `_random_negatives`: drawing against them
    costs a binary search a draw, where `torch.multinomial` reads all I weights every call
    (0.09 ms at 62,423 movies, up to six calls a step)."""
    cumulative = torch.cumsum(weight.double(), 0)
    return cumulative / cumulative[-1]


def _random_negatives(owners: torch.Tensor, m: int, seen: torch.Tensor, n_items: int, generator,
                       cumulative: torch.Tensor | None = None) -> torch.Tensor:
    """(P, m) items drawn for each pair's visitor, uniformly or by the shares `cumulative`
    (`draw_weights`), redrawn (a few times) if seen."""
    def draw(count: int) -> torch.Tensor:
        if cumulative is None:
            return torch.randint(0, n_items, (count,), generator=generator)
        # The first item whose cumulative share passes u: an item of weight 0 is never drawn.
        found = torch.searchsorted(cumulative, torch.rand(count, generator=generator, dtype=torch.float64),
                                   right=True)
        return found.clamp_(max=n_items - 1)

    neg = draw(len(owners) * m).view(len(owners), m)
    for _ in range(5):
        bad = seen[owners.unsqueeze(1), neg]
        if not bad.any():
            break
        neg[bad] = draw(int(bad.sum()))
    return neg


def top_unseen(scores: torch.Tensor, batch: VisitorBatch, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, item rows) of each visitor's top k among items it neither has nor dismissed;
    scores (V, I) are modified in place."""
    scores[batch.owner, batch.items] = float("-inf")
    scores[batch.dismissed_owner, batch.dismissed] = float("-inf")
    hidden = batch.count + torch.bincount(batch.dismissed_owner, minlength=len(batch))
    return torch.topk(scores, min(k, scores.shape[1] - int(hidden.max())), dim=1)


def middle_band(visits: torch.Tensor, seen: torch.Tensor, band: tuple[int, int]) -> torch.Tensor:
    """(V, hi - lo) items ranked lo..hi-1 by visit count among the unseen, -1 where the walks
    visited fewer (the paper's hard negatives: related, but not the closest)."""
    lo, hi = band
    counts = visits.masked_fill(seen, -1).float()
    values, order = torch.topk(counts, min(hi, counts.shape[1]), dim=1)
    order[values <= 0] = -1
    return order[:, lo:hi]


def sample_band(band: torch.Tensor, owners: torch.Tensor, m: int, n_items: int, generator) -> torch.Tensor:
    """(P, m) items from each pair's visitor's band; a uniform item where the band is empty."""
    uniform = torch.randint(0, n_items, (len(owners), m), generator=generator)
    if band.shape[1] == 0:
        return uniform
    rows = band[owners]  # (P, W)
    available = (rows >= 0).sum(1, keepdim=True)  # valid entries come first
    pick = (torch.rand(len(owners), m, generator=generator) * available.clamp(min=1)).long()
    chosen = rows.gather(1, pick)
    return torch.where(chosen >= 0, chosen, uniform)
