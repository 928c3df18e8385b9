"""Recall and latency of the HNSW retrieval (predictors.retrieval) against the exact scan (not a test).

    python -m benchmarks.ann_recall [--sizes 10000 60000 250000] [--dims 64 128] [--queries 200]
                                    [--ef 128 256 512] [--hnsw-m 32] [--ef-construction 200]

A synthetic catalogue per size and dimension (64: LightGCN's, 128: PinSage's, with an item bias
as PinSage has): rows around 256 cluster centres, norms spread as trained tables' are (log-normal),
visitors whose histories (1 to 60 movies, a few clusters) give the query as LightGCN's mean does.
For each: the index's build time and bytes, then per efSearch the recall@20 of the served list
(candidates re-ranked exactly, seen movies excluded) against the exact top 20 of unseen movies,
and the median latency of both paths for one visitor (one thread, as a web process serves a
request); "More like this" (cosine) likewise. The exact path is what a page runs below
ANN_MIN_ITEMS: one product with every row and a top-k. Prints a table and the calibration loop
(benchmarks.pages.calibration_ms); the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import torch

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

from benchmarks.pages import calibration_ms  # noqa: E402
from predictors import retrieval  # noqa: E402

K, CLUSTERS = 20, 256
COLUMNS = [("items", 8), ("dim", 4), ("bias", 5), ("ef_search", 5), ("index_recall@20", 9),
           ("index_min_recall@20", 6), ("index_ms", 8), ("index_exact_share", 6), ("exact_ms", 8),
           ("like_recall@12", 8), ("like_ann_ms", 8), ("like_exact_ms", 8), ("build_s", 7), ("index_mb", 8)]


def catalogue(n_items: int, dim: int, with_bias: bool, seed: int = 0):
    """(table (I, d), bias (I,) or None, cluster of each row (I,))."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(CLUSTERS, dim, generator=generator)
    cluster = torch.randint(0, CLUSTERS, (n_items,), generator=generator)
    spread = 0.8 * torch.randn(n_items, dim, generator=generator)
    rows = torch.nn.functional.normalize(centres[cluster] + spread, dim=1)
    norms = torch.exp(0.35 * torch.randn(n_items, 1, generator=generator))
    bias = 0.3 * torch.randn(n_items, generator=generator) if with_bias else None
    return (rows * norms).contiguous(), bias, cluster


def visitors(cluster: torch.Tensor, count: int, seed: int = 1) -> list[list[int]]:
    """Histories of 1 to 60 movies from 1 to 3 clusters each."""
    rng = np.random.default_rng(seed)
    members = {c: np.flatnonzero(cluster.numpy() == c) for c in range(CLUSTERS)}
    out = []
    for _ in range(count):
        chosen = rng.choice(CLUSTERS, rng.integers(1, 4), replace=False)
        pool = np.concatenate([members[c] for c in chosen])
        out.append(rng.choice(pool, min(len(pool), int(rng.integers(1, 61))), replace=False).tolist())
    return out


def exact_top(table, bias, query, seen, k=K) -> list[int]:
    """What predictors.recommend._top_k does below the threshold."""
    scores = table @ query
    if bias is not None:
        scores = scores + bias
    scores[seen] = float("-inf")
    return torch.topk(scores, k).indices.tolist()


def _scorer(table, bias, query):
    """Exact scores of candidate rows, as predictors.recommend's re-rank computes them."""
    def score(rows):
        scores = table[rows] @ query
        return scores + bias[rows] if bias is not None else scores
    return score


def _served(found_by, score, query, seen, k) -> list[int] | None:
    found = found_by.top_k(query, score, seen, k)
    return None if found is None else [r for r, _ in found]


def _ms(call) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1e3


def measure(n_items: int, dim: int, with_bias: bool, n_queries: int, efs: list[int]) -> list[dict]:
    table, bias, cluster = catalogue(n_items, dim, with_bias)
    histories = visitors(cluster, n_queries)
    queries = [table[h].mean(0) for h in histories]
    unit = torch.nn.functional.normalize(table, dim=1)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        indexes, built = {}, {}
        for purpose, source_bias in ((retrieval.RECOMMEND, bias), (retrieval.SIMILAR, None)):
            faiss.omp_set_num_threads(os.cpu_count() or 1)
            start = time.perf_counter()
            path = retrieval.index_write(Path(folder), purpose, table, source_bias)
            built[purpose] = (time.perf_counter() - start, path.stat().st_size)
            faiss.omp_set_num_threads(1)
            indexes[purpose] = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
        exact_lists = [exact_top(table, bias, q, h) for q, h in zip(queries, histories, strict=True)]
        exact_ms = statistics.median(_ms(lambda q=q, h=h: exact_top(table, bias, q, h))
                                     for q, h in zip(queries, histories, strict=True))
        anchors = [h[0] for h in histories]
        like_lists = [exact_top(unit, None, unit[a], [a], 12) for a in anchors]
        like_exact_ms = statistics.median(_ms(lambda a=a: exact_top(unit, None, unit[a], [a], 12))
                                          for a in anchors)
        served_by = {"index": retrieval.Retriever(indexes[retrieval.RECOMMEND], retrieval.RECOMMEND)}
        like_by = retrieval.Retriever(indexes[retrieval.SIMILAR], retrieval.SIMILAR)
        for ef in efs:
            retrieval.EF_SEARCH = ef
            row = {"items": n_items, "dim": dim, "bias": with_bias, "ef_search": ef}
            for name, found_by in served_by.items():
                recalls, times, fallbacks = [], [], 0
                for q, h, expected in zip(queries, histories, exact_lists, strict=True):
                    start = time.perf_counter()
                    found = _served(found_by, _scorer(table, bias, q), q, h, K)
                    if found is None:  # the page scans exactly
                        fallbacks += 1
                        found = exact_top(table, bias, q, h)
                    times.append((time.perf_counter() - start) * 1e3)
                    recalls.append(len(set(found) & set(expected)) / K)
                row.update({f"{name}_recall@20": round(statistics.mean(recalls), 4),
                            f"{name}_min_recall@20": min(recalls),
                            f"{name}_ms": round(statistics.median(times), 3),
                            f"{name}_exact_share": round(fallbacks / len(queries), 3)})
            like_recalls, like_times = [], []
            for a, expected in zip(anchors, like_lists, strict=True):
                start = time.perf_counter()
                found = _served(like_by, _scorer(unit, None, unit[a]), table[a], [a], 12) or []
                like_times.append((time.perf_counter() - start) * 1e3)
                like_recalls.append(len(set(found) & set(expected)) / 12)
            row.update({
                "exact_ms": round(exact_ms, 3), "like_recall@12": round(statistics.mean(like_recalls), 4),
                "like_ann_ms": round(statistics.median(like_times), 3),
                "like_exact_ms": round(like_exact_ms, 3),
                "build_s": round(built[retrieval.RECOMMEND][0], 1),
                "index_mb": round(built[retrieval.RECOMMEND][1] / 2**20, 1),
            })
            rows.append(row)
            print(" ".join(f"{row[c]!s:>{w}}" for c, w in COLUMNS), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 60_000, 250_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ef", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--hnsw-m", type=int, default=retrieval.HNSW_M, help="links per movie per level")
    parser.add_argument("--ef-construction", type=int, default=retrieval.EF_CONSTRUCTION)
    args = parser.parse_args()
    retrieval.HNSW_M, retrieval.EF_CONSTRUCTION = args.hnsw_m, args.ef_construction
    torch.set_num_threads(1)
    before = calibration_ms()
    print(f"calibration loop: {before:.1f} ms (benchmarks.pages.calibration_ms)")
    heads = ["items", "dim", "bias", "ef", "recall", "min", "ann ms", "exact", "exact ms", "like rec",
             "like ms", "like ex", "build s", "idx MB"]
    print(" ".join(f"{h:>{w}}" for h, (_, w) in zip(heads, COLUMNS, strict=True)))
    results = [row for n in args.sizes for dim in args.dims
               for row in measure(n, dim, dim >= 128, args.queries, args.ef)]
    after = calibration_ms()
    print(f"calibration loop after: {after:.1f} ms. recall/ann ms: the index's candidates re-ranked "
          f"(exact: share of visitors sent to the exact scan); like: More like this, k = 12. ms: medians "
          f"of one visitor, one thread, the served list; recall@20: mean over "
          f"{args.queries} visitors of |served ∩ exact top 20| / 20. On a host 1.5x slower every ms figure "
          f"is 1.5x, recall unchanged.")
    print(json.dumps({"calibration_ms": [round(before, 1), round(after, 1)], "hnsw_m": args.hnsw_m,
                      "ef_construction": args.ef_construction, "runs": results}))


if __name__ == "__main__":
    main()
