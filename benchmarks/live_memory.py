"""A live worker's memory over 10,000 visitors: bounded once idle visitors are evicted.

    python -m benchmarks.live_memory [--visitors 10000] [--idle 5] [--plot docs/live_memory.png]

Runs the live engine in this process on the published models (`make demo` trains them), warmed
up as a worker is before it takes work, with
a private valkey-server for the visitors' state, and feeds it synthetic visitors (5 clicks
each on popular movies) in micro-batches of 64, their events served from memory. Visitors
idle for --idle seconds leave the worker's visitor graph. Resident memory (VmRSS) is read
after every batch and once more after the last visitors have been evicted.
Prints a table, writes the curve as a PNG; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django.setup()

import matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from django.conf import settings  # noqa: E402
from tqdm import tqdm  # noqa: E402

from devstack.services import RedisServer  # noqa: E402
from livepath import queue  # noqa: E402
from predictors import registry  # noqa: E402
from predictors.live import MAX_BATCH, LiveEngine  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CLICKS = 5


@dataclass(frozen=True)
class SyntheticEvent:
    event_id: str
    movie_id: int
    kind: str
    sort_key: str


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds before an idle visitor is evicted")
    parser.add_argument("--plot", default="docs/live_memory.png")
    args = parser.parse_args()
    torch.set_num_threads(1)
    published = registry.published("popular")
    if any(registry.published(m) is None for m in ("popular", "lightgcn", "ngcf", "pinsage")):
        raise SystemExit(f"no published models under {settings.MODEL_DIR}: "
                         f"run `make demo` once (it trains them)")
    popular = published.movie_ids[np.argsort(-published.checkpoint.extra["item_popularity"].numpy())[:500]]

    valkey = RedisServer(log_dir=Path("var/log")).start()
    try:
        settings.REDIS_URL = valkey.url
        engine = LiveEngine(idle_s=args.idle)
        rng = np.random.default_rng(0)
        events: dict[str, list[SyntheticEvent]] = {}
        read = lambda visitor, after: events[visitor]  # noqa: E731

        loaded = rss_mb()
        engine.warm_up()  # what a worker does before it takes work (workers.tasks)
        start = rss_mb()
        curve = [(0, start, 0)]
        for first in tqdm(range(0, args.visitors, MAX_BATCH), desc="visitors"):
            batch = [f"s:bench-{uuid.uuid4().hex}" for _ in range(min(MAX_BATCH, args.visitors - first))]
            for visitor in batch:
                movies = rng.choice(popular, CLICKS, replace=False)
                events[visitor] = [SyntheticEvent(str(uuid.uuid4()), int(m), "click",
                                                  f"2026-01-01T00:00:0{i}.000000Z#{i}")
                                   for i, m in enumerate(movies)]
            queue.visitors_wait(batch)
            claim = queue.visitors_claim(len(batch))
            engine.update(claim, read)
            queue.visitors_release(claim)
            del events  # what the click log holds is not the worker's memory
            events = {}
            curve.append((first + len(batch), rss_mb(), len(engine.live["pinsage"].graph)))
        peak = max(mb for _, mb, _ in curve)
        time.sleep(args.idle + 0.5)
        engine.update(queue.Claim('', []), read)  # an empty batch still evicts the idle
        end = rss_mb()
        graph = engine.live["pinsage"].graph
        curve.append((args.visitors, end, len(graph)))
    finally:
        valkey.stop()

    print(f"\nlive worker memory over {args.visitors} visitors ({CLICKS} clicks each), "
          f"evicted after {args.idle} s idle")
    print(f"{'point':<26}{'RSS MB':>8}{'in graph':>10}")
    print(f"{'models loaded':<26}{loaded:>8.1f}{0:>10}")
    for label, (_, mb, live) in (("ready (after warm-up)", curve[0]), ("after the last batch", curve[-2]),
                                 ("after eviction", curve[-1])):
        print(f"{label:<26}{mb:>8.1f}{live:>10}")
    print(f"peak {peak:.1f} MB; growth after eviction {end - start:+.1f} MB (bar: within 100 MB)")
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot([n for n, _, _ in curve[:-1]], [mb for _, mb, _ in curve[:-1]], label="RSS")
    ax.scatter([args.visitors], [end], color="C1", zorder=3, label="after eviction")
    ax.axhline(start + 100, color="grey", linestyle=":", label="start + 100 MB")
    ax.set_xlabel("visitors folded in")
    ax.set_ylabel("resident memory (MB)")
    ax.set_title("A live worker's memory (benchmarks/live_memory.py)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    print(f"plot: {args.plot}")
    print(json.dumps({"visitors": args.visitors, "rss_models_loaded_mb": round(loaded, 1),
                      "rss_start_mb": round(start, 1), "rss_peak_mb": round(peak, 1),
                      "rss_after_eviction_mb": round(end, 1), "growth_mb": round(end - start, 1),
                      "in_graph_after_eviction": len(graph), "graph_nodes": graph.graph.num_nodes("user")}))


if __name__ == "__main__":
    main()
