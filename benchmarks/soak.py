"""Months in an hour: load, sign-ups, log-ins, removals, a hostile client and faults against
the demo stack, with every store's size sampled as it runs.

    python -m benchmarks.soak [--minutes 60] [--rate 50] [--visitors 500] [--fault-every 300]
                              [--sample-every 60] [--port 8010] [--out var/soak]

Starts `python -m devstack demo` itself (`benchmarks.soak_stack`) with its clocks scaled down
(SOAK_ENV: a retrain every 120 s, click log, impressions and sessions kept for 10 minutes) and
production rate limits behind one trusted proxy, and waits until every model has a version.
Honest visitors each come from an address of their own (IPv4 or an IPv6 /64, in
X-Forwarded-For); they act at --rate in all, at most 64 actions in flight (the rate served is
printed): they click movies they have not clicked (the popular 100, then the catalogue's first
2,000; each click as app.js sends it: an idempotency key, retried on 5xx or no answer for 7 s),
rate, view lists and post their impressions, remove a movie now and then, sign up, log out and log
back in. A hostile client floods cookie-less requests and guesses an honest account's password
from one address. Every --fault-every seconds one fault of `soak_stack.FAULTS` hits the stack.

Every --sample-every seconds (and at the end) it prints the size of every store: disk of
var/models and var/dynalite, Redis memory, each role's RSS, rows of the history, session and
impression tables, versions kept per model. At the end every accepted click is checked against
the click log, the history and the live models (lost, double), and the 429s are split between
the hostile client and honest visitors. Goal: every resource flat after the first 15 minutes
(within 10%: the median of the last 10 minutes' samples against that of minutes 15-25, rows a
retention bounds counted per action served in it, `soak_stack.flatness`) but the demo's Kafka,
which a restart bounds (RESTART_BOUNDED: its largest sample within 10% of its bound), 0 lost,
0 double, 0 honest 429s, 0 5xx. Draws the curves into <out>/soak.png; prints a table; the last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from benchmarks.pages import calibration_ms
from benchmarks.soak_audit import Auditor
from benchmarks.soak_stack import (
    FAULTS,
    LEVEL_S,
    PER_ACTION,
    SERVED,
    VAR,
    WARM_UP_S,
    DemoStack,
    flatness,
    plot,
    print_sample,
    sample,
)
from benchmarks.soak_visitors import HOSTILE_ADDRESS, Client, Visitor, act, honest_address, hostile

SENDERS = 64
POOL = 2000  # movies the honest visitors click
WARM_UP_VISITORS = 20  # each clicks 10 movies before the clock starts (models_wait)

# The demo's clocks, scaled so an hour shows what months would: everything that expires or is
# pruned does so within the run.
SOAK_ENV = {
    "RETRAIN_EVERY": "120",
    "DJANGO_TRUSTED_PROXIES": "1",  # the soak is the proxy: X-Forwarded-For names the client
    # production's limits, not .env.dev's
    "RATE_LIMIT_SESSIONS_PER_MINUTE": "60", "RATE_LIMIT_EVENTS_PER_ADDRESS_PER_MINUTE": "1200",
    "RATE_LIMIT_LOGINS_PER_ADDRESS_PER_5_MINUTES": "30", "RATE_LIMIT_SIGNUPS_PER_HOUR": "20",
    "CLICKLOG_RETENTION_DAYS": "0.007", "IMPRESSIONS_RETENTION_DAYS": "0.007",  # RETENTION_S
    "EXPIRY_SWEEP_S": "60",
    # Versions pruned within the run: two kept, and one replaced kept as long as a retrain takes
    "MODEL_VERSIONS_KEPT": "2", "MODEL_VERSION_GRACE_S": "120",
    "DYNALITE_MEMORY_LOG_S": "60",  # its log tells V8's heap from LevelDB's memory
    "SESSION_COOKIE_AGE": "600", "SESSIONS_CLEAR_S": "60",
    "LIVE_STATE_TTL_S": "600",  # an id idle this long (a visitor logged out for good) leaves Redis
    # tansu's restart bound (devstack.services): at 64 MB reached every ~15 minutes
    "KAFKA_MAX_RSS_MB": os.environ.get("KAFKA_MAX_RSS_MB", "64"),
}
RETENTION_S = 0.007 * 24 * 3600  # about 10 minutes: the click log's, impressions' and sessions'
FLAT = 0.10
# What a restart bounds rather than keeps flat: judged by its largest sample against the bound.
RESTART_BOUNDED = {"kafka RSS MB": float(SOAK_ENV["KAFKA_MAX_RSS_MB"])}


def clicked_pool(base: str) -> list[int]:
    """The movies honest visitors click: the popular 100 first, then the rest of the
    catalogue's first POOL. A visitor clicks each movie once, and about 300 in an hour, so a
    pool of only the 100 would run dry."""
    from movie.catalogue.models import Movie

    popular = Client(base, "198.18.0.1").request("/api/recommendations/popular/?k=100")[1]
    pool = [m["movie_id"] for m in json.loads(popular)["items"]]
    known = set(pool)
    catalogue = Movie.objects.order_by("id").values_list("id", flat=True)[:POOL]
    return pool + [m for m in catalogue if m not in known]


def drive(stack: DemoStack, args: argparse.Namespace) -> dict:
    """The honest load, the hostile client and the faults for --minutes; samples on the way."""
    rng = random.Random(args.seed)
    base = stack.base
    pool = clicked_pool(base)
    visitors = [Visitor(Client(base, honest_address(i))) for i in range(args.visitors)]
    attacker, stop, victims = Client(base, HOSTILE_ADDRESS), threading.Event(), []
    threading.Thread(target=hostile, args=(attacker, stop, victims), daemon=True).start()
    auditor = Auditor(visitors)
    auditor.start()
    faults, samples = [], []
    answered: deque[float] = deque()  # when each honest action ended, for the rate served

    def measure(at_s: float) -> None:
        now = time.monotonic()
        while answered and answered[0] < now - RETENTION_S:
            answered.popleft()
        samples.append({**sample(stack, at_s), SERVED: len(answered)})
        print_sample(samples[-1])

    measure(0.0)
    started, total = time.monotonic(), int(args.rate * args.minutes * 60)
    next_sample, next_fault = args.sample_every, args.fault_every
    # At most SENDERS actions in flight: when the stack falls behind, the next action waits for
    # a sender rather than joining a queue that outlives the run; the rate served is reported.
    in_flight, crashed, sent = threading.BoundedSemaphore(SENDERS), Counter(), 0
    senders = ThreadPoolExecutor(SENDERS)

    def done(future) -> None:
        if not future.cancelled() and future.exception() is not None:
            crashed[repr(future.exception())[:120]] += 1  # a defect of the soak: shown, not hidden
        answered.append(time.monotonic())
        in_flight.release()
    try:
        for n in tqdm(range(total), desc="honest actions", mininterval=10):
            delay = started + n / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif time.monotonic() - started >= args.minutes * 60:
                break  # a stack that served less than the rate: the run lasts --minutes all the same
            in_flight.acquire()
            senders.submit(act, visitors[n % len(visitors)], random.Random(rng.random()), pool, n
                           ).add_done_callback(done)
            sent += 1
            elapsed = time.monotonic() - started
            if not victims and (account := next((v.account for v in visitors if v.account), None)):
                victims.append(account)
            if elapsed >= next_fault:
                name = FAULTS[len(faults) % len(FAULTS)]
                faults.append([round(elapsed / 60, 1), name, "..."])
                threading.Thread(
                    target=lambda row=faults[-1]: row.__setitem__(2, stack.fault(row[1]))).start()
                next_fault += args.fault_every
            if elapsed >= next_sample:
                measure(elapsed)
                next_sample += args.sample_every
    finally:
        stop.set()
        senders.shutdown(wait=False, cancel_futures=True)
    served_s = time.monotonic() - started
    for _ in range(SENDERS):  # the actions in flight finish (each is bounded by its retries)
        in_flight.acquire()
    time.sleep(Auditor.AUDIT_AFTER_S)  # the last clicks settle
    auditor.stop.set()
    auditor.join()
    auditor.round(final=True)
    measure(time.monotonic() - started)
    honest = Counter()
    for visitor in visitors:
        honest.update(visitor.client.statuses)
    clicks = [c for v in visitors for c in v.clicks]
    doubled = auditor.doubled()
    return {
        "actions_per_s": round(sent / served_s, 1), "actions_crashed": dict(crashed),
        "accepted": sum(c.status == 202 for c in clicks), "refused": sum(c.status != 202 for c in clicks),
        "lost": len(auditor.lost), "lost_keys": dict(list(auditor.lost.items())[:20]),
        "double": len(doubled) + auditor.refused_applied, "doubled": doubled[:20],
        # A 503 is the documented answer while a part is down (the page retries it); any other
        # 5xx is a defect.
        "honest_429": honest[429], "honest_503": honest[503],
        "honest_5xx": sum(n for s, n in honest.items() if s and s >= 500 and s != 503),
        "honest_statuses": {str(k): v for k, v in sorted(honest.items(), key=str)},
        "click_statuses": dict(Counter(str(c.status) for c in clicks)),
        "hostile_429": attacker.statuses[429], "hostile_requests": sum(attacker.statuses.values()),
        "faults": faults, "samples": samples,
    }


def retrains_done() -> int:
    """Scheduled retrains the demo's retrain worker has finished (its log, var/log)."""
    log = VAR / "log" / "worker-retrain1.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return sum("retrain_models[" in line and "] succeeded in" in line for line in lines)


def models_wait(stack: DemoStack, base: str, pool: list[int], timeout_s: float = 3600) -> None:
    """Wait until every served model keeps MODEL_VERSIONS_KEPT versions, or the gate has had
    its say: a site that has run for a while keeps that many of each model it republishes. A
    first `make demo` answers at once and trains the GNNs behind the site, and each scheduled
    retrain adds a version that passes the gate. The soak measures the steady state, not that
    training (a run that started with one version a model counted the second as growth). A
    retrain publishes only when its data changed, so a few visitors of the warm-up's own click
    first; a model still short of its versions two retrains later is one the gate refuses
    (the graph filter's held-out recall drops more than the gate allows with the soak's random
    clicks), and stays as it is."""
    from predictors.registry import versions
    from pytorch_models.models.names import SERVED_MODELS

    kept = int(SOAK_ENV["MODEL_VERSIONS_KEPT"])
    deadline = time.monotonic() + timeout_s
    retrains_then = None  # retrains finished when the warm-up's clicks were in
    with tqdm(total=kept * len(SERVED_MODELS), desc=f"models with {kept} versions") as bar:
        while (done := sum(min(kept, len(versions(m))) for m in SERVED_MODELS)) < bar.total:
            bar.update(done - bar.n)
            if retrains_then is None and all(versions(m) for m in SERVED_MODELS):
                for i in range(WARM_UP_VISITORS):
                    visitor = Visitor(Client(base, f"198.18.1.{i + 1}"))
                    for movie_id in random.Random(i).sample(pool, 10):
                        visitor.event(movie_id)
                retrains_then = retrains_done()
            if retrains_then is not None and retrains_done() >= retrains_then + 2:
                short = {m: len(versions(m)) for m in SERVED_MODELS if len(versions(m)) < kept}
                print(f"two retrains since the warm-up's clicks; the gate refused versions of {short}")
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the demo's models had not {kept} versions after {timeout_s:.0f} s: "
                                 f"see {stack.log_path}")
            time.sleep(5)
        bar.update(done - bar.n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=float, default=50,
                        help="honest actions per second, all visitors together")
    parser.add_argument("--visitors", type=int, default=500)
    parser.add_argument("--fault-every", type=float, default=300)
    parser.add_argument("--sample-every", type=float, default=60)
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--out", type=Path, default=VAR / "soak")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    speed = calibration_ms()
    with DemoStack(port=args.port, env=SOAK_ENV, log_path=args.out / "demo.log") as stack:
        os.environ.update(stack.services())  # the readers below: the demo's Redis and DynamoDB
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
        import django
        django.setup()
        models_wait(stack, stack.base, clicked_pool(stack.base))
        result = drive(stack, args)
    samples = result.pop("samples")
    growth = {k: v for k, v in flatness(samples).items() if k not in RESTART_BOUNDED}
    peaks = {k: max(s[k] for s in samples if k in s) for k in RESTART_BOUNDED}
    restarts = (args.out / "demo.log").read_text(errors="replace").count("over its bound")
    result.update(minutes=args.minutes, rate=args.rate, visitors=args.visitors,
                  calibration_ms=round(speed, 1), growth_after_warm_up=growth, restart_bounded_peaks=peaks,
                  restarts_for_bounds=restarts, last_sample=samples[-1])
    result["goal_met"] = (result["lost"] == result["double"] == result["honest_429"]
                          == result["honest_5xx"] == 0
                          and all(g <= FLAT for g in growth.values())
                          and all(peaks[k] <= bound * (1 + FLAT) for k, bound in RESTART_BOUNDED.items()))
    (args.out / "samples.json").write_text(json.dumps(samples, indent=1))
    plot(samples, args.out / "soak.png")
    print(f"\nfaults: {result['faults']}")
    print(f"growth, the last {LEVEL_S // 60} minutes' median against minutes {WARM_UP_S // 60}-"
          f"{(WARM_UP_S + LEVEL_S) // 60} (per action served: {', '.join(PER_ACTION)}): "
          + ", ".join(f"{k} {v:+.0%}" for k, v in growth.items()))
    print("bounded by a restart: " + ", ".join(f"{k} at most {peaks[k]:.0f} (bound {b:.0f})"
                                                for k, b in RESTART_BOUNDED.items())
          + f"; {restarts} restarts for a bound")
    print(f"honest actions served at {result['actions_per_s']}/s of {args.rate:g}/s offered; "
          f"crashed in the soak itself: {result['actions_crashed'] or 'none'}")
    print(f"clicks accepted {result['accepted']}, refused {result['refused']}, lost {result['lost']}, double "
          f"{result['double']}; 429s honest {result['honest_429']}, hostile {result['hostile_429']} of "
          f"{result['hostile_requests']}; honest 503 {result['honest_503']} (during faults), other 5xx "
          f"{result['honest_5xx']}; answers to honest visitors {result['honest_statuses']}")
    for key, why in result["lost_keys"].items():
        print(f"  lost {key}: {why}")
    for why in result["doubled"]:
        print(f"  double: {why}")
    print(f"calibration: a fixed pure-Python loop took {speed:.1f} ms of CPU (a host 1.5x slower saturates "
          f"at two thirds of the rate); plot {args.out / 'soak.png'}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
