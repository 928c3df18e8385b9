"""Serving when Redis is gone: pages still answer, from the published tables."""

from __future__ import annotations

from predictors.recommend import recommend

CLICKED = [1, 260, 1196]


def test_redis_down_serves_the_published_tables(trained_models, settings, unused_tcp_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{unused_tcp_port}/0"  # nothing listens there

    recs = recommend(visitor="s:redis-down", model="lightgcn", k=20, history=CLICKED)

    assert recs.source == "published" and not recs.fallback
    assert recs.model_version == trained_models["lightgcn"]
    assert len(recs.items) == 20 and not {m for m, _ in recs.items} & set(CLICKED)


def _ids(recs) -> list[int]:
    return [m for m, _ in recs.items]


def test_a_dismissed_movie_leaves_every_models_list(trained_models):
    """Scored on request, from the worker's fresh list written before the dismissal, from the
    graph filter's closed form, the popular list, and "More like this"."""
    from predictors import cache, registry
    from predictors.recommend import similar
    from pytorch_models.models.names import FINE_TUNED_LIVE, SERVED_MODELS

    for model in SERVED_MODELS:
        top = _ids(recommend(visitor="v:dismiss", model=model, k=20, history=CLICKED))[0]
        after = recommend(visitor="v:dismiss", model=model, k=20, history=CLICKED, dismissed=[top])
        assert top not in _ids(after) and len(after.items) == 20 and not set(_ids(after)) & set(CLICKED)
    for model in FINE_TUNED_LIVE:
        worker_list = recommend(visitor="v:other", model=model, k=40, history=CLICKED).items
        cache.recommendations_set(model, "v:fresh", model_version=registry.published(model).version,
                                  items=worker_list, as_of_event="e1")
        top = worker_list[0][0]
        after = recommend(visitor="v:fresh", model=model, k=20, history=CLICKED, dismissed=[top])
        assert after.source == "fresh" and top not in _ids(after) and _ids(after)[0] == worker_list[1][0]
    popular = _ids(recommend(visitor="v:new", model="lightgcn", k=20, history=[]))
    assert popular[0] not in _ids(recommend(visitor="v:new", model="lightgcn", k=20, history=[],
                                            dismissed=[popular[0]]))
    alike = [m for m, _ in similar(movie_id=1, k=10)]
    assert alike[0] not in [m for m, _ in similar(movie_id=1, k=10, exclude=[alike[0]])]


def test_the_graph_filter_scores_a_history_once_per_version(trained_models, monkeypatch):
    """Its list is a function of (version, history, k): asked again it is served from memory,
    the same; a new history, k or version scores again."""
    from predictors import recommend as serving

    scored = []
    real = serving.score_history
    monkeypatch.setattr(serving, "score_history",
                        lambda checkpoint, rows, dismissed=(): scored.append(rows)
                        or real(checkpoint, rows, dismissed))
    serving.closed_form_clear()

    first = recommend(visitor="v:filter", model="graphfilter", k=20, history=CLICKED)
    again = recommend(visitor="v:other", model="graphfilter", k=20, history=CLICKED)
    assert len(scored) == 1 and again.items == first.items and again.because == first.because
    assert first.source == "closed_form" and first.model_version == trained_models["graphfilter"]

    longer = recommend(visitor="v:filter", model="graphfilter", k=20, history=[*CLICKED, first.items[0][0]])
    assert len(scored) == 2 and first.items[0][0] not in {m for m, _ in longer.items}
    recommend(visitor="v:filter", model="graphfilter", k=5, history=CLICKED)
    assert len(scored) == 3

    # An entry is keyed by its version: one left from another version is never served.
    (key,) = [key for key in serving._closed_form_lists if key[3:] == (serving.history_digest(CLICKED), 20)]
    serving.closed_form_clear()
    serving._closed_form_keep((*key[:2], "an-older-version", *key[3:]), ([(1, 9.0)], {}))
    assert recommend(visitor="v:filter", model="graphfilter", k=20, history=CLICKED).items == first.items
    assert len(scored) == 4
    serving.closed_form_clear()


def test_the_graph_filter_lists_stay_under_their_byte_bound(trained_models, monkeypatch):
    """A long history asked for with several k, click after click: each key holds a digest of
    the history, not the history, and the oldest lists leave once the bytes pass the bound."""
    from predictors import recommend as serving
    from predictors import registry

    serving.closed_form_clear()
    movie_ids = [int(m) for m in registry.published("graphfilter").movie_ids[:600]]
    bound = 200_000
    monkeypatch.setattr(serving, "CLOSED_FORM_BYTES", bound)
    largest, served = 0, 0
    for clicks in range(500, 510):  # the history grows by a click each round
        history = movie_ids[:clicks]
        for k in (5, 20, 50, 100):
            recs = recommend(visitor="v:long", model="graphfilter", k=k, history=history)
            assert len(recs.items) == k and not {m for m, _ in recs.items} & set(history)
            served += 1
            largest = max(largest, serving.closed_form_bytes())
            assert serving.closed_form_bytes() <= bound

    kept = dict(serving._closed_form_lists)
    assert 0 < len(kept) < served  # the oldest lists were dropped, the newest kept
    assert serving.closed_form_bytes() == sum(serving._entry_bytes(key, held) for key, held in kept.items())
    assert largest > bound - 40_000  # it filled up to the bound (an entry of k=100 is ~33 KB)
    assert all(len(key[3]) == 16 for key in kept)  # 500+ movies of history, 16 bytes of key
    newest = next(reversed(kept))
    assert newest[3:] == (serving.history_digest(movie_ids[:509]), 100)
    serving.closed_form_clear()


def test_sasrec_reads_the_history_oldest_first(trained_models):
    """Histories come newest first; SASRec's list is what follows them read oldest first, so
    the same movies in another order give another list, and nothing names a reason."""
    from predictors import registry
    from pytorch_models.serving.fold_in import score_history

    published = registry.published("sasrec")
    history = [2571, 1, 260, 1196, 589]  # newest first
    recs = recommend(visitor="v:sequence", model="sasrec", k=20, history=history, dismissed=[318])
    assert recs.source == "sequence" and recs.model_version == trained_models["sasrec"] and not recs.fallback
    assert recs.because == {} and not {m for m, _ in recs.items} & {*history, 318}

    scores = score_history(published.checkpoint, published.indices(history[::-1]))
    scores[published.indices([*history, 318])] = float("-inf")
    assert _ids(recs) == [int(published.movie_ids[r]) for r in scores.topk(20).indices]
    reordered = recommend(visitor="v:sequence", model="sasrec", k=20, history=history[::-1], dismissed=[318])
    assert _ids(reordered) != _ids(recs)


def test_more_like_this_reads_the_published_neighbours_and_lists_what_the_scan_lists(trained_models,
                                                                                     monkeypatch):
    """PinSage's versions carry each movie's nearest movies (pytorch_models.serving.neighbours):
    "More like this" reads them, with a visitor's dismissed movies left out, and lists what
    scoring every movie lists; past the table's depth in dismissals it scores every movie."""
    import numpy as np

    from predictors import SIMILAR_MODEL, registry
    from predictors import recommend as serving
    from pytorch_models.serving.neighbours import NEIGHBOURS, K

    published = registry.published(SIMILAR_MODEL)
    assert (published.checkpoint.path / NEIGHBOURS).exists()
    read = []
    real = serving.neighbours.listed
    monkeypatch.setattr(serving.neighbours, "listed", lambda *a: read.append(a[1]) or real(*a))
    for movie_id in [int(m) for m in published.movie_ids[[0, 7, 2000, 9000]]]:
        table = serving.similar(movie_id=movie_id, k=12)
        dismissed = [m for m, _ in table[:3]]
        without = serving.similar(movie_id=movie_id, k=12, exclude=dismissed)
        monkeypatch.setattr(serving, "_neighbours", lambda published: None)
        assert [m for m, _ in table] == [m for m, _ in serving.similar(movie_id=movie_id, k=12)]
        scanned = serving.similar(movie_id=movie_id, k=12, exclude=dismissed)
        assert [m for m, _ in without] == [m for m, _ in scanned]
        assert not set(dismissed) & dict(without).keys()
        assert np.allclose([s for _, s in without], [s for _, s in scanned], atol=1e-5)
        monkeypatch.undo()
        monkeypatch.setattr(serving.neighbours, "listed", lambda *a: read.append(a[1]) or real(*a))
    assert len(read) == 8  # every list above came from the table
    deep = [m for m, _ in serving.similar(movie_id=1, k=K)]
    past = serving.similar(movie_id=1, k=12, exclude=deep[:K - 11])  # 11 of 32 left: too few for 12
    assert len(past) == 12 and not set(deep[:K - 11]) & dict(past).keys()
