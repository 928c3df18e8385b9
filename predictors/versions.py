"""Making a model's next version: train, evaluate, gate, publish, in one function.

`version_make` is the one place a version the site serves is made: `manage.py train` (the
site's first versions, which `make demo` trains with `--missing`, and any trained by hand) and
the scheduled retrain (`workers.tasks.retrain_models`) both call it, and differ only in what
they ask for: a full training, or a warm start from the live version on the ratings plus the
visitors' clicks (`predictors.retrain`), gated. The checkpoint folder is written by
`pytorch_models.training.train_model.publish`, the same writer `python -m pytorch_models.train
--out` uses, into a folder of the registry (`registry.publishing`), which renames it into place
and prunes the model's old versions.

Every version is measured on the held-out part of the same split of the ratings
(`predictors.training`). The gate (`gated=True`, the scheduled retrain):
- a model whose training data (ratings, features, visitor pairs) has the digest the live version
  was trained on is not trained at all: "unchanged";
- a new version is published only if its recall@20 is within RECALL_TOLERANCE of a fixed
  reference (`publish_gate`), never of the live version's, which would let each retrain lose a
  little more than the last.
A version made without the gate (a full training) is always published, and becomes the
reference of the gated versions after it. Workers and web processes switch at their next
request, since `registry.published` reads the newest version folder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from predictors import SIMILAR_MODEL, registry, retrieval
from predictors.retrain import RetrainBudget, WarmPlan, visitors_as_users, warm_plan
from predictors.training import TrainingData, data_digest, ratings_digest, training_dataset
from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.models.names import RECOMMENDERS, SEQUENCE_MODELS
from pytorch_models.serving.neighbours import neighbours_write
from pytorch_models.training import distributed
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model

log = logging.getLogger(__name__)

# Evaluate on the held-out split after every epoch, for the training curve in meta.json's
# `history` (the dashboard draws it). On ml-latest-small an evaluation took 0.04-0.06 s
# against a LightGCN epoch of 1.0-1.4 s (~4%), 0.07-0.26 s against NGCF's 7.5-25 s and
# 0.18 s against PinSage's 7-17 s (~1-2%): about 3 s on a 60-epoch LightGCN run. Not in a
# budgeted retrain, which evaluates once, at the end: its evaluations count in its seconds, and
# at 25M ratings one took about 30 s, while its epochs over the new pairs and the replay sample
# are short.
CURVE_EVERY = 1
# Held-out users ranked by each of those evaluations; past it, the same seeded sample of them
# every time for the same split. At MovieLens-25M (162,000 users), ranking every user through
# the exact graph filter took longer than fitting it. Recall@20's standard error over 20,000
# users is about 0.002, a tenth of the gate's tolerance at the site's recall. The graph filter
# is evaluated as the site serves it, from its published tables (`TrainOptions.eval_served`):
# the same scores on ml-latest-small, and at 25M ratings 20,000 users through the exact filter
# took about 25 minutes.
EVAL_USERS = 20_000
# Model options on the site's data that differ from the defaults (the papers' Gowalla settings).
# ml-latest-small has 610 users, so the graph filter's Gowalla rank (448 singular vectors)
# keeps most of the row space and its low-pass stops filtering. Recall@20 on the site's 80/20
# split by rank: .2221 (32), .2320 (64), .2331 (96), .2337 (128), .2186 (256), .1849 (448);
# 64 to 128 is a plateau, and 64 is the cheapest point on it.
SITE_OPTIONS = {"graphfilter": {"factor_dim": 64}}
RECALL_TOLERANCE = 0.02  # publish when recall@20 >= (1 - this) x the reference (publish_gate)
# Warm-started runs need a fraction of a cold start's epochs (DEFAULTS in pytorch_models.training.options).
RETRAIN_EPOCHS = {r.name: r.retrain_epochs for r in RECOMMENDERS}
# A warm start stepping over less than this share of the pairs (the replay sample of a large
# catalogue) trains at the model's `sampled_retrain_lr`. Adam's first step on a row moves it by
# about the learning rate whatever its gradient, and NGCF's trained embeddings are small (rms
# about 0.04): at 1M ratings one pass over 2.5% of the pairs took a trained NGCF's recall@20
# from .0561 to .0476 at its lr 2e-3 and to .0575 at 2e-4, while one pass over all of them did
# better at 2e-3 (.0701 against .0624). LightGCN moved by 1.2% or less either way (benchmarks.retrain_lr).
SAMPLED_BELOW = 0.5
SAMPLED_RETRAIN_LR = {r.name: r.sampled_retrain_lr for r in RECOMMENDERS if r.sampled_retrain_lr}


def retrain_lr(model: str, plan: WarmPlan) -> float | None:
    """The learning rate of `model`'s warm-started retrain by `plan`; None: the model's own."""
    return SAMPLED_RETRAIN_LR.get(model) if plan.share < SAMPLED_BELOW else None


@dataclass(frozen=True)
class VersionMade:
    """What `version_make` did: published a version, or why not."""

    model: str
    published: bool
    version: str | None  # the new version when published, else the live one
    reason: str  # "published", "unchanged" (the live version's data), or why the gate refused it
    metrics: dict = field(default_factory=dict)  # the new version's held-out metrics; {} if none trained
    live_recall: float | None = None  # the live version's recall@20, when the live version was consulted
    reference_recall: float | None = None  # what the gate measured it against (publish_gate)

    @property
    def recall(self) -> float | None:
        return self.metrics.get("recall@20")

    def summary(self) -> dict:
        """The figures the retrain task returns for the model (JSON, for Celery's result)."""
        return {"model": self.model, "published": self.published, "version": self.version,
                "recall": self.recall, "live_recall": self.live_recall, "reason": self.reason,
                "reference_recall": self.reference_recall}


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


def version_make(
    *, model: str, training_data: TrainingData, visitor_pairs: Sequence[tuple[str, int]] | None = None,
    dismissals: Sequence[tuple[str, int]] = (), epochs: int | None = None, progress: bool = False,
    warm_start: bool = False, gated: bool = False, budget: RetrainBudget | None = None,
) -> VersionMade:
    """Train `model`, evaluate it on the held-out ratings and publish it as the model's newest
    version, unless the gate says no.

    visitor_pairs: (visitor, movie id) pairs, each visitor trained as a user of its own
    (`predictors.retrain.visitors_as_users`) and named by digest in the version's visitors.json;
    None: the ratings alone. dismissals: (visitor, movie id) pairs of "Not interested", which
    BPR draws as those visitors' negatives (LightGCN, NGCF). epochs: None takes the model's
    default (RETRAIN_EPOCHS with a warm start). warm_start: begin from the live version's
    weights where they fit (models learnt by gradient descent; the others have no parameters
    to carry). gated: skip an unchanged model
    and refuse a version below the reference (the module's docstring). budget: the scheduled
    retrain's bounds (`predictors.retrain.RetrainBudget`): its seconds and sampling processes,
    and with a warm start, batches of the new pairs and a replay sample, seeded by the data's
    digest (the same data draws the same sample, the next retrain's data another); None: the
    whole train split, unbounded.
    Raises ValueError when there are no ratings to train on."""
    live = registry.published(model) if warm_start or gated else None
    live_recall = live.checkpoint.meta.get("metrics", {}).get("recall@20") if live else None
    digest, split = data_digest(training_data, visitor_pairs or (), dismissals), ratings_digest(training_data)
    if gated and live is not None and live.checkpoint.meta.get("data", {}).get("digest") == digest:
        log.info("%s not trained: the training data is the one %s was trained on", model, live.version)
        registry.versions_prune_logged(model)  # superseded versions whose grace has run out since
        return VersionMade(model, False, live.version, "unchanged", live_recall=live_recall)

    by_time = model in SEQUENCE_MODELS
    if visitor_pairs is None:
        (interactions, features), visitors = training_dataset(training_data, by_time=by_time), None
    else:
        interactions, features, visitors = visitors_as_users(training_data, visitor_pairs, dismissals,
                                                             by_time=by_time)
    plan = (warm_plan(model, live, interactions, visitors, budget=budget, seed=int(digest[:8], 16))
            if warm_start else WarmPlan())
    if epochs is None and warm_start:
        epochs = RETRAIN_EPOCHS[model]
    # A warm start needs no spectral start: the live version's rows replace it wherever they
    # match, and a new visitor's row is folded in from its movies' (`training.warm_start`). At
    # 25M ratings the spectral starts took 1.9 minutes of a retrain.
    options = TrainOptions(epochs=epochs, lr=retrain_lr(model, plan), progress=progress,
                           eval_every=None if budget else CURVE_EVERY,
                           eval_users=EVAL_USERS, eval_served=True,
                           init="random" if plan.initialise else None,
                           config_overrides=SITE_OPTIONS.get(model, {}),
                           time_budget_s=budget.seconds if budget else None,
                           num_workers=budget.sampling_workers if budget else TrainOptions.num_workers)
    result = train_model(model, interactions, features, options, initialise=plan.initialise,
                         batch_pairs=plan.batch_pairs, singular_start=plan.singular_start)
    rank = distributed.current().rank
    if rank:  # a rank of a distributed retrain (`workers.retrain`)
        return VersionMade(model, False, None, f"trained as rank {rank}; rank 0 publishes")
    recall = result.metrics.get("recall@20")
    reference = gate_reference(live.checkpoint.meta, live.version) if gated and live else None
    refused, carried = publish_gate(recall=recall, split=split, reference=reference)
    if refused:
        log.warning("%s new version not published: %s", model, refused)
        registry.versions_prune_logged(model)
        return VersionMade(model, False, live.version, refused, result.metrics, live_recall,
                           reference["recall@20"])

    dataset = {"source": "catalogue", "digest": digest, "ratings_digest": split}
    if visitors is not None:
        dataset.update(source="catalogue+visitors", n_visitors=len(visitors),
                       n_visitor_interactions=len(visitor_pairs),
                       n_visitor_negatives=0 if interactions.negatives is None
                       else len(interactions.negatives))
    if plan.replay is not None:
        dataset["replay"] = plan.replay
    with registry.publishing(model) as folder:
        gate = carried or {"recall@20": recall, "version": registry.version_of(folder),
                           "ratings_digest": split}
        extra_meta = {"gate": gate}
        if warm_start:
            extra_meta["warm_start"] = live.version if plan.warm else None
        publish(result, interactions, folder, item_features=features, visitors=visitors, dataset=dataset,
                extra_meta=extra_meta)
        checkpoint = load_checkpoint(folder)
        retrieval.indexes_write(folder, checkpoint)  # above ANN_MIN_ITEMS only
        if model == SIMILAR_MODEL:
            neighbours_write(folder, checkpoint.item_embeddings, progress=progress)
    version = registry.version_of(folder)
    log.info("%s published %s: recall@20 %s (live %s, reference %s)", model, version, recall, live_recall,
             gate["recall@20"])
    return VersionMade(model, True, version, "published", result.metrics, live_recall, gate["recall@20"])
