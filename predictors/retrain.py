"""The scheduled retrain: everyone's clicks folded into the next published version.

Each model trains on the imported ratings plus every visitor's current history (each visitor
a user node, all of its clicks training edges), warm-started from the live version (rows
matched by movie id and by user: a MovieLens user id, or a visitor's digest). The held-out
split covers MovieLens users only, and is the same split the live version was measured on,
so the two recall@20 figures compare; the new version is published only if its recall is
within RECALL_TOLERANCE of the live one's. Workers and web processes switch at their next
request, since `registry.published` reads the newest version folder.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from predictors import registry
from predictors.training import CURVE_EVERY, SITE_OPTIONS, TrainingData, training_dataset
from predictors.visitor_state import visitor_digest
from pytorch_models.recommenders import FINE_TUNED_LIVE, RECOMMENDERS
from pytorch_models.train import TrainOptions, publish, train_model
from pytorch_models.warm_start import warm_start

log = logging.getLogger(__name__)

RECALL_TOLERANCE = 0.02  # publish when recall@20 >= (1 - this) x the live version's
# Warm-started runs need a fraction of a cold start's epochs (DEFAULTS in pytorch_models.train_options).
RETRAIN_EPOCHS = {r.name: r.retrain_epochs for r in RECOMMENDERS}


@dataclass(frozen=True)
class RetrainResult:
    model: str
    published: bool
    version: str | None  # the new version when published, else the live one
    recall: float | None
    live_recall: float | None
    reason: str


def _with_visitors(training_data: TrainingData, visitor_pairs: Sequence[tuple[str, int]]):
    """(the training data with visitors as users, digest -> synthetic user id)."""
    first = max((u for u, _ in training_data.pairs), default=0) + 1
    digests = sorted({visitor_digest(v) for v, _ in visitor_pairs})
    user_of = {digest: first + i for i, digest in enumerate(digests)}
    pairs = [*training_data.pairs, *((user_of[visitor_digest(v)], m) for v, m in visitor_pairs)]
    return dataclasses.replace(training_data, pairs=pairs), user_of


def _keys(user_ids: np.ndarray, digest_of_id: dict[int, str]) -> list[str]:
    return [digest_of_id.get(int(u), str(int(u))) for u in user_ids]


def retrain(*, model: str, training_data: TrainingData, visitor_pairs: Sequence[tuple[str, int]],
            epochs: int | None = None, progress: bool = False) -> RetrainResult:
    """Train `model` on ratings + visitors, warm from the live version; publish if not worse."""
    full, user_of = _with_visitors(training_data, visitor_pairs)
    interactions, features = training_dataset(full)
    visitor_rows = np.searchsorted(interactions.user_ids, list(user_of.values()))
    held_visitors = np.isin(interactions.test[:, 0], visitor_rows)
    interactions.train = np.concatenate([interactions.train, interactions.test[held_visitors]])
    interactions.test = interactions.test[~held_visitors]
    digest_of_id = {user_id: digest for digest, user_id in user_of.items()}

    live = registry.published(model)
    initialise = None
    if live is not None and model in FINE_TUNED_LIVE:  # the others have no parameters to carry
        old = live.checkpoint
        old_digest = {row: digest for digest, row in old.meta.get("visitors", {}).items()}
        old_keys = [old_digest.get(row, str(int(u))) for row, u in enumerate(old.graph().user_ids)]

        def initialise(new_model):
            carried = warm_start(new_model, old, item_ids=interactions.item_ids, checkpoint_user_keys=old_keys,
                                 user_keys=_keys(interactions.user_ids, digest_of_id))
            log.info("%s warm start from %s: %s", model, live.version, carried)

    epochs = RETRAIN_EPOCHS[model] if epochs is None else epochs
    options = TrainOptions(epochs=epochs, progress=progress, eval_every=CURVE_EVERY,
                           config_overrides=SITE_OPTIONS.get(model, {}))
    result = train_model(model, interactions, features, options, initialise=initialise)
    recall = result.metrics.get("recall@20")
    live_recall = live.checkpoint.meta.get("metrics", {}).get("recall@20") if live else None
    if live_recall is not None and recall is not None and recall < (1 - RECALL_TOLERANCE) * live_recall:
        reason = f"recall@20 {recall:.4f} is more than {RECALL_TOLERANCE:.0%} below the live {live_recall:.4f}"
        log.warning("%s retrain not published: %s", model, reason)
        return RetrainResult(model, False, live.version, recall, live_recall, reason)

    visitors = {digest: int(np.searchsorted(interactions.user_ids, user_id)) for digest, user_id in user_of.items()}
    with registry.publishing(model) as folder:
        publish(
            result, interactions, folder, item_features=features,
            dataset={"source": "catalogue+visitors", "n_visitors": len(visitors),
                     "n_visitor_interactions": len(visitor_pairs)},
            extra_meta={"visitors": visitors, "warm_start": live.version if initialise else None},
        )
    version = registry.latest_version(model)
    log.info("%s retrained and published %s: recall@20 %s (live %s)", model, version, recall, live_recall)
    return RetrainResult(model, True, version, recall, live_recall, "published")
