"""A visitor's graph filter scores over R̃ (the old path) against the published factors (not a test).

    python -m benchmarks.graphfilter_serving [--data data/ml-latest-small] [--scales 1 10] [--visitors 100]
                                             [--serve-dims 1024 256]

ml-latest-small with the site's settings (factor_dim 64, serve_dim 1024), and releases generated
from it with `--scale` times its users: each generated user is an original user's training
history with a fifth of its movies swapped for movies drawn by popularity (scale 10: 6,100 users,
~806,000 training ratings, R̃'s rank above serve_dim, so the tail is published). For each: the
fit's time (the filter, then the serving factors), what a web process holds (old: R̃ and R̃ᵀ as
CSR, its own copy; new: the published factors, mapped, one copy for all processes), and over
`--visitors` training users' histories (one torch thread, as a web process serves a request)
the median ms of `GraphFilter.score_items` and `SpectralFilter.score_items` (per --serve-dims
value: fewer eigenvectors and the tail cost less and approximate more), the largest score
difference (absolute, and relative to the visitor's largest score) and the mean overlap of the
two top-20s of unseen movies. Prints a table with the calibration loop
(benchmarks.pages.calibration_ms); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

from benchmarks.pages import calibration_ms  # noqa: E402
from pytorch_models.data.interactions import load_movielens  # noqa: E402
from pytorch_models.models.graphfilter.model import GraphFilterConfig, fit  # noqa: E402
from pytorch_models.models.graphfilter.spectral import SpectralFilter, fit_spectral  # noqa: E402

SITE = GraphFilterConfig(factor_dim=64)  # predictors.versions.SITE_OPTIONS
SWAPPED = 0.2


@dataclass
class Release:
    name: str
    train: np.ndarray  # (E, 2) [user, item]
    n_users: int
    n_items: int


def generated(base: Release, scale: int, seed: int = 0) -> Release:
    """`scale` users per original user, each its history with SWAPPED of it redrawn by popularity."""
    rng = np.random.default_rng(seed)
    popularity = np.bincount(base.train[:, 1], minlength=base.n_items).astype(np.float64)
    popularity /= popularity.sum()
    by_user = np.split(base.train[:, 1], np.flatnonzero(np.diff(base.train[:, 0])) + 1)
    users = np.unique(base.train[:, 0])
    pairs = []
    for copy in range(scale):
        for user, items in zip(users, by_user, strict=True):
            items = items.copy()
            swap = rng.random(len(items)) < SWAPPED
            items[swap] = rng.choice(base.n_items, int(swap.sum()), p=popularity)
            items = np.unique(items)  # a redrawn movie the user had already counts once
            pairs.append(np.stack([np.full(len(items), copy * base.n_users + user), items], 1))
    train = np.concatenate(pairs).astype(np.int64)
    return Release(f"generated x{scale}", train, scale * base.n_users, base.n_items)


def _csr_bytes(matrix: torch.Tensor) -> int:
    parts = (matrix.crow_indices(), matrix.col_indices(), matrix.values())
    return sum(t.numel() * t.element_size() for t in parts)


def measure(release: Release, n_visitors: int, serve_dim: int) -> dict:
    order = np.argsort(release.train[:, 0], kind="stable")
    train = release.train[order]
    start = time.perf_counter()
    config = GraphFilterConfig(**{**SITE.__dict__, "serve_dim": serve_dim})
    old = fit(train, release.n_users, release.n_items, config)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    tables = fit_spectral(old, train, release.n_users, progress=True)
    factors_s = time.perf_counter() - start
    torch.set_num_threads(1)  # a web process's request
    new = SpectralFilter(config, tables, old.item_degree.numpy(), old.item_factors, old.blend_scale)
    rng = np.random.default_rng(1)
    users = rng.choice(np.unique(train[:, 0]), min(n_visitors, release.n_users), replace=False)
    starts = np.searchsorted(train[:, 0], users)
    ends = np.searchsorted(train[:, 0], users, side="right")
    histories = [train[s:e, 1].tolist() for s, e in zip(starts, ends, strict=True)]
    old_ms, new_ms, worst_abs, worst_rel, overlaps = [], [], 0.0, 0.0, []
    for items in histories:
        started = time.perf_counter()
        expected = old.score_items(items)
        old_ms.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        served = new.score_items(items)
        new_ms.append((time.perf_counter() - started) * 1e3)
        gap = float((served - expected).abs().max())
        worst_abs, worst_rel = max(worst_abs, gap), max(worst_rel, gap / float(expected.abs().max()))
        unseen = torch.ones(release.n_items, dtype=torch.bool)
        unseen[items] = False
        top_old = torch.topk(torch.where(unseen, expected, -torch.inf), 20).indices.tolist()
        top_new = torch.topk(torch.where(unseen, served, -torch.inf), 20).indices.tolist()
        overlaps.append(len(set(top_old) & set(top_new)) / 20)
    return {
        "release": release.name, "users": release.n_users, "items": release.n_items, "ratings": len(train),
        "serve_dim": tables["spectral_vectors"].shape[1], "tail": "tail_items" in tables,
        "fit_s": round(fit_s, 1), "factors_s": round(factors_s, 1),
        "old_process_mb": round((_csr_bytes(old.matrix) + _csr_bytes(old.matrix_t)) / 2**20, 1),
        "published_mb": round(sum(t.numel() * t.element_size() for t in tables.values()) / 2**20, 1),
        "old_ms": round(statistics.median(old_ms), 3), "new_ms": round(statistics.median(new_ms), 3),
        "max_abs_diff": float(f"{worst_abs:.3g}"), "max_rel_diff": float(f"{worst_rel:.3g}"),
        "top20_overlap": round(statistics.mean(overlaps), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/ml-latest-small")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--visitors", type=int, default=100)
    parser.add_argument("--serve-dims", type=int, nargs="+", default=[1024],
                        help="serve_dim values to compare (below R̃'s rank the tail is published)")
    args = parser.parse_args()
    data = load_movielens(args.data)
    base = Release("ml-latest-small", data.train, data.n_users, data.n_items)
    before = calibration_ms()
    print(f"calibration loop: {before:.1f} ms (benchmarks.pages.calibration_ms)")
    results = []
    for scale in args.scales:
        torch.set_num_threads(os.cpu_count() or 1)  # the fit, as a retrain runs it
        release = base if scale == 1 else generated(base, scale)
        for serve_dim in args.serve_dims:
            results.append(measure(release, args.visitors, serve_dim))
            print(json.dumps(results[-1]), flush=True)
    after = calibration_ms()
    columns = ["release", "ratings", "serve_dim", "tail", "old_ms", "new_ms", "old_process_mb",
               "published_mb", "max_abs_diff", "max_rel_diff", "top20_overlap", "fit_s", "factors_s"]
    print(" ".join(f"{c:>15}" for c in columns))
    for row in results:
        print(" ".join(f"{row[c]!s:>15}" for c in columns))
    print(f"calibration loop after: {after:.1f} ms. old/new ms: medians of one visitor's scores "
          f"(one thread); old_process_mb is held by every web process, published_mb once (mapped). "
          f"On a host 1.5x slower every ms and s figure is 1.5x.")
    print(json.dumps({"calibration_ms": [round(before, 1), round(after, 1)], "runs": results}))


if __name__ == "__main__":
    main()
