"""Click → fresh recommendations, measured through the real running stack.

Each trial is a new anonymous visitor (its own cookie jar) who clicks a few posters
through `POST /api/events`; after every click it polls
`GET /api/recommendations/<model>/` until the list is the worker's fine-tuned one
for that very click (`source == "fresh"` and `as_of_event` == the click's event id).
Prints p50/p95 per model and for "all models fresh".

Start the site first (`make demo`), then: `python -m benchmarks.click_to_recs`.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import random
import statistics
import time
import urllib.request

from tqdm import tqdm

MODELS = ("pinsage", "ngcf", "lightgcn")


class Visitor:
    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(self.base + "/").read()  # sets the CSRF cookie

    def _csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def get(self, path: str) -> dict:
        with self.opener.open(self.base + path) as response:
            return json.load(response)

    def click(self, movie_id: int) -> str:
        request = urllib.request.Request(
            self.base + "/api/events",
            data=json.dumps({"movie_id": movie_id, "kind": "click"}).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": self._csrf(), "Referer": self.base + "/"},
            method="POST",
        )
        with self.opener.open(request) as response:
            return json.load(response)["event_id"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--visitors", type=int, default=10)
    parser.add_argument("--clicks", type=int, default=3, help="clicks per visitor")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for one click")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    pool = [item["movie_id"] for item in Visitor(args.url).get("/api/recommendations/popular/?k=100")["items"]]
    latencies: dict[str, list[float]] = {m: [] for m in (*MODELS, "all")}
    timeouts = 0
    for _ in tqdm(range(args.visitors), desc="visitors"):
        visitor = Visitor(args.url)
        for movie_id in rng.sample(pool, args.clicks):
            started = time.perf_counter()
            event_id = visitor.click(movie_id)
            waiting = set(MODELS)
            while waiting and time.perf_counter() - started < args.timeout:
                for model in list(waiting):
                    recs = visitor.get(f"/api/recommendations/{model}/?k=20")
                    if recs["source"] == "fresh" and recs["as_of_event"] == event_id:
                        latencies[model].append(time.perf_counter() - started)
                        waiting.discard(model)
                time.sleep(0.01)
            if waiting:
                timeouts += 1
            else:
                latencies["all"].append(time.perf_counter() - started)

    print(f"\nclick → fresh recommendations, {args.visitors} visitors × {args.clicks} clicks, {args.url}")
    print(f"{'model':<10} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for model, values in latencies.items():
        if values:
            print(
                f"{model:<10} {len(values):>4} {statistics.median(values) * 1000:>8.0f} "
                f"{percentile(values, 0.95) * 1000:>8.0f} {max(values) * 1000:>8.0f}"
            )
    print(f"clicks that timed out after {args.timeout:.0f} s: {timeouts}")


if __name__ == "__main__":
    main()
