"""What "because you watched …" adds to one recommendations request (not a test).

    python -m benchmarks.explain_cost [--data data/ml-latest-small] [--runs 300]

For a visitor with a history of 50 movies and a list of k = 20, per model: the time of
`predictors.explain.because` (one (20, 50) product and a top-2) beside what the request
already pays to score the history and take the top 20 (`score_history` + top-k on the
published path); then the recommendations page's template rendered with two "because"
movies under each poster against none (the line's 40 links). Checkpoints are untrained
(0 epochs: the cost does not depend on the weights' values), shared with
`benchmarks.live_cost` under --cache-dir. Medians of --runs, one torch thread (as a web
process serves one request per thread). The explaining movies come back in the query that
already loads the 20 recommended ones, so no query is added. Prints a table; the last line
is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import django
import numpy as np
import torch

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django.setup()

from django.contrib.auth.models import AnonymousUser  # noqa: E402
from django.template.loader import render_to_string  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from benchmarks.live_cost import MODELS, checkpoints  # noqa: E402
from movie.catalogue.fragments import grid  # noqa: E402
from movie.catalogue.models import Movie  # noqa: E402
from movie.catalogue.recommendations import MovieRecommendations  # noqa: E402
from predictors.explain import because  # noqa: E402
from predictors.recommend import _top_k  # noqa: E402
from predictors.registry import Published, RowIndex  # noqa: E402
from pytorch_models.serving.fold_in import score_history  # noqa: E402

K, HISTORY = 20, 50


def _median_ms(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _published(name: str, checkpoint) -> Published:
    movie_ids = np.asarray(checkpoint.item_ids, dtype=np.int64)
    return Published(name, "bench", checkpoint, movie_ids, RowIndex(movie_ids))


def model_costs(cache: Path, data: str, runs: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(0)
    out = {}
    for name, checkpoint in checkpoints("movielens", data, cache).items():
        published = _published(name, checkpoint)
        history = [int(m) for m in rng.choice(published.movie_ids, HISTORY, replace=False)]

        def serve(published=published, history=history):
            return _top_k(published, score_history(published.checkpoint, published.indices(history)), history,
                          K)

        items = [m for m, _ in serve()]
        out[name] = {
            "score_and_top_k_ms": _median_ms(serve, runs),
            "because_ms": _median_ms(lambda p=published, h=history, i=items: because(p, history=h, items=i),
                                     runs),
        }
    return out


def template_cost(runs: int) -> dict[str, float]:
    """The page with two named movies under each of 20 posters, against none."""
    movies = [Movie(id=i, title=f"Movie number {i}", year=1990) for i in range(1, K + 3)]
    request = RequestFactory().get("/recommendations/ngcf/")
    request.user = AnonymousUser()

    def render(named: int) -> str:
        items = [(m, 1.0) for m in movies[:K]]
        recs = MovieRecommendations("ngcf", "bench", False, None, items, source="published",
                                    because={m.id: movies[K:K + named] for m, _ in items})
        context = {"model": "ngcf", "recs": recs, "grid": grid(movies[:K], recs.because_per_item),
                   "history": [], "history_rows": [], "review": None}
        return render_to_string("catalogue/recommendations.html", context, request)

    return {f"page_with_{n}_named_ms": _median_ms(lambda n=n: render(n), runs) for n in (0, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/ml-latest-small")
    parser.add_argument("--cache-dir", type=Path, default=Path("var/benchmarks/live_cost"))
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    torch.set_num_threads(1)

    models = model_costs(args.cache_dir, args.data, args.runs)
    print(f"k = {K}, history = {HISTORY}, median of {args.runs} runs, 1 thread")
    print(f"{'model':10} {'score + top-k ms':>17} {'because ms':>11}")
    for name in MODELS:
        print(f"{name:10} {models[name]['score_and_top_k_ms']:17.3f} {models[name]['because_ms']:11.3f}")
    page = template_cost(args.runs)
    print(f"page template: {page['page_with_0_named_ms']:.3f} ms without, "
          f"{page['page_with_2_named_ms']:.3f} ms with 2 named movies per poster")
    print(json.dumps({"k": K, "history": HISTORY, "runs": args.runs, "models": models, "template": page}))


if __name__ == "__main__":
    main()
