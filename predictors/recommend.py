"""Serving: top-k movies for a visitor from one model, and movies like a movie.

Web processes never train. They read the cache the live workers fill; when it has nothing
for this visitor yet, or a list from a version no longer live, they score the visitor's
history against the published item table; with no history they serve the popular list and
say so.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import redis
import torch

from predictors import SIMILAR_MODEL, cache, registry, retrieval
from predictors.explain import because
from pytorch_models.models.names import FINE_TUNED_LIVE, POPULAR, SEQUENCE_MODELS, SERVED_MODELS
from pytorch_models.serving import neighbours
from pytorch_models.serving.fold_in import history_query, score_history

log = logging.getLogger(__name__)



class UnknownModel(ValueError):
    pass


Item = TypeVar("Item")  # a movie id here; a Movie row on the pages (movie.catalogue.recommendations)


@dataclass(frozen=True)
class Recommendations(Generic[Item]):
    model: str
    model_version: str | None
    fallback: bool  # True: this is the popular list, not the model's own ranking
    reason: str | None  # why it fell back: "no_history" | "not_trained"
    items: list[tuple[Item, float]]  # (movie, score), best first
    # "popular" | "published" (scored on request) | "fresh" (the worker's fine-tuned cache) |
    # "closed_form" (the graph filter: nothing to fine-tune, the whole history scored on request) |
    # "sequence" (SASRec: nothing per visitor, the history in click order read on request)
    source: str
    as_of_event: str | None = None  # newest event a "fresh" list reflects
    # Movie id -> the history movies that set its score apart ("because you watched",
    # predictors.explain); empty for the popular list. A mapping beside `items`, not a third
    # element of each item, so every `for movie, score in recs.items` stays as it is.
    because: dict[int, list[Item]] = field(default_factory=dict)


def _top_k(published: registry.Published, scores: torch.Tensor, exclude: Sequence[int], k: int):
    scores = scores.clone().float()
    seen = published.indices(exclude)
    if seen:
        scores[seen] = float("-inf")
    k = min(k, scores.numel() - len(seen))
    values, rows = torch.topk(scores, k)
    return [(int(published.movie_ids[r]), float(v))
            for r, v in zip(rows.tolist(), values.tolist(), strict=True)]


def popular(*, k: int, exclude: Sequence[int] = ()) -> tuple[str | None, list[tuple[int, float]]]:
    published = registry.published(POPULAR)
    if published is None:
        return None, []
    return published.version, _top_k(published, score_history(published.checkpoint, []), exclude, k)


def recommend(*, visitor: str, model: str, k: int, history: Sequence[int],
              dismissed: Sequence[int] = ()) -> Recommendations:
    """Top-k for `visitor`, never containing a movie in `history` or `dismissed` (movie ids,
    newest first: what it clicked or rated, and what it said "Not interested" to)."""
    if model not in SERVED_MODELS:
        raise UnknownModel(model)
    hidden = [*history, *dismissed]
    seen = set(hidden)
    published = registry.published(model)
    if model == POPULAR or not history or published is None:
        version, items = popular(k=k, exclude=hidden)
        reason = None if model == POPULAR else ("not_trained" if published is None else "no_history")
        return Recommendations(model, version, reason is not None, reason, items, source="popular")

    if model not in FINE_TUNED_LIVE:  # the graph filter, SASRec: what they score holds every click
        items, explained = _closed_form(published, history, dismissed, k)
        return Recommendations(model, published.version, False, None, items, because=explained,
                               source="sequence" if model in SEQUENCE_MODELS else "closed_form")

    try:
        cached = cache.recommendations_get(model, visitor)
    except redis.RedisError:  # the published tables need no Redis: serve from them
        log.warning("recommendation cache unreachable; scoring %s from the published tables", model)
        cached = None
    # A list from a replaced version is scored from the new table until the live workers have
    # re-derived it (predictors.live.LiveEngine.refresh queues its visitor). A movie dismissed
    # since the list was made leaves it now.
    if cached is not None and cached["model_version"] == published.version:
        items = [(int(m), float(s)) for m, s in cached["items"] if int(m) not in seen]
        if len(items) >= k:
            return Recommendations(
                model, cached["model_version"], False, None, items[:k], source="fresh",
                as_of_event=cached["as_of_event"], because=_because(published, history, items[:k]),
            )

    items = _published_top_k(published, history, dismissed, k)
    return Recommendations(model, published.version, False, None, items, source="published",
                           because=_because(published, history, items))


def _published_top_k(published: registry.Published, history: Sequence[int], dismissed: Sequence[int],
                     k: int) -> list[tuple[int, float]]:
    """Top-k of the history's scores from the published table, outside the history and the
    dismissed: through the version's index above ANN_MIN_ITEMS (`predictors.retrieval`), else
    scoring every movie."""
    rows = published.indices(history)
    checkpoint = published.checkpoint
    if rows and retrieval.applies(checkpoint):
        query, bias = history_query(checkpoint, rows)
        table = checkpoint.item_embeddings

        def exact(candidates: torch.Tensor) -> torch.Tensor:  # score_history's formula, on candidates only
            scores = table[candidates].float() @ query
            return scores if bias is None else scores + bias[candidates]

        found = retrieval.top_k(published, retrieval.RECOMMEND, query, exact,
                                [*rows, *published.indices(dismissed)], k)
        if found is not None:
            return [(int(published.movie_ids[r]), s) for r, s in found]
    return _top_k(published, score_history(checkpoint, rows), [*history, *dismissed], k)


# (model folder, model, version, digest of the history and the dismissed, k) -> (items, because),
# newest use last.
# A closed form's list is a function of these alone (SASRec's too: the digest keeps the order),
# and a visitor asks for the same one again and again (a reload, the home row, a tab, the
# API): the filter's products were 4.3 of the 7.3 ms of CPU its page took. A click changes the
# history, a publish the version: a new key.
# The history enters the key as a 16-byte digest, never as itself (a long history in every key
# held its whole tuple once per k), and the cache is bounded in bytes, not entries: an entry's
# size follows k (the API allows up to 100) and its because-lists. A web process holds about
# 580 MB (torch, the published tables; devstack/app.py); 32 MiB more holds about 5,000 lists of
# 20 with their because-lines (`_entry_bytes` counts 6.7 KB each, tracemalloc measured 6.2) or
# 1,000 lists of 100 (33 KB; 31 measured).
CLOSED_FORM_BYTES = 32 * 2**20
_SLOT_BYTES = 208  # an entry's places in the OrderedDict (its link node too) and the sizes dict
_closed_form_lists: OrderedDict[tuple, tuple[list, dict]] = OrderedDict()
_closed_form_sizes: dict[tuple, int] = {}
_closed_form_held = [0]  # bytes of every entry together
_closed_form_lock = threading.Lock()


def history_digest(history: Sequence[int]) -> bytes:
    """16 bytes naming the history, its order included (a collision would need 2**64 tries)."""
    return hashlib.blake2b(array("q", history).tobytes(), digest_size=16).digest()


def _entry_bytes(key: tuple, held: tuple[list, dict]) -> int:
    """What an entry holds in memory: the key and its parts, the items list and its tuples of
    numbers, the because dict and its lists (small ints are shared by CPython, so this counts
    more than it takes), and its places in the dicts."""
    items, explained = held
    size = sys.getsizeof(key) + sum(sys.getsizeof(part) for part in key) + _SLOT_BYTES
    size += sys.getsizeof(items) + sum(sys.getsizeof(pair) + sum(map(sys.getsizeof, pair)) for pair in items)
    size += sys.getsizeof(explained) + sum(
        sys.getsizeof(movie) + sys.getsizeof(movies) + sum(map(sys.getsizeof, movies))
        for movie, movies in explained.items()
    )
    return size


def closed_form_bytes() -> int:
    """Bytes the graph filter's lists hold in this process (at most CLOSED_FORM_BYTES)."""
    return _closed_form_held[0]


def closed_form_clear() -> None:
    with _closed_form_lock:
        _closed_form_lists.clear()
        _closed_form_sizes.clear()
        _closed_form_held[0] = 0


def _closed_form(published: registry.Published, history: Sequence[int], dismissed: Sequence[int],
                 k: int) -> tuple[list, dict]:
    """The graph filter's list: its closed form of the signed history (a dismissed movie is -1);
    SASRec's: what follows the history read oldest first, the dismissed left out."""
    digest = history_digest([*history, -1, *dismissed]) if dismissed else history_digest(history)
    key = (str(registry.model_dir()), published.model, published.version, digest, k)
    with _closed_form_lock:
        held = _closed_form_lists.get(key)
        if held is not None:
            _closed_form_lists.move_to_end(key)
    if held is None:  # computed outside the lock: two requests may both compute, never block
        rows = published.indices(history)
        if published.model in SEQUENCE_MODELS:
            rows.reverse()  # oldest first, the order it reads
        scores = score_history(published.checkpoint, rows, published.indices(dismissed))
        items = _top_k(published, scores, [*history, *dismissed], k)
        held = (items, _because(published, history, items))
        _closed_form_keep(key, held)
    return list(held[0]), {m: list(h) for m, h in held[1].items()}


def _closed_form_keep(key: tuple, held: tuple[list, dict]) -> None:
    size = _entry_bytes(key, held)
    if size > CLOSED_FORM_BYTES:
        return
    with _closed_form_lock:
        if key in _closed_form_lists:  # another request computed it meanwhile
            return
        _closed_form_lists[key], _closed_form_sizes[key] = held, size
        _closed_form_held[0] += size
        while _closed_form_held[0] > CLOSED_FORM_BYTES:
            oldest, _ = _closed_form_lists.popitem(last=False)
            _closed_form_held[0] -= _closed_form_sizes.pop(oldest)


def _because(published: registry.Published, history: Sequence[int], items: list[tuple[int, float]]) -> dict:
    """Why each listed item is there: explained against the table the list was served with."""
    return because(published, history=history, items=[m for m, _ in items])


# model -> ((model folder, version), its item table with unit rows). A version never changes
# once published, so the table is computed once per version: normalising all 9,742 rows took
# 2-7 ms of every movie page, the product with one row takes 0.1 ms.
_unit_tables: dict[str, tuple[tuple[str, str], torch.Tensor]] = {}


def _unit_items(published: registry.Published) -> torch.Tensor:
    version = (str(registry.model_dir()), published.version)
    held = _unit_tables.get(published.model)
    if held is None or held[0] != version:
        held = (version, torch.nn.functional.normalize(published.checkpoint.item_embeddings.float(), dim=1))
        _unit_tables[published.model] = held
    return held[1]


# model -> (version folder, its neighbour table or None): one version per model, as registry holds.
_neighbour_tables: dict[str, tuple[str, tuple[torch.Tensor, torch.Tensor] | None]] = {}


def _neighbours(published: registry.Published) -> tuple[torch.Tensor, torch.Tensor] | None:
    folder = str(published.checkpoint.path)
    held = _neighbour_tables.get(published.model)
    if held is None or held[0] != folder:
        held = (folder, neighbours.neighbours_load(published.checkpoint.path))
        _neighbour_tables[published.model] = held
    return held[1]


def similar(*, movie_id: int, k: int, model: str = SIMILAR_MODEL,
            exclude: Sequence[int] = ()) -> list[tuple[int, float]]:
    """Movies whose published embeddings are closest (cosine) to `movie_id`'s, none of
    `exclude` (a visitor's dismissed movies): read from the version's neighbour table where it
    has one and enough are left, else scored."""
    published = registry.published(model)
    if published is None or movie_id not in published.index_of:
        return []
    row = published.index_of[movie_id]
    excluded = [row, *published.indices(exclude)]
    table = _neighbours(published)
    found = None if table is None else neighbours.listed(table, row, set(excluded), k)
    if found is not None:
        return [(int(published.movie_ids[r]), s) for r, s in found]
    if retrieval.applies(published.checkpoint):
        table = published.checkpoint.item_embeddings
        query = table[row].float()

        def cosine(candidates: torch.Tensor) -> torch.Tensor:  # the exact path's scores, on candidates only
            return torch.nn.functional.normalize(table[candidates].float(), dim=1) @ \
                torch.nn.functional.normalize(query, dim=0)

        found = retrieval.top_k(published, retrieval.SIMILAR, query, cosine, excluded, k)
        if found is not None:
            return [(int(published.movie_ids[r]), s) for r, s in found]
    table = _unit_items(published)
    scores = table @ table[published.index_of[movie_id]]
    return _top_k(published, scores, [movie_id, *exclude], k)
