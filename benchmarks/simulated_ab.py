"""Which model do visitors prefer? Simulated visitors with real MovieLens tastes, against the live site.

Start the site first (`make demo`), then:

    python -m benchmarks.simulated_ab [--url http://127.0.0.1:8000] [--minutes 3] [--visitors 24]

The benchmark starts an experiment (`movie.experiments.models.Experiment`) with one arm per model, equal
weights, so the home page's "Recommended for you" row of each visitor comes from the model its
visitor id hashes to. Each simulated visitor takes the tastes of one MovieLens user: the site's
models train on an 80/20 split of each user's ratings (`predictors.training`), so the 20% are
movies the models never saw that user watch. The visitor clicks 5 of the user's training
movies (its history), then, round after round, opens the home page, reports the row's
impression (`/api/impressions`, as app.js does) and looks along the row: a poster of a movie in
the user's held-out 20% is clicked with probability --p-hit, any other with --p-miss; the first
click ends the round (credited to the row through its impression id, as a browser sends it),
and the next round comes after a short pause, by which time the live workers have folded the
click in. A visitor leaves after --rounds rounds and a new one arrives.

The table gives, per arm, the impressions, the rows clicked, CTR with its 95% Wilson interval
and the two-proportion test against the best arm (`movie.experiments.statistics`, the same
numbers as `manage.py experiment_report`); a PNG draws CTR with its interval per arm. The experiment is
stopped at the end and stays in the database. Last line: one JSON object.

The site's scheduled retrain adds visitors' clicks to its training data but never the held-out
ratings of MovieLens users, so no arm has seen what these visitors will click.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import random
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import django
from tqdm import tqdm

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django.setup()

from django.utils import timezone  # noqa: E402

from movie.catalogue.selectors import training_snapshot  # noqa: E402
from movie.experiments.models import Experiment  # noqa: E402
from movie.experiments.selectors import arm_ctr  # noqa: E402
from movie.experiments.statistics import arm_comparisons  # noqa: E402
from predictors.training import training_dataset  # noqa: E402

ARMS = ("pinsage", "ngcf", "lightgcn", "popular")
HISTORY_CLICKS = 5
MIN_HELD_OUT = 5
ROW = re.compile(r'<ul class="poster-grid" id="home-row" data-model="(\w+)" data-impression="([^"]+)" '
                 r'data-impression-token="([^"]+)">(.*?)</ul>', re.S)
POSTER = re.compile(r'data-movie-id="(\d+)"')
PNG = Path(__file__).resolve().parent.parent / "docs" / "simulated_ab.png"


@dataclass(frozen=True)
class Taste:
    """One MovieLens user: the movies the models trained on, and the held-out ones."""

    user: int
    seen: list[int]
    held_out: frozenset[int]


def tastes() -> list[Taste]:
    """Every user of the site's split with enough movies on both sides."""
    interactions, _ = training_dataset(training_snapshot())
    item_ids, user_ids = interactions.item_ids, interactions.user_ids
    train: dict[int, list[int]] = {}
    test: dict[int, set[int]] = {}
    for user, item in interactions.train:
        train.setdefault(int(user_ids[user]), []).append(int(item_ids[item]))
    for user, item in interactions.test:
        test.setdefault(int(user_ids[user]), set()).add(int(item_ids[item]))
    return [Taste(u, sorted(train[u]), frozenset(test[u])) for u in sorted(test)
            if len(test[u]) >= MIN_HELD_OUT and len(train.get(u, ())) >= HISTORY_CLICKS]


class Browser:
    """One visitor's cookies and the requests app.js would send."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def page(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.read().decode()

    def post(self, path: str, body: dict, key: str) -> int:
        csrf = next(c.value for c in self.jar if c.name == "csrftoken")
        request = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "X-CSRFToken": csrf, "Idempotency-Key": key,
                     "Referer": self.base + "/"},
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code


@dataclass
class Tally:
    hits: Counter = field(default_factory=Counter)  # arm -> rows whose click was a held-out movie
    refused: Counter = field(default_factory=Counter)  # status -> posts not answered 202
    lock: threading.Lock = field(default_factory=threading.Lock)


def visit(base: str, taste: Taste, args, rng: random.Random, tally: Tally) -> None:
    browser = Browser(base)
    browser.page("/")  # the CSRF cookie and a visitor id, as a first page view gives
    for movie_id in rng.sample(taste.seen, HISTORY_CLICKS):
        _count(tally, browser.post("/api/events", {"movie_id": movie_id, "kind": "click"}, str(uuid.uuid4())))
    for _ in range(args.rounds):
        time.sleep(args.pause)
        home = browser.page("/")
        found = ROW.search(home)
        if found is None or "Recommended for you" not in home:
            continue  # the new visitors' "Popular now": the history clicks were refused
        arm, impression, token, row = found.groups()
        _count(tally, browser.post("/api/impressions", {"token": token}, impression))
        clicked = None
        for position, movie_id in enumerate((int(m) for m in POSTER.findall(row)), start=1):
            if rng.random() < (args.p_hit if movie_id in taste.held_out else args.p_miss):
                clicked = movie_id
                body = {"movie_id": movie_id, "kind": "click", "impression": impression, "position": position}
                _count(tally, browser.post("/api/events", body, str(uuid.uuid4())))
                break
        with tally.lock:
            tally.hits[arm] += clicked in taste.held_out


def _count(tally: Tally, status: int) -> None:
    if status != 202:
        with tally.lock:
            tally.refused[status] += 1


def run(args) -> tuple[Experiment, Tally]:
    pool = tastes()
    experiment = Experiment.objects.create(
        name=f"simulated-ab-{timezone.now():%Y%m%dT%H%M%S}", arms=[{"model": m, "weight": 1} for m in ARMS],
        started_at=timezone.now(),
    )
    time.sleep(6)  # web processes keep the running experiment for 5 s (movie.experiments.selectors)
    tally, rng = Tally(), random.Random(args.seed)
    deadline = time.monotonic() + 60 * args.minutes

    def visitor_loop(index: int) -> None:
        own = random.Random(rng.random() + index)
        while time.monotonic() < deadline:
            visit(args.url, own.choice(pool), args, own, tally)
            progress.update(1)

    progress = tqdm(desc="visitors", unit=" visitor")
    threads = [threading.Thread(target=visitor_loop, args=(i,)) for i in range(args.visitors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.close()
    experiment.stopped_at = timezone.now()
    experiment.save(update_fields=["stopped_at"])
    return experiment, tally


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    models = [r.model for r in rows]
    ax.bar(models, [r.ctr for r in rows], color="#4c72b0")
    ax.errorbar(models, [r.ctr for r in rows],
                yerr=[[r.ctr - r.low for r in rows], [r.high - r.ctr for r in rows]],
                fmt="none", ecolor="black", capsize=5)
    ax.set_ylabel("CTR of the home row")
    ax.set_title("Simulated visitors, one arm per model (95% Wilson intervals)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(experiment: Experiment, tally: Tally, args) -> dict:
    rows = arm_ctr(experiment)
    tests = {c.model: c for c in arm_comparisons(rows)}
    print(f"\n{experiment.name}: {args.minutes} min, {args.visitors} visitors at a time, "
          f"p_hit {args.p_hit}, p_miss {args.p_miss}, {args.rounds} rounds each")
    print(f"{'arm':10} {'impressions':>11} {'clicked':>8} {'CTR':>7} {'95% interval':>17} "
          f"{'held-out hits':>13}  vs best")
    for r in rows:
        test = tests.get(r.model)
        verdict = "best" if test is None else (
            "no data" if test.p is None
            else f"z {test.z:.2f}, p {test.p:.3g}{' *' if test.significant else ''}")
        print(f"{r.model:10} {r.impressions:11d} {r.clicks:8d} {r.ctr:7.3f}   [{r.low:.3f}, {r.high:.3f}] "
              f"{tally.hits[r.model]:13d}  {verdict}")
    if tally.refused:
        print(f"posts not answered 202: {dict(tally.refused)}")
    plot(rows, args.png)
    print(f"chart: {args.png}")
    return {
        "experiment": experiment.name, "minutes": args.minutes, "visitors": args.visitors,
        "p_hit": args.p_hit, "p_miss": args.p_miss, "rounds": args.rounds,
        "arms": {r.model: {"impressions": r.impressions, "clicks": r.clicks, "ctr": round(r.ctr, 4),
                           "low": round(r.low, 4), "high": round(r.high, 4),
                           "held_out_hits": tally.hits[r.model],
                           "p_vs_best": None if r.model not in tests else tests[r.model].p}
                 for r in rows},
        "refused": dict(tally.refused),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--visitors", type=int, default=24, help="visitors on the site at once")
    parser.add_argument("--rounds", type=int, default=8, help="home-page views per visitor")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between a visitor's views")
    parser.add_argument("--p-hit", type=float, default=0.3, help="click probability of a held-out movie")
    parser.add_argument("--p-miss", type=float, default=0.01, help="click probability of any other movie")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", type=Path, default=PNG)
    args = parser.parse_args()
    experiment, tally = run(args)
    print(json.dumps(report(experiment, tally, args)))


if __name__ == "__main__":
    main()
