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
