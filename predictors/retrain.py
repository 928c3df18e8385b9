"""The scheduled retrain's training data: the imported ratings plus every visitor's current
history, each visitor a user node and all of its clicks training edges; and what a retrain may
spend on it.

`workers.tasks.retrain_models` makes each model's next version from it with
`predictors.versions.version_make`, warm-started from the live version (rows matched by movie
id and by user: a MovieLens user id, or a visitor's digest) and gated: a model whose data did
not change is skipped, a version below the reference is not published. What one visitor and
one client address weigh in it is capped (`movie.tracking.selectors.visitor_interactions`).

A retrain is bounded (`RetrainBudget`, from settings): LightGCN, NGCF and PinSage train for at
most `RETRAIN_BUDGET_S` seconds each, on batches of the pairs new since the live version plus a
seeded replay sample of the old ones (`pytorch_models.training.replay`), with at most
`RETRAIN_THREADS` cores. The graph filter and popular are not budgeted: they are fitted in
closed form on the whole graph, in seconds on ml-latest-small.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from torch import nn

from predictors.registry import Published
from predictors.training import TrainingData, training_dataset
from predictors.visitor_digest import visitor_digest
from pytorch_models.data.interactions import Interactions, ItemFeatures
from pytorch_models.models.names import GRADIENT_TRAINED_MODELS, SEQUENCE_MODELS
from pytorch_models.training import distributed
from pytorch_models.training.replay import new_pair_mask, replay_rows
from pytorch_models.training.warm_start import item_rows
from pytorch_models.training.warm_start import warm_start as weights_carry

log = logging.getLogger(__name__)


def visitors_as_users(training_data: TrainingData, visitor_pairs: Sequence[tuple[str, int]],
                      dismissals: Sequence[tuple[str, int]] = (), *, by_time: bool = False
                      ) -> tuple[Interactions, ItemFeatures, dict[str, int]]:
    """(the interactions with every visitor a user, the movies' features, visitor digest -> user row).

    The held-out split covers MovieLens users only: a visitor's pairs all train. So it is the
    split every version since the ratings were imported was measured on, and their recall@20
    figures compare. A version names a visitor by its digest, never by its id. `dismissals`,
    (visitor, movie id) pairs of "Not interested", become `Interactions.negatives` for the
    visitors that are users (those with a positive pair): BPR draws them as negatives.
    by_time: the split by time (`training_dataset`), a visitor's pairs read as newest first
    (`movie.tracking.selectors.visitor_interactions` gives each visitor's so) and dated after
    every rating, a second apart, so a sequence model learns each visitor's clicks in order.
    Computed once per TrainingData, visitor pairs, dismissals and split (`TrainingData.kept`)."""
    return training_data.kept(("visitors_as_users", by_time),
                              lambda: _visitors_as_users(training_data, visitor_pairs, dismissals, by_time),
                              (visitor_pairs, dismissals))


def _visitors_as_users(training_data: TrainingData, visitor_pairs: Sequence[tuple[str, int]],
                       dismissals: Sequence[tuple[str, int]], by_time: bool
                       ) -> tuple[Interactions, ItemFeatures, dict[str, int]]:
    ratings = training_data.pair_array
    first = int(ratings[:, 0].max()) + 1 if len(ratings) else 1
    digests = sorted({visitor_digest(v) for v, _ in visitor_pairs})
    user_of = {digest: first + i for i, digest in enumerate(digests)}
    clicks = np.asarray([(user_of[visitor_digest(v)], m) for v, m in visitor_pairs], dtype=np.int64)
    pairs = np.concatenate([ratings, clicks.reshape(-1, 2)])
    with_visitors = dataclasses.replace(training_data, pairs=pairs)
    if by_time:
        stamps = _visitor_stamps(training_data, visitor_pairs)
        with_visitors = dataclasses.replace(with_visitors, stamps=stamps)
    interactions, features = training_dataset(with_visitors, by_time=by_time,
                                              train_only=list(user_of.values()))
    visitors = {digest: int(np.searchsorted(interactions.user_ids, user_id))
                for digest, user_id in user_of.items()}
    row_of_movie = {int(m): row for row, m in enumerate(interactions.item_ids)}
    negatives = [(visitors[visitor_digest(v)], row_of_movie[m]) for v, m in dismissals
                 if visitor_digest(v) in visitors and m in row_of_movie]
    if negatives:
        interactions.negatives = np.asarray(sorted(set(negatives)), dtype=np.int64)
    return interactions, features, visitors


def _visitor_stamps(training_data: TrainingData, visitor_pairs: Sequence[tuple[str, int]]) -> np.ndarray:
    """The ratings' stamps, then one per visitor pair: after the newest rating, each visitor's
    newest pair (its first) last."""
    if training_data.stamps is None:
        raise ValueError("a split by time needs each rating's time: a snapshot read with its stamps")
    stamps = np.asarray(training_data.stamps, dtype=np.int64)
    after = int(stamps.max()) + 1 if len(stamps) else 0
    remaining = Counter(v for v, _ in visitor_pairs)  # pairs of the visitor still to come
    visitor_stamps = []
    for visitor, _ in visitor_pairs:
        remaining[visitor] -= 1
        visitor_stamps.append(after + remaining[visitor])
    return np.concatenate([stamps, np.asarray(visitor_stamps, dtype=np.int64)])


@dataclass(frozen=True)
class RetrainBudget:
    """What a scheduled retrain may spend on each model trained in batches (webapp/settings.py
    says why each default): `seconds` of training (None: no limit), a replay sample of
    `replay_fraction` of the old pairs, at most `replay_max`, and `threads` cores."""

    seconds: float | None
    replay_fraction: float
    replay_max: int
    threads: int

    @classmethod
    def from_settings(cls) -> RetrainBudget:
        return cls(seconds=settings.RETRAIN_BUDGET_S or None,
                   replay_fraction=settings.RETRAIN_REPLAY_FRACTION, replay_max=settings.RETRAIN_REPLAY_MAX,
                   threads=settings.RETRAIN_THREADS)

    @property
    def sampling_workers(self) -> int:
        """PinSage's sampling processes: one beside the training thread when the retrain may
        keep two cores busy, else none (it samples between steps)."""
        return 1 if self.threads > 1 else 0


@dataclass(frozen=True)
class WarmPlan:
    """How a retrain starts and what it steps over: an `initialise` hook for `train_model`
    (None: nothing to carry), the batch pairs (None: every train pair), meta.json's
    `data.replay` (None when there is no sample), and the graph filter's singular vectors to
    start its SVD from (None: a random start)."""

    initialise: Callable[[nn.Module], None] | None = None
    batch_pairs: np.ndarray | None = None
    replay: dict | None = None
    singular_start: np.ndarray | None = None

    @property
    def warm(self) -> bool:
        return self.initialise is not None or self.singular_start is not None

    @property
    def share(self) -> float:
        """The share of the training pairs the batches step over (1.0 without a sample)."""
        if self.replay is None:
            return 1.0
        stepped, total = self.replay["new"] + self.replay["replayed"], self.replay["new"] + self.replay["old"]
        return stepped / total if total else 1.0


def snapshot_shared(training_data: TrainingData | None, visitor_pairs: Sequence[tuple[str, int]] | None,
                    dismissals: Sequence[tuple[str, int]] | None = ()
                    ) -> tuple[TrainingData, list[tuple[str, int]], list[tuple[str, int]]]:
    """Rank 0's training data, visitor pairs and dismissals on every rank of a distributed
    retrain (`workers.retrain` under torchrun: every rank must train on the very snapshot rank
    0 took, which a database read of its own a moment later would not be); the other ranks
    pass None. The rating pairs travel as one int64 array, the rest as JSON. One process: as
    given."""
    if not distributed.current().many:
        return training_data, list(visitor_pairs), list(dismissals)
    primary = distributed.current().primary
    pairs = distributed.broadcast_array(training_data.pair_array if primary else None)
    has_stamps = distributed.broadcast_json(training_data.stamps is not None if primary else None)
    stamps = distributed.broadcast_array(np.asarray(training_data.stamps, dtype=np.int64)
                                         if primary else None) if has_stamps else None
    rest = distributed.broadcast_json({**{f.name: getattr(training_data, f.name)
                                          for f in dataclasses.fields(TrainingData)
                                          if f.init and f.name not in _ARRAYS},
                                       "visitor_pairs": list(visitor_pairs),
                                       "dismissals": list(dismissals)} if primary else None)
    if primary:
        return training_data, list(visitor_pairs), list(dismissals)
    visitor_pairs = [(visitor, movie) for visitor, movie in rest.pop("visitor_pairs")]
    dismissals = [(visitor, movie) for visitor, movie in rest.pop("dismissals")]
    return TrainingData(**rest, pairs=pairs, stamps=stamps), visitor_pairs, dismissals


_ARRAYS = ("pairs", "stamps")  # the snapshot's fields that travel as arrays, not as JSON

def user_keys(user_ids, visitors: dict[str, int]) -> list[str]:
    """A key per user row that names the same user in every version: a visitor's digest, else
    the MovieLens user id."""
    digest_of_row = {row: digest for digest, row in visitors.items()}
    return [digest_of_row.get(row, str(int(user))) for row, user in enumerate(user_ids)]


def warm_plan(model: str, live: Published | None, interactions: Interactions, visitors: dict[str, int] | None,
              *, budget: RetrainBudget | None, seed: int) -> WarmPlan:
    """The warm start from `live` (models learnt by gradient descent; the others have no
    parameters to carry) and, with a `budget`, its batches: the pairs `live` did not train on
    and a replay sample of those it did, drawn with `seed`. Without a live version there is
    nothing to start from or to replay against: every pair. SASRec trains on every user's
    sequence for the budget's seconds: a sequence's next items are its batches' targets. The
    graph filter's SVD starts from the live version's singular vectors (`linalg.top_singular`):
    at 25M ratings its 1,024 vectors were most of a retrain's refit."""
    if live is not None and "spectral_vectors" in live.checkpoint.extra:
        return WarmPlan(singular_start=item_rows(live.checkpoint.extra["spectral_vectors"].numpy(),
                                                 checkpoint_item_ids=live.checkpoint.item_ids,
                                                 item_ids=interactions.item_ids))
    if live is None or model not in GRADIENT_TRAINED_MODELS:
        return WarmPlan()
    old = live.checkpoint
    old_graph = old.graph()
    old_keys = user_keys(old_graph.user_ids, old.visitors())
    new_keys = user_keys(interactions.user_ids, visitors or {})

    def initialise(new_model):
        carried = weights_carry(new_model, old, item_ids=interactions.item_ids, checkpoint_user_keys=old_keys,
                                user_keys=new_keys, train=interactions.train)
        log.info("%s warm start from %s: %s", model, live.version, carried)

    if budget is None or model in SEQUENCE_MODELS:  # SASRec steps over whole sequences, not pairs
        return WarmPlan(initialise)
    is_new = new_pair_mask(interactions.train, user_keys=new_keys, item_ids=interactions.item_ids,
                           old_train=old_graph.train_edges, old_user_keys=old_keys,
                           old_item_ids=old_graph.item_ids)
    rows = replay_rows(is_new, fraction=budget.replay_fraction, max_pairs=budget.replay_max, seed=seed)
    n_new = int(is_new.sum())
    replay = {"new": n_new, "replayed": len(rows) - n_new, "old": len(is_new) - n_new,
              "fraction": budget.replay_fraction, "max": budget.replay_max, "seed": seed}
    log.info("%s batches from %d new pairs and %d of %d old ones", model, n_new, replay["replayed"],
             replay["old"])
    return WarmPlan(initialise, interactions.train[rows], replay)
