"""The recommenders, in the order the site lists them, and every list of model names drawn from
them: the one place such a list is written.

Nothing here imports torch, so the Django settings, the local stack and the benchmarks can
read the lists without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recommender:
    name: str  # URL segment, checkpoint folder, cache and metric key
    label: str  # what pages call it
    gradient_trained: bool  # an nn.Module learnt by gradient descent (minutes); otherwise fitted in
    # closed form (the graph filter's SVD, popular's counts) in seconds, with no parameters to carry
    fine_tuned_live: bool  # the workers fine-tune it on each click; otherwise a visitor's list is
    # scored from the published tables on request (the graph filter's closed form, popular's counts)
    retrain_epochs: int  # epochs of the scheduled retrain, warm-started from the live version
    # Its scores from a history split exactly into one term per history movie ("because you
    # watched", `serving.explain`); SASRec's attention over the order does not split that way.
    explained: bool = True
    # It reads the history in order, oldest first (SASRec), and trains on each user's ratings in
    # time order, held out by time; the others see a set, held out at random.
    sequential: bool = False
    # The learning rate of a warm-started retrain that steps over only a sample of the data
    # (`predictors.versions.SAMPLED_BELOW`); None: the model's own. See benchmarks.retrain_lr.
    sampled_retrain_lr: float | None = None


RECOMMENDERS = (
    Recommender("pinsage", "PinSage", gradient_trained=True, fine_tuned_live=True, retrain_epochs=2),
    Recommender("ngcf", "NGCF", gradient_trained=True, fine_tuned_live=True, retrain_epochs=10,
                sampled_retrain_lr=2e-4),
    Recommender("lightgcn", "LightGCN", gradient_trained=True, fine_tuned_live=True, retrain_epochs=15),
    Recommender("sasrec", "SASRec", gradient_trained=True, fine_tuned_live=False, retrain_epochs=20,
                explained=False, sequential=True),
    Recommender("graphfilter", "Graph filter", gradient_trained=False, fine_tuned_live=False,
                retrain_epochs=0),
    Recommender("popular", "Popular", gradient_trained=False, fine_tuned_live=False, retrain_epochs=0,
                explained=False),
)
POPULAR = "popular"

# Every model the site serves (and `python -m pytorch_models.train` trains), in the site's order.
SERVED_MODELS = tuple(r.name for r in RECOMMENDERS)
# The models whose scores split into one term per history movie, which can therefore be explained.
EXPLAINED_MODELS = tuple(r.name for r in RECOMMENDERS if r.explained)
# The models learnt by gradient descent: the ones a warm start or a spectral start applies to.
GRADIENT_TRAINED_MODELS = tuple(r.name for r in RECOMMENDERS if r.gradient_trained)
# The models the live workers fine-tune on each click (their fresh lists sit in the cache); the
# others score a visitor's whole history on request (`predictors.recommend`).
FINE_TUNED_LIVE = tuple(r.name for r in RECOMMENDERS if r.fine_tuned_live)
# The models that learn from the order of each user's ratings: trained on a split by time.
SEQUENCE_MODELS = tuple(r.name for r in RECOMMENDERS if r.sequential)
# The models of free user and item ego embeddings propagated over the graph
# (`models.embedding`), trained with BPR: `--negative-candidates` and `EmbeddingFoldIn` apply.
EMBEDDING_MODELS = ("lightgcn", "ngcf")
