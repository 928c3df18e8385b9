"""Faults on the click path: 20 visitors click while one part fails, then every answer is checked.

    python -m benchmarks.faults [--faults kafka_pause redis_restart ...]

runs tests/test_faults.py (real Kafka, DynamoDB, Redis, MariaDB, granian, a Celery live worker,
the consumer and beat, all private to the run) and prints one row per fault; the last line is
one JSON object. Per fault: clicks accepted (202), refused (any other answer, or none), lost
(a 202 missing from the click log, the mirror or a model), double (an event applied more than
once, or a refused one that reached the models), how many clicks needed a retry (a 503 or no
answer first), how many tries got a 5xx or no answer while the part was down (the fault as the
visitors felt it) and how long the models took to settle after the clicking stopped.

`Rig` (benchmarks/fault_rig.py) and `drive` are what the tests use: the visitors behave like
app.js (an idempotency key per click, retried on 5xx or no answer for up to 7 s), so a retry
that reaches a server twice must still count once.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FAULTS = ("kafka_pause", "kafka_restart", "worker_kill", "consumer_kill", "redis_restart", "dynamodb_stop",
          "web_crash_after_log", "web_crash_after_mirror")
VISITORS = 20
RETRY_S, TRY_TIMEOUT_S, PAUSES_S = 7.0, 5.5, (0.25, 1.0)  # as movie/static/movie/app.js
CRASH_MOVIE = 1  # Toy Story: only the crash click uses it


# --- the visitors --------------------------------------------------------------------------


@dataclass
class Click:
    key: str
    movie_id: int
    status: int | None = None  # the last answer (None: no answer)
    tries: int = 0
    retry: bool = True
    # (when sent, monotonic; answer) per try
    answers: list[tuple[float, int | None]] = field(default_factory=list)


class Visitor:
    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(base + "/history/", timeout=30).read()  # a visitor id and the CSRF cookie
        self.id: str | None = None
        self.clicks: list[Click] = []

    def _csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def _try(self, path: str, body: dict | None, key: str | None = None) -> tuple[int | None, dict]:
        headers = {"X-CSRFToken": self._csrf(), "Referer": self.base + "/",
                   "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method="POST")
        try:
            with self.opener.open(request, timeout=TRY_TIMEOUT_S) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, {}
        except OSError:  # refused, reset, timed out: no answer
            return None, {}

    def click(self, movie_id: int, *, retry: bool = True) -> Click:
        click = Click(str(uuid.uuid4()), movie_id, retry=retry)
        self.clicks.append(click)
        deadline = time.monotonic() + RETRY_S
        while True:
            click.tries += 1
            sent = time.monotonic()
            click.status, answer = self._try("/api/events", {"movie_id": movie_id, "kind": "click"},
                                             click.key)
            click.answers.append((sent, click.status))
            if click.status == 202:
                self.id = answer["visitor"]
            pause = PAUSES_S[min(click.tries - 1, len(PAUSES_S) - 1)]
            again = click.status is None or click.status >= 500
            if not (retry and again) or time.monotonic() + pause >= deadline:
                return click
            time.sleep(pause)

    def remove(self, movie_id: int) -> int | None:
        request = urllib.request.Request(
            f"{self.base}/history/{movie_id}/remove", data=b"next=/history/", method="POST",
            headers={"X-CSRFToken": self._csrf(), "Referer": self.base + "/",
                     "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code


@dataclass
class Window:
    """When the fault was injected and when its injector returned, healed (monotonic clock)."""

    start: float = 0.0
    end: float = 0.0

    @property
    def seconds(self) -> float:
        return self.end - self.start


def drive(visitors: list[Visitor], movies: list[int], *, seconds: float, fault, at_s: float = 2.0,
          seed: int = 0) -> Window:
    """Every visitor clicks distinct movies, one after another, for `seconds`; `fault()` runs
    `at_s` seconds in, on its own thread. Returns when the fault was injected and healed."""
    rng = random.Random(seed)
    pools = [rng.sample(movies, len(movies)) for _ in visitors]
    stop = time.monotonic() + seconds
    window = Window()

    def clicking(visitor: Visitor, pool: list[int]) -> None:
        while time.monotonic() < stop and pool:
            visitor.click(pool.pop())
            time.sleep(rng.uniform(0.05, 0.3))

    def injecting() -> None:
        time.sleep(at_s)
        window.start = time.monotonic()
        fault()
        window.end = time.monotonic()

    threads = [threading.Thread(target=clicking, args=(v, p)) for v, p in zip(visitors, pools, strict=True)]
    threads.append(threading.Thread(target=injecting))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return window


# --- the checks -----------------------------------------------------------------------------


@dataclass
class Outcome:
    fault: str
    accepted: int = 0
    retried: int = 0  # clicks that needed more than one try (503 or no answer first)
    refused: int = 0
    lost: int = 0
    double: int = 0
    in_history_only: int = 0  # refused clicks a dying web process left in the history (removable)
    settled_s: float | None = None
    fault_s: float = 0.0
    # Tries sent while the part was down (from a try's length before the injection until the
    # injector healed it) that got a 5xx or no answer: what the visitors felt of the fault.
    unavailable: int = 0
    felt: dict = field(default_factory=dict)  # the rig's note of what the injector did (`Rig.felt`)
    problems: list[str] = field(default_factory=list)


def expected(visitor: Visitor, confirmed: list) -> dict:
    """What the models must hold for this visitor: its confirmed log, in order."""
    return {"applied": len(confirmed), "history": list(dict.fromkeys(e.movie_id for e in confirmed)),
            "last": confirmed[-1].event_id if confirmed else None}


def check(name: str, visitors: list[Visitor], *, read_log, mirrored, live_state, fresh, settle_s: float,
          started: float, web_died: bool = False, window: Window | None = None) -> Outcome:
    """Compare every answer with the click log, the mirror and the models (waiting up to
    `settle_s` for the models); `read_log(visitor)` gives confirmed events, `mirrored(keys)`
    the event ids the mirror holds, `live_state(visitor)` the Redis state (`applied`,
    `history`), `fresh(visitor, event_id)` whether every model's list reflects that event.
    `web_died`: a refused click may then be in the history (removable), never only in the log.
    `window`: when the fault was on (`drive`), to count the answers the visitors got then."""
    outcome = Outcome(name)
    clicks = [c for v in visitors for c in v.clicks]
    accepted = {c.key for c in clicks if c.status == 202}
    outcome.accepted, outcome.refused = len(accepted), len(clicks) - len(accepted)
    outcome.retried = sum(c.tries > 1 for c in clicks)
    if window is not None:
        outcome.fault_s = round(window.seconds, 1)
        outcome.unavailable = sum(window.start - TRY_TIMEOUT_S <= sent <= window.end
                                  and (status is None or status >= 500)
                                  for c in clicks for sent, status in c.answers)
    logs = {v.id: read_log(v.id) for v in visitors if v.id}
    logged = {e.event_id for events in logs.values() for e in events}
    in_mirror = mirrored([c.key for c in clicks])
    refused = {c.key for c in clicks if c.status != 202}
    # A dying web process may have written a click, even confirmed it, without answering: it
    # must then be in the history, where the visitor can remove it.
    refused_kept = refused & ((logged - in_mirror) if web_died else (logged | in_mirror))
    outcome.in_history_only = len(refused & in_mirror)
    missing = accepted - (logged & in_mirror)
    outcome.problems += [f"202 {k} missing from the click log or the mirror" for k in sorted(missing)]
    outcome.problems += [f"refused {k} kept" for k in sorted(refused_kept)]
    deadline = time.monotonic() + settle_s
    while True:
        behind = [v for v in visitors if v.id and logs[v.id]
                  and not (fresh(v.id, logs[v.id][-1].event_id)
                           and live_state(v.id)["applied"] >= len(logs[v.id]))]
        if not behind or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    outcome.settled_s = None if behind else round(time.monotonic() - started, 1)
    unsettled = {c.key for v in behind for c in v.clicks if c.key in accepted}
    outcome.problems += [f"{v.id} not settled within {settle_s:.0f} s" for v in behind]
    doubled = set()
    for visitor in visitors:
        if not visitor.id or visitor in behind:
            continue
        state, want = live_state(visitor.id), expected(visitor, logs[visitor.id])
        if state["applied"] > want["applied"]:
            doubled.add(visitor.id)
            outcome.problems.append(f"{visitor.id}: {state['applied']} events applied, "
                                    f"{want['applied']} logged")
        if state["history"] != want["history"]:
            outcome.problems.append(f"{visitor.id}: model history {state['history']} "
                                    f"!= log {want['history']}")
    outcome.lost = len(missing | unsettled)
    outcome.double = len(doubled) + len(refused_kept & logged)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", nargs="*", default=list(FAULTS), choices=FAULTS)
    args = parser.parse_args()
    report = Path(tempfile.mkdtemp(prefix="faults-report-")) / "faults.jsonl"
    selection = " or ".join(args.faults)
    env = {**os.environ, "FAULTS_REPORT": str(report)}
    env.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/cinegraph")
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/test_faults.py", "-k", selection], cwd=ROOT, env=env)
    rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    print(f"\n{'fault':<24}{'accepted':>9}{'retried':>9}{'5xx in fault':>13}{'refused':>9}{'in history':>11}"
          f"{'lost':>6}{'double':>8}{'settled s':>11}")
    for row in rows:
        settled = "-" if row["settled_s"] is None else f"{row['settled_s']:.1f}"
        print(f"{row['fault']:<24}{row['accepted']:>9}{row['retried']:>9}{row['unavailable']:>13}{row['refused']:>9}"
              f"{row['in_history_only']:>11}{row['lost']:>6}{row['double']:>8}{settled:>11}")
    print(json.dumps({"faults": {r["fault"]: {k: r[k] for k in ("accepted", "retried", "unavailable",
                                                                "refused", "in_history_only", "lost",
                                                                "double", "settled_s", "felt")}
                                 for r in rows},
                      "lost": sum(r["lost"] for r in rows), "double": sum(r["double"] for r in rows),
                      "tests_exit": code}))
    sys.exit(code)


def outcome_record(outcome: Outcome) -> None:
    """Append the outcome to $FAULTS_REPORT (what main() prints), when it is set."""
    path = os.environ.get("FAULTS_REPORT")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(asdict(outcome)) + "\n")


if __name__ == "__main__":
    main()
