"""The scheduled retrain's training data: the imported ratings plus every visitor's current
history, each visitor a user node and all of its clicks training edges.

`workers.tasks.retrain_models` makes each model's next version from it with
`predictors.versions.version_make`, warm-started from the live version (rows matched by movie
id and by user: a MovieLens user id, or a visitor's digest) and gated: a model whose data did
not change is skipped, a version below the reference is not published. What one visitor and
one client address weigh in it is capped (`movie.tracking.selectors.visitor_interactions`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from predictors.training import TrainingData, training_dataset
from predictors.visitor_digest import visitor_digest
from pytorch_models.data.interactions import Interactions, ItemFeatures


def visitors_as_users(training_data: TrainingData, visitor_pairs: Sequence[tuple[str, int]]
                      ) -> tuple[Interactions, ItemFeatures, dict[str, int]]:
    """(the interactions with every visitor a user, the movies' features, visitor digest -> user row).

    The held-out split covers MovieLens users only: a visitor's pairs all train. So it is the
    split every version since the ratings were imported was measured on, and their recall@20
    figures compare. A version names a visitor by its digest, never by its id."""
    first = max((u for u, _ in training_data.pairs), default=0) + 1
    digests = sorted({visitor_digest(v) for v, _ in visitor_pairs})
    user_of = {digest: first + i for i, digest in enumerate(digests)}
    pairs = [*training_data.pairs, *((user_of[visitor_digest(v)], m) for v, m in visitor_pairs)]
    interactions, features = training_dataset(dataclasses.replace(training_data, pairs=pairs))
    visitors = {digest: int(np.searchsorted(interactions.user_ids, user_id))
                for digest, user_id in user_of.items()}
    held_visitors = np.isin(interactions.test[:, 0], list(visitors.values()))
    interactions.train = np.concatenate([interactions.train, interactions.test[held_visitors]])
    interactions.test = interactions.test[~held_visitors]
    return interactions, features, visitors
