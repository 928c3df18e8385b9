"""The scheduled retrain: everyone's clicks folded into the next published version.

Each model trains on the imported ratings plus every visitor's current history (each visitor
a user node, all of its clicks training edges), warm-started from the live version (rows
matched by movie id and by user: a MovieLens user id, or a visitor's digest). What one
visitor and one client address weigh in it is capped (`movie.tracking.selectors.visitor_interactions`).

A model whose training data (ratings, features, the capped visitor pairs) has the digest the
live version was trained on is not retrained: "unchanged". The held-out split covers
MovieLens users only, and is the same split every version since the ratings were imported
was measured on, so recall@20 figures compare across them. A new version is published only
if its recall is within RECALL_TOLERANCE of a fixed reference (`publish_gate`), never of the
live version's, which would let each retrain lose a little more than the last. Workers and
web processes switch at their next request, since `registry.published` reads the newest
version folder; old versions are pruned (`registry.versions_prune`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from predictors import registry
from predictors.training import (
    CURVE_EVERY,
    SITE_OPTIONS,
    TrainingData,
    data_digest,
    ratings_digest,
    training_dataset,
)
from predictors.visitor_state import visitor_digest
from pytorch_models.models.names import GRADIENT_TRAINED_MODELS, RECOMMENDERS
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model
from pytorch_models.training.warm_start import warm_start

log = logging.getLogger(__name__)

RECALL_TOLERANCE = 0.02  # publish when recall@20 >= (1 - this) x the reference (publish_gate)
# Warm-started runs need a fraction of a cold start's epochs (DEFAULTS in pytorch_models.training.options).
RETRAIN_EPOCHS = {r.name: r.retrain_epochs for r in RECOMMENDERS}


@dataclass(frozen=True)
class RetrainResult:
    model: str
    published: bool
    version: str | None  # the new version when published, else the live one
    recall: float | None
    live_recall: float | None
    reason: str  # "published", "unchanged" (the live version's data), or why the gate refused it
    reference_recall: float | None = None  # what the gate measured it against (publish_gate)


def _with_visitors(training_data: TrainingData, visitor_pairs: Sequence[tuple[str, int]]):
    """(the training data with visitors as users, digest -> synthetic user id)."""
    first = max((u for u, _ in training_data.pairs), default=0) + 1
    digests = sorted({visitor_digest(v) for v, _ in visitor_pairs})
    user_of = {digest: first + i for i, digest in enumerate(digests)}
    pairs = [*training_data.pairs, *((user_of[visitor_digest(v)], m) for v, m in visitor_pairs)]
    return dataclasses.replace(training_data, pairs=pairs), user_of


def _keys(user_ids: np.ndarray, digest_of_id: dict[int, str]) -> list[str]:
    return [digest_of_id.get(int(u), str(int(u))) for u in user_ids]


def gate_reference(meta: dict, version: str) -> dict:
    """The reference a version's successors are measured against: the one it carries in
    meta.json's `gate`, or (a version published before the gate) its own recall@20."""
    if "gate" in meta:
        return meta["gate"]
    return {"recall@20": meta.get("metrics", {}).get("recall@20"), "version": version,
            "ratings_digest": meta.get("data", {}).get("ratings_digest")}


def publish_gate(*, recall: float | None, split: str,
                 reference: dict | None) -> tuple[str | None, dict | None]:
    """(why the new version is not published, or None; the reference it carries, None: itself).

    The reference is the recall@20 of the model's last full training (`manage.py train`), or of
    the first version published since the ratings changed (a new split; figures on another
    split do not compare), carried from version to version unchanged. A fixed figure cannot
    drift: retrains each within 2% of the one before could otherwise walk it down without
    end. Not the best figure so far: a ratchet turns one lucky run (the run-to-run spread of
    recall on ml-latest-small is of the order of the tolerance) into a bar that can stop every
    later retrain."""
    if (reference is None or reference.get("recall@20") is None
            or reference.get("ratings_digest") not in (None, split)):
        return None, None
    carried = {**reference, "ratings_digest": split}
    if recall is None:
        return None, carried
    floor = (1 - RECALL_TOLERANCE) * reference["recall@20"]
    if recall < floor:
        return (f"recall@20 {recall:.4f} is more than {RECALL_TOLERANCE:.0%} below the reference "
                f"{reference['recall@20']:.4f} ({reference.get('version')})"), None
    return None, carried


def retrain(*, model: str, training_data: TrainingData, visitor_pairs: Sequence[tuple[str, int]],
            epochs: int | None = None, progress: bool = False) -> RetrainResult:
    """Train `model` on ratings + visitors, warm from the live version; publish if the data
    changed and the new version is not worse than the reference."""
    live = registry.published(model)
    live_recall = live.checkpoint.meta.get("metrics", {}).get("recall@20") if live else None
    digest, split = data_digest(training_data, visitor_pairs), ratings_digest(training_data)
    if live is not None and live.checkpoint.meta.get("data", {}).get("digest") == digest:
        log.info("%s not retrained: the training data is the one %s was trained on", model, live.version)
        registry.versions_prune_logged(model)  # superseded versions whose grace has run out since
        return RetrainResult(model, False, live.version, None, live_recall, "unchanged")

    full, user_of = _with_visitors(training_data, visitor_pairs)
    interactions, features = training_dataset(full)
    visitor_rows = np.searchsorted(interactions.user_ids, list(user_of.values()))
    held_visitors = np.isin(interactions.test[:, 0], visitor_rows)
    interactions.train = np.concatenate([interactions.train, interactions.test[held_visitors]])
    interactions.test = interactions.test[~held_visitors]
    digest_of_id = {user_id: digest for digest, user_id in user_of.items()}

    initialise = None
    if live is not None and model in GRADIENT_TRAINED_MODELS:  # the others have no parameters to carry
        old = live.checkpoint
        old_digest = {row: visitor for visitor, row in old.visitors().items()}
        old_keys = [old_digest.get(row, str(int(u))) for row, u in enumerate(old.graph().user_ids)]

        def initialise(new_model):
            carried = warm_start(new_model, old, item_ids=interactions.item_ids,
                                 checkpoint_user_keys=old_keys,
                                 user_keys=_keys(interactions.user_ids, digest_of_id))
            log.info("%s warm start from %s: %s", model, live.version, carried)

    epochs = RETRAIN_EPOCHS[model] if epochs is None else epochs
    options = TrainOptions(epochs=epochs, progress=progress, eval_every=CURVE_EVERY,
                           config_overrides=SITE_OPTIONS.get(model, {}))
    result = train_model(model, interactions, features, options, initialise=initialise)
    recall = result.metrics.get("recall@20")
    reference = gate_reference(live.checkpoint.meta, live.version) if live else None
    refused, carried = publish_gate(recall=recall, split=split, reference=reference)
    if refused:
        log.warning("%s retrain not published: %s", model, refused)
        registry.versions_prune_logged(model)
        return RetrainResult(model, False, live.version, recall, live_recall, refused, reference["recall@20"])

    visitors = {visitor: int(np.searchsorted(interactions.user_ids, user_id))
                for visitor, user_id in user_of.items()}
    with registry.publishing(model) as folder:
        gate = carried or {"recall@20": recall, "version": registry.version_of(folder),
                           "ratings_digest": split}
        publish(
            result, interactions, folder, item_features=features, visitors=visitors,
            dataset={"source": "catalogue+visitors", "n_visitors": len(visitors),
                     "n_visitor_interactions": len(visitor_pairs), "digest": digest, "ratings_digest": split},
            extra_meta={"gate": gate, "warm_start": live.version if initialise else None},
        )
    version = registry.version_of(folder)
    log.info("%s retrained and published %s: recall@20 %s (live %s, reference %s)", model, version, recall,
             live_recall, gate["recall@20"])
    return RetrainResult(model, True, version, recall, live_recall, "published", gate["recall@20"])
