"""Freshness under load: many anonymous visitors clicking at once against a running site.

Start the site first (`make demo`), then:

    python -m benchmarks.click_load [--visitors 200] [--rate 100] [--duration 60]

Each visitor has its own cookies. Clicks go out open-loop at --rate per second in all,
round-robin over the visitors (each clicks every visitors/rate seconds, a random popular
movie). A click counts as fresh when all three models' lists reflect it: their
`as_of_event` is that click or a later one of the same visitor (a burst is folded in as one
update). The lists are watched in Redis, which is what `/api/recommendations/<model>/` serves
(`source: fresh`), every 20 ms; at the end every visitor's last click is checked through the
API as well. Then every accepted click is looked up in DynamoDB and in Kafka.

Beside freshness it prints the CPU each role of the demo serving --url spent per accepted click
(web, consumer, live worker, Kafka, DynamoDB, Redis: `benchmarks.stack_cpu`), from the first
click until the last was fresh, and with --profile DIR the functions that spent it (py-spy,
inclusive shares, 100 samples a second).

The service addresses come from var/demo-services.env, which `make demo` writes.
Prints a table; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import random
import re
import statistics
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import redis
from kafka import KafkaConsumer, TopicPartition
from tqdm import tqdm

from benchmarks.stack_cpu import (
    CLICK_ROLES,
    cpu_by_role,
    cpu_seconds,
    demo_roles,
    profile_start,
    profile_summary,
)
from pytorch_models.models.names import FINE_TUNED_LIVE

AS_OF = re.compile(rb'"as_of_event": "([0-9a-f-]+)"')
WATCH_EVERY_S = 0.02


class Visitor:
    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(base + "/", timeout=30).read()  # the CSRF cookie
        self.get("/api/recommendations/popular/?k=1")  # the session, before clicks overlap
        self.key: str | None = None  # the visitor id, from the first accepted click
        self.events: list[str] = []  # accepted clicks, in order
        self.clicked: set[int] = set()

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def click(self, movie_id: int) -> str:
        request = urllib.request.Request(
            self.base + "/api/events",
            data=json.dumps({"movie_id": movie_id, "kind": "click"}).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": self.cookie("csrftoken"),
                     "Referer": self.base + "/"},
            method="POST",
        )
        with self.opener.open(request, timeout=30) as response:
            answer = json.load(response)
        self.key = answer["visitor"]
        return answer["event_id"]

    def get(self, path: str) -> dict:
        with self.opener.open(self.base + path, timeout=30) as response:
            return json.load(response)


@dataclass
class Click:
    visitor: Visitor
    index: int  # position among the visitor's accepted clicks
    event_id: str
    accepted_at: float
    post_s: float
    seen: dict[str, float] = field(default_factory=dict)  # model -> when its list first reflected it

    @property
    def fresh_s(self) -> float | None:
        return max(self.seen.values()) - self.accepted_at if len(self.seen) == len(FINE_TUNED_LIVE) else None


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def read_env(path: Path) -> dict[str, str]:
    if not path.exists():
        raise SystemExit(f"{path} not found: start the site with `make demo` first")
    return dict(line.split("=", 1) for line in path.read_text().split())


class Watcher(threading.Thread):
    """Polls the cached lists of visitors with clicks not yet fresh in every model."""

    def __init__(self, client: redis.Redis):
        super().__init__(daemon=True)
        self.redis, self.lock, self.stop = client, threading.Lock(), threading.Event()
        self.pending: dict[str, list[Click]] = {}  # visitor key -> its clicks not fresh yet

    def add(self, click: Click) -> None:
        with self.lock:
            self.pending.setdefault(click.visitor.key, []).append(click)

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                watched = {key: list(clicks) for key, clicks in self.pending.items() if clicks}
            keys = [(v, m) for v in watched for m in FINE_TUNED_LIVE]
            pipe = self.redis.pipeline(transaction=False)
            for visitor, model in keys:
                pipe.get(f"recs:{model}:{visitor}")
            now = time.perf_counter()
            for (visitor, model), raw in zip(keys, pipe.execute(), strict=True):
                found = AS_OF.search(raw or b"")
                clicks = watched[visitor]
                order = clicks[0].visitor.events
                if not found or found.group(1).decode() not in order:
                    continue
                reached = order.index(found.group(1).decode())
                for click in clicks:
                    if click.index <= reached:
                        click.seen.setdefault(model, now)
            with self.lock:
                for visitor in watched:
                    self.pending[visitor] = [c for c in self.pending[visitor] if c.fresh_s is None]
            time.sleep(WATCH_EVERY_S)

    def waiting(self) -> int:
        with self.lock:
            return sum(map(len, self.pending.values()))


def kafka_event_ids(bootstrap: str, topic: str, quiet_s: float = 3.0) -> set[str]:
    """Event ids of every record in the topic: read from the start until none comes for quiet_s."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=int(quiet_s * 1000))
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    found = {json.loads(record.value).get("event_id") for record in consumer}
    consumer.close()
    return found


def dynamodb_event_ids(endpoint: str, table: str, visitors: list[str]) -> set[str]:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="dev", aws_secret_access_key="dev")
    found = set()
    for visitor in visitors:
        query = {"TableName": table, "KeyConditionExpression": "visitor = :v",
                 "ExpressionAttributeValues": {":v": {"S": visitor}}, "ProjectionExpression": "event_id"}
        while True:
            page = client.query(**query)
            found.update(item["event_id"]["S"] for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--visitors", type=int, default=200)
    parser.add_argument("--rate", type=float, default=100.0, help="clicks per second, all visitors together")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of clicking")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for the last clicks")
    parser.add_argument("--services", default="var/demo-services.env")
    parser.add_argument("--topic", default="clicks")
    parser.add_argument("--table", default="clicklog")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", type=Path, default=None,
                        help="also sample web, consumer and live worker with py-spy into this folder")
    args = parser.parse_args()
    from benchmarks.pages import calibration_ms  # pages builds on this module

    speed = calibration_ms()
    roles = demo_roles(urllib.parse.urlsplit(args.url).port or 80)
    services = read_env(Path(args.services))
    rng = random.Random(args.seed)
    base = args.url.rstrip("/")

    pool = [m["movie_id"] for m in Visitor(base).get("/api/recommendations/popular/?k=100")["items"]]
    with ThreadPoolExecutor(16) as setup:
        visitors = list(tqdm(setup.map(lambda _: Visitor(base), range(args.visitors)), total=args.visitors,
                             desc="visitors"))
    watcher = Watcher(redis.Redis.from_url(services["REDIS_URL"]))
    watcher.start()
    clicks: list[Click] = []
    failures: list[str] = []
    lock = threading.Lock()

    def send(visitor: Visitor, movie_id: int) -> None:
        started = time.perf_counter()
        try:
            event_id = visitor.click(movie_id)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            with lock:
                failures.append(type(exc).__name__)
            return
        done = time.perf_counter()
        with lock:
            click = Click(visitor, len(visitor.events), event_id, done, done - started)
            visitor.events.append(event_id)
            clicks.append(click)
        watcher.add(click)

    total = int(args.rate * args.duration)
    order = visitors * (total // len(visitors) + 1)
    cpu_before = cpu_seconds(roles)
    recorders = profile_start(roles, args.duration, args.profile) if args.profile else []
    started = time.perf_counter()
    with ThreadPoolExecutor(64) as senders:
        for i in tqdm(range(total), desc="clicks"):
            delay = started + i / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            visitor = order[i]
            movie_id = rng.choice([m for m in pool if m not in visitor.clicked])
            visitor.clicked.add(movie_id)
            senders.submit(send, visitor, movie_id)
    sent_s = time.perf_counter() - started
    deadline = time.perf_counter() + args.drain
    while watcher.waiting() and time.perf_counter() < deadline:
        time.sleep(0.1)
    watcher.stop.set()
    watcher.join()
    # Everything the clicks cost, their fold-ins included, and nothing after.
    cpu = cpu_by_role(cpu_before, cpu_seconds(roles))
    for recorder in recorders:
        recorder.wait()

    active = [v for v in visitors if v.events]
    served_stale = sum(
        1 for v in active for model in FINE_TUNED_LIVE
        for r in (v.get(f"/api/recommendations/{model}/?k=20"),)
        if r["source"] != "fresh" or r["as_of_event"] != v.events[-1]
    )
    accepted = {c.event_id for c in clicks}
    in_dynamodb = dynamodb_event_ids(services["DYNAMODB_ENDPOINT"], args.table, [v.key for v in active])
    in_kafka = kafka_event_ids(services["KAFKA_BOOTSTRAP"], args.topic)
    fresh = [c.fresh_s for c in clicks if c.fresh_s is not None]
    posts = [c.post_s for c in clicks]
    result = {
        "clicks_per_s": round(len(clicks) / sent_s, 1),
        "sent": total,
        "accepted": len(clicks),
        "failed": len(failures),
        "fresh_p50_s": round(statistics.median(fresh), 3) if fresh else None,
        "fresh_p95_s": round(percentile(fresh, 0.95), 3),
        "fresh_p99_s": round(percentile(fresh, 0.99), 3),
        "fresh_max_s": round(max(fresh), 3) if fresh else None,
        "post_p50_ms": round(1000 * statistics.median(posts), 1) if posts else None,
        "post_p95_ms": round(1000 * percentile(posts, 0.95), 1),
        "missing_dynamodb": len(accepted - in_dynamodb),
        "missing_kafka": len(accepted - in_kafka),
        "missing_models": len(clicks) - len(fresh),
        "last_click_not_served": served_stale,
        "cpu_ms_per_click": {role: round(1000 * cpu[role] / max(len(clicks), 1), 2)
                             for role in CLICK_ROLES if role in cpu},
        "calibration_ms": round(speed, 1),
    }
    result["cpu_ms_per_click_total"] = round(sum(result["cpu_ms_per_click"].values()), 2)
    print(f"\n{args.visitors} visitors, {args.rate:.0f} clicks/s for {args.duration:.0f} s against {base}")
    print(f"{'':<28}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    print(f"{'POST /api/events (ms)':<28}{1000 * statistics.median(posts):>9.1f}"
          f"{1000 * percentile(posts, .95):>9.1f}{1000 * percentile(posts, .99):>9.1f}"
          f"{1000 * max(posts):>9.1f}")
    if fresh:
        print(f"{'202 -> all 3 models (s)':<28}{statistics.median(fresh):>9.3f}{percentile(fresh, .95):>9.3f}"
              f"{percentile(fresh, .99):>9.3f}{max(fresh):>9.3f}")
    print(f"accepted {len(clicks)} of {total} ({result['clicks_per_s']} clicks/s), failed {len(failures)} "
          f"{sorted(set(failures))}; missing from DynamoDB {result['missing_dynamodb']}, Kafka "
          f"{result['missing_kafka']}, models {result['missing_models']}; last click not served fresh by the "
          f"API: {served_stale} of {len(active) * len(FINE_TUNED_LIVE)}")
    if cpu:
        cells = "  ".join(f"{role} {ms:.1f}" for role, ms in result["cpu_ms_per_click"].items())
        print(f"CPU ms per accepted click: {cells}; all {result['cpu_ms_per_click_total']:.1f} "
              f"(two cores carry at most {2000 / max(result['cpu_ms_per_click_total'], 1e-9):.0f} clicks/s, "
              f"{2000 / 1.5 / max(result['cpu_ms_per_click_total'], 1e-9):.0f} on a host 1.5x slower)")
    else:
        print(f"CPU per click not measured: no `python -m devstack demo` serves port "
              f"{urllib.parse.urlsplit(args.url).port}")
    print(f"calibration: a fixed pure-Python loop took {speed:.1f} ms of CPU")
    if args.profile:
        for role, frames in profile_summary(args.profile).items():
            per_click = result["cpu_ms_per_click"].get(role, 0.0)
            print(f"\n{role}: share of its samples, ms per click, and where (our deepest function → "
                  "the package it was in)")
            for where, share in frames:
                print(f"  {share:>6.1%} {share * per_click:>6.2f}  {where}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
