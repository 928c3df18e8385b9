"""The seam between the pages and `predictors`: what the views ask for recommendations.

The lead wires these functions to `predictors` (recommend, similar, the model registry);
until then they serve the popular list from the imported ratings, no similar movies and
no metrics, and the pages say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from movie.models import Movie
from movie.selectors import popular_movies


@dataclass(frozen=True)
class Recommendations:
    model: str
    model_version: str | None
    fallback: bool  # True: the popular list, not the model's own ranking
    items: list[tuple[Movie, float]]  # best first
    reason: str | None = None  # why it fell back: "no_history" | "not_trained"
    source: str = "popular"  # "popular" | "published" | "fresh"
    as_of_event: str | None = None


def recommendations_for(*, visitor: str, model: str, k: int = 20) -> Recommendations:
    """Top-k movies for `visitor` from `model`. For now every model but `popular` falls back
    to the popular list (fallback=True); `popular` itself is that list, so no fallback."""
    fallback = model != "popular"
    return Recommendations(
        model=model,
        model_version=None,
        fallback=fallback,
        items=popular_movies(k=k),
        reason="not_trained" if fallback else None,
    )


def similar_movies(movie_id: int, k: int = 12) -> list[tuple[Movie, float]]:
    """Movies like `movie_id`, best first, as (movie, score); empty until a model is wired."""
    return []


def model_metrics(model_name: str) -> dict | None:
    """The newest published version's evaluation metrics (name → value), None if untrained."""
    return None
