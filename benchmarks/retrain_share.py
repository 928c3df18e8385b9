"""What a scheduled retrain costs the pages it shares the machine with (issue 24, item 4).

    python -m benchmarks.retrain_share [--port 8033] [--connections 16] [--page-seconds 5]

Starts the demo (`python -m devstack demo`, as `make demo` does, its retrain worker at nice 10,
with the settings' RETRAIN_BUDGET_S and RETRAIN_THREADS; no scheduled retrain of its own), then:
1. `benchmarks.pages` between retrains (one run: every page at --connections);
2. sends `workers.tasks.retrain_models` to the retrain worker (`celery call`, as beat would)
   and runs `benchmarks.pages` again and again while it trains, until the worker logs the task's
   end (`var/log/worker-retrain1.log`: its seconds and each model's result);
3. `benchmarks.pages` once more after it.
Prints each phase's worst page p95 and least req/s (pages / API) with the goals (p95 <= 50 ms,
>= 300 req/s, the API >= 600) judged for the pages measured while the retrain ran, the retrain's
wall time and each model's result, and the calibration loop; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.pages import API_RPS, PAGE_P95_MS, PAGE_RPS, calibration_ms
from benchmarks.scale_stack import benchmark_json
from benchmarks.soak_stack import ROOT, VAR, DemoStack
from devstack.app import app_env

RETRAIN_LOG = ROOT / "var" / "log" / "worker-retrain1.log"
DONE = re.compile(r"Task workers\.tasks\.retrain_models\[(?P<id>[0-9a-f-]+)\] "
                  r"(?P<how>succeeded|raised|failed)[^:]*?(?: in (?P<seconds>[\d.]+)s)?: (?P<result>.*)$")


def worst(pages: dict) -> dict:
    """The worst page p95 and the least req/s of the pages and of the API, over `pages` runs."""
    rows = [(name, row) for run in pages for name, row in run["pages"].items()]
    api = [row["rps"] for name, row in rows if name.startswith("api")]
    others = [(name, row) for name, row in rows if not name.startswith("api")]
    slowest = max(rows, key=lambda item: item[1]["p95_ms"])
    least = min(row["rps"] for _, row in others)
    return {"worst_p95_ms": round(slowest[1]["p95_ms"], 1), "worst_page": slowest[0],
            "least_page_rps": round(least, 1), "least_api_rps": round(min(api), 1) if api else None,
            "goals_met": (slowest[1]["p95_ms"] <= PAGE_P95_MS and least >= PAGE_RPS
                          and (not api or min(api) >= API_RPS))}


def retrain_send(stack: DemoStack) -> str:
    """Queue the retrain as beat would; returns the task id."""
    done = subprocess.run([sys.executable, "-m", "celery", "-A", "webapp", "call",
                           "workers.tasks.retrain_models"], cwd=ROOT, env=app_env(stack.services()),
                          capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


def retrain_end(task: str, offset: int) -> dict | None:
    """The task's end as the retrain worker logged it after byte `offset`, or None yet."""
    if not RETRAIN_LOG.exists():
        return None
    with open(RETRAIN_LOG, "rb") as log:
        log.seek(offset)
        for line in log.read().decode(errors="replace").splitlines():
            match = DONE.search(line)
            if match and match["id"] == task:
                result = match["result"]
                with contextlib.suppress(ValueError, SyntaxError):
                    result = ast.literal_eval(result)  # the task's dict, as Celery prints it
                return {"how": match["how"], "seconds": float(match["seconds"] or "nan"), "result": result}
    return None


def pages_run(stack: DemoStack, args: argparse.Namespace, out: Path, name: str) -> dict:
    return benchmark_json("pages", ["--url", stack.base, "--connections", str(args.connections),
                                    "--seconds", str(args.page_seconds), "--runs", "1"], out / f"{name}.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8033)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--page-seconds", type=float, default=5)
    parser.add_argument("--out", type=Path, default=VAR / "retrain_share")
    args = parser.parse_args()
    calibration = calibration_ms()
    phases: dict[str, list[dict]] = {"between": [], "during": [], "after": []}
    with DemoStack(port=args.port, env={"RETRAIN_EVERY": "0"}, log_path=args.out / "demo.log") as stack:
        phases["between"].append(pages_run(stack, args, args.out, "between"))
        offset = RETRAIN_LOG.stat().st_size if RETRAIN_LOG.exists() else 0
        started = time.monotonic()
        task = retrain_send(stack)
        print(f"retrain {task} sent", flush=True)
        end = None
        while end is None:
            phases["during"].append(pages_run(stack, args, args.out, f"during{len(phases['during'])}"))
            end = retrain_end(task, offset)
            if end is None and time.monotonic() - started > 3600:
                raise SystemExit(f"the retrain did not end within an hour: see {RETRAIN_LOG}")
        wall = time.monotonic() - started
        phases["after"].append(pages_run(stack, args, args.out, "after"))

    judged = {phase: worst(runs) for phase, runs in phases.items()}
    print(f"\n{'phase':<8} {'pages runs':>10} {'worst p95 ms':>13} {'worst page':<22} {'least req/s':>12} "
          f"{'least API req/s':>16} {'goals met':>10}")
    for phase, row in judged.items():
        print(f"{phase:<8} {len(phases[phase]):>10} {row['worst_p95_ms']:>13} {row['worst_page']:<22} "
              f"{row['least_page_rps']:>12} {row['least_api_rps'] or '-':>16} {str(row['goals_met']):>10}")
    print(f"\nretrain: {end['how']} in {end['seconds']:.0f} s by the worker's clock ({wall:.0f} s from "
          "sending it to the end of the last pages run during it)")
    if isinstance(end["result"], dict):
        for model, result in end["result"].items():
            print(f"  {model}: {result}")
    print(f"calibration loop {calibration:.1f} ms; on a host 1.5x slower a budgeted retrain takes the same "
          "seconds (its budget is wall time) and the pages' CPU-bound figures about 1.5x longer")
    print(json.dumps({"calibration_ms": round(calibration, 1), "retrain": end, "phases": judged,
                      "pages_runs": {phase: len(runs) for phase, runs in phases.items()}}, default=str))


if __name__ == "__main__":
    main()
