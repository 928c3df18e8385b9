"""Top-k retrieval above a catalogue size: an approximate index for candidates, exact scores for
the list.

Below `settings.ANN_MIN_ITEMS` movies a page scores every movie (one (I, d) product and a
top-k: exact and cheap). Above it, a dot-product model's list ("published" lists of LightGCN,
NGCF and PinSage) and "More like this" ask an HNSW index of the version's item table for
`k + |seen| + CANDIDATE_MARGIN` candidates (at least CANDIDATES_MIN), score those exactly with
the model's own formula, drop the visitor's movies exactly, and keep the best k; fewer than k
left after the exclusion falls back to the exact scan, so a list is never short.

Why faiss (faiss-cpu): its HNSW index is the one STYLE.md's faiss guidelines recommend for
this size and recall, it reads an index back memory-mapped (`IO_FLAG_MMAP_IFC`: the graph and
the vectors stay file pages, so every web process shares one copy, as with the tables), it
lets the graph be built on one set of vectors and searched over another (below), and its
wheel runs with numpy 1.26. usearch would serve too (`view=True` maps an index) but adds a
second vector library for the same HNSW.

The two searches:
- "More like this" (cosine): the unit rows of the table, inner product.
- A list (q · x_i + b_i): the graph is linked by the angles of the rows [x_i, b_i] (their unit
  vectors) and searched by the inner product with [q, 1] over the rows themselves (ip-NSW+,
  Liu et al., AAAI 2020, https://arxiv.org/abs/1909.13459). A graph linked by the inner
  product leaves low-norm movies with few links in (trained tables' norms spread 40x), so a
  search cannot reach them: on ml-latest-small's 2-epoch LightGCN the inner-product graph
  missed 21 of 800 top-20 movies, the angular graph 2. The reduction to vectors of one norm
  ([x, b, sqrt(M² - |x|² - b²)]) found 0.91 of the top 20 on benchmarks/ann_recall.py's
  catalogue of 20,000 (d = 64): the added coordinate dominates every row.

Bound: the index files live in the version folder (`ann-<purpose>.faiss`, removed with the
version) and take (d + 1) · 4 + 2 · HNSW_M · 4 bytes a movie at level 0 (plus ~1/M of that
above): 0.8 KB a movie at d = 128. A process keeps one index per model and purpose, mapped,
replaced when the version changes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from django.conf import settings

from predictors import registry

if TYPE_CHECKING:
    import faiss

log = logging.getLogger(__name__)

RECOMMEND, SIMILAR = "recommend", "similar"
PURPOSES = (RECOMMEND, SIMILAR)
# Chosen with benchmarks/ann_recall.py (synthetic catalogues of 60,000 and 250,000 movies at
# the models' dimensions): see its docstring for the figures. EF_SEARCH may be set per run
# (the benchmark's sweep).
HNSW_M = 32  # graph degree: links per movie per level
EF_CONSTRUCTION = 200  # candidates kept while a movie is linked in
EF_SEARCH = 512  # candidates kept while searching; at least the candidates asked for
CANDIDATES_MIN = 100  # candidates re-ranked exactly, at least
CANDIDATE_MARGIN = 30  # more candidates than k + |seen|, for the index's misses


def index_path(folder: Path, purpose: str) -> Path:
    return folder / f"ann-{purpose}.faiss"


def index_vectors(table: torch.Tensor, bias: torch.Tensor | None, purpose: str) -> np.ndarray:
    """(I, d') float32 rows whose inner products with `query_vector` rank as `purpose` asks
    (module docstring)."""
    table = table.double()
    if purpose == SIMILAR:
        return torch.nn.functional.normalize(table, dim=1).float().numpy()
    bias = bias.double() if bias is not None else torch.zeros(len(table), dtype=torch.float64)
    return torch.cat([table, bias.unsqueeze(1)], 1).float().numpy()


def query_vector(query: torch.Tensor, purpose: str) -> np.ndarray:
    """(1, d') float32 query for `index_vectors`' rows."""
    query = query.double()
    if purpose == SIMILAR:
        return torch.nn.functional.normalize(query, dim=0).float().numpy()[None]
    return torch.cat([query, torch.tensor([1.0], dtype=torch.float64)]).float().numpy()[None]


def index_build(vectors: np.ndarray) -> faiss.Index:
    """HNSW linked by the rows' angles, searched by inner products with the rows themselves."""
    import faiss  # here, not at the top: a process below ANN_MIN_ITEMS never loads it (14 MB)

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexHNSWFlat(vectors.shape[1], HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    index.add(vectors / np.where(norms > 0, norms, 1.0))
    if not np.allclose(norms, 1.0, atol=1e-6):
        storage = faiss.IndexFlatIP(vectors.shape[1])
        storage.add(vectors)
        index.storage = storage  # the graph stays; the search scores the rows as they are
        index.own_fields = True
        storage.this.disown()  # the index frees it
    return index


def index_write(folder: Path, purpose: str, table: torch.Tensor, bias: torch.Tensor | None) -> Path:
    """Build and write a version's index under a temporary name, renamed into place: a reader
    sees no index or a whole one (two writers leave one of their identical indexes)."""
    path = index_path(folder, purpose)
    import faiss

    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        faiss.write_index(index_build(index_vectors(table, bias, purpose)), str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _sources(checkpoint, purpose: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    bias = checkpoint.extra.get("item_bias") if purpose == RECOMMEND else None
    return checkpoint.item_embeddings, bias


def indexes_write(folder: Path, checkpoint) -> list[Path]:
    """At publish time: a version's indexes, if its catalogue is above ANN_MIN_ITEMS and it is
    a dot-product model (`predictors.versions`)."""
    if not applies(checkpoint):
        return []
    return [index_write(folder, purpose, *_sources(checkpoint, purpose)) for purpose in PURPOSES]


def applies(checkpoint) -> bool:
    """Whether this version's lists and neighbours go through an index."""
    return checkpoint.model_name in ANN_MODELS and len(checkpoint.item_ids) >= settings.ANN_MIN_ITEMS


ANN_MODELS = ("lightgcn", "ngcf", "pinsage")  # scores = item table @ query (+ bias)


@dataclass(frozen=True)
class Retriever:
    """A version's index for one purpose."""

    index: faiss.Index
    purpose: str

    def top_k(self, query: torch.Tensor, score_rows: Callable[[torch.Tensor], torch.Tensor],
              exclude_rows: Sequence[int], k: int) -> list[tuple[int, float]] | None:
        """The best k (row, score) outside `exclude_rows` by `score_rows` (rows (n,) -> exact
        scores (n,)) among the index's candidates for `query`; None when fewer than k are left
        after the exclusion (the caller scans exactly)."""
        import faiss

        n_items = self.index.ntotal
        wanted = min(n_items, max(CANDIDATES_MIN, k + len(exclude_rows) + CANDIDATE_MARGIN))
        parameters = faiss.SearchParametersHNSW(efSearch=max(EF_SEARCH, wanted))
        _, found = self.index.search(query_vector(query, self.purpose), wanted, params=parameters)
        excluded = np.asarray(list(exclude_rows), dtype=np.int64)
        rows = found[0][found[0] >= 0]
        rows = torch.from_numpy(rows[~np.isin(rows, excluded)])
        if len(rows) < k:
            return None
        values, order = torch.topk(score_rows(rows), k)
        return list(zip(rows[order].tolist(), values.tolist(), strict=True))


# (model, purpose) -> (version folder, its Retriever, the index mapped); one per key, replaced
# on a new version.
_retrievers: dict[tuple[str, str], tuple[str, Retriever]] = {}
_retrievers_lock = threading.Lock()


def retriever_for(published: registry.Published, purpose: str) -> Retriever:
    """The version's index, mapped from its folder (built there first if the version was
    published without it, e.g. by `python -m pytorch_models.train --out`)."""
    folder = published.checkpoint.path
    key, held = (published.model, purpose), _retrievers.get((published.model, purpose))
    if held is not None and held[0] == str(folder):
        return held[1]
    path = index_path(folder, purpose)
    if not path.exists():
        log.warning("%s %s: no %s index; building it (%d movies)", published.model, published.version,
                    purpose, len(published.movie_ids))
        index_write(folder, purpose, *_sources(published.checkpoint, purpose))
    import faiss

    found = Retriever(faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC), purpose)
    with _retrievers_lock:
        _retrievers[key] = (str(folder), found)
    return found


def top_k(published: registry.Published, purpose: str, query: torch.Tensor,
          score_rows: Callable[[torch.Tensor], torch.Tensor], exclude_rows: Sequence[int],
          k: int) -> list[tuple[int, float]] | None:
    """`Retriever.top_k` with the version's index for `purpose`."""
    return retriever_for(published, purpose).top_k(query, score_rows, exclude_rows, k)
