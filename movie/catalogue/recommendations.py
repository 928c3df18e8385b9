"""The seam between the pages and `predictors`: movie ids in, Movie rows out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

from movie.catalogue.models import Movie
from movie.catalogue.selectors import movies_by_ids, popular_movies
from movie.tracking.selectors import visitor_movies
from predictors import SIMILAR_MODEL, registry
from predictors import recommend as predictors


@dataclass(frozen=True)
class MovieRecommendations(predictors.Recommendations[Movie]):
    """The served list (`predictors.recommend.Recommendations`) with Movie rows for its ids."""

    @property
    def because_per_item(self) -> list[list[Movie]]:
        """`because` aligned with `items`, for pages that zip it with their posters."""
        return [self.because.get(movie.id, []) for movie, _ in self.items]


def _with_movies(scored: list[tuple[int, float]]) -> list[tuple[Movie, float]]:
    score = dict(scored)
    return [(movie, score[movie.id]) for movie in movies_by_ids(score)]


def _explained(
    scored: list[tuple[int, float]], because: dict[int, list[int]]
) -> tuple[list[tuple[Movie, float]], dict[int, list[Movie]]]:
    """(items, because) as Movie rows, the recommended and the explaining movies in one query."""
    ids = dict.fromkeys([*dict(scored), *(h for explaining in because.values() for h in explaining)])
    movies = {movie.id: movie for movie in movies_by_ids(ids)}
    items = [(movies[m], s) for m, s in scored if m in movies]
    return items, {m: [movies[h] for h in explaining if h in movies] for m, explaining in because.items()}


def recommendations_for(*, visitor: str, model: str, k: int = 20, seen: list[int] | None = None,
                        dismissed: list[int] | None = None) -> MovieRecommendations:
    """Top-k movies for `visitor` from `model`, never one the visitor has clicked, rated or
    dismissed (`seen`, `dismissed`: those movie ids, when the caller has read them already)."""
    if seen is None or dismissed is None:
        seen, dismissed = visitor_movies(visitor)
    recs = predictors.recommend(visitor=visitor, model=model, k=k, history=seen, dismissed=dismissed)
    items, because = _explained(recs.items, recs.because)
    if not items and recs.source == "popular":
        # No popularity model published yet (a fresh site): count the imported ratings.
        items = popular_movies(k=k, exclude=[*seen, *dismissed])
    served = {f.name: getattr(recs, f.name) for f in fields(recs)}
    return MovieRecommendations(**{**served, "items": items, "because": because})



@dataclass(frozen=True)
class Similar:
    model: str
    model_version: str | None
    items: list[tuple[Movie, float]]  # best first


def similar_movies(movie_id: int, k: int = 12, exclude: Sequence[int] = ()) -> Similar:
    """Movies like `movie_id`, best first, from the live PinSage item embeddings; none of
    `exclude` (the visitor's dismissed movies)."""
    published = registry.published(SIMILAR_MODEL)
    return Similar(
        model=SIMILAR_MODEL,
        model_version=published.version if published else None,
        items=_with_movies(predictors.similar(movie_id=movie_id, k=k, model=SIMILAR_MODEL, exclude=exclude)),
    )


REPORTED_METRICS = ("recall@20", "ndcg@20", "hit@20", "precision@20", "mrr@20")


@dataclass(frozen=True)
class MeasuredMetrics:
    version: str
    n_users: int
    rows: list[tuple[str, float, float | None]]  # (metric, this model, popular baseline)
    by_time: bool  # held out each user's latest ratings (SASRec), not a random fifth


def _metrics(model_name: str) -> tuple[str, dict, bool] | None:
    """(live version, its held-out metrics, whether they were held out by time); None if untrained."""
    published = registry.published(model_name)
    if published is None:
        return None
    meta = published.checkpoint.meta
    by_time = meta.get("data", {}).get("split", {}).get("by") == "time"
    return published.version, meta.get("metrics", {}), by_time


def model_metrics(model_name: str) -> MeasuredMetrics | None:
    """The live version's held-out metrics beside the popular baseline's, when the baseline was
    held out the same way (figures on another split do not compare); None if untrained."""
    measured = _metrics(model_name)
    if measured is None:
        return None
    version, metrics, by_time = measured
    popular = _metrics("popular")
    baseline = popular[1] if popular is not None and popular[2] == by_time else {}
    rows = [(name, metrics[name], baseline.get(name)) for name in REPORTED_METRICS if name in metrics]
    return MeasuredMetrics(version, int(metrics.get("n_users_evaluated", 0)), rows, by_time)
