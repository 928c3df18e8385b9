"""The recommenders, in the order the site lists them: the one list everything else reads.

Nothing here imports torch, so the Django settings, the local stack and the benchmarks can
read the list without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recommender:
    name: str  # URL segment, checkpoint folder, cache and metric key
    label: str  # what pages call it
    fine_tuned_live: bool  # the workers fine-tune it on each click; otherwise a visitor's list is
    # scored from the published tables on request (the graph filter's closed form, popular's counts)
    retrain_epochs: int  # epochs of the scheduled retrain, warm-started from the live version


RECOMMENDERS = (
    Recommender("pinsage", "PinSage", True, 2),
    Recommender("ngcf", "NGCF", True, 10),
    Recommender("lightgcn", "LightGCN", True, 15),
    Recommender("graphfilter", "Graph filter", False, 0),
    Recommender("popular", "Popular", False, 0),
)
NAMES = tuple(r.name for r in RECOMMENDERS)
FINE_TUNED_LIVE = tuple(r.name for r in RECOMMENDERS if r.fine_tuned_live)
POPULAR = "popular"
