"""Where a running demo's CPU goes: each role's processes (web, live worker, consumer, Kafka,
DynamoDB, Redis, ...), their CPU seconds over a stretch of load, and, with py-spy, the
functions that spent them.

The demo is found, never started or stopped: the `python -m devstack demo` process serving
`port` (its PORT, 8000 unless set), and its children by role (`benchmarks.soak_stack.ROLES`).
Only reads: CPU times from /proc, stacks sampled by py-spy (which stops no one for more than a
sample).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil

from benchmarks.soak_stack import roles_in

# The roles a click passes through, and the servers they call.
CLICK_ROLES = ("web", "consumer", "live worker", "kafka", "dynamodb", "redis")
PY_SPY_RATE = 100  # samples a second: ~1% of a core for py-spy itself
Seconds = dict[tuple[str, int], float]  # (role, pid) -> CPU seconds


def demo_roles(port: int) -> dict[str, list[psutil.Process]]:
    """The processes of the demo serving `port`, by role; empty when none runs."""
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "-m devstack demo" not in command:
            continue
        with contextlib.suppress(psutil.Error):
            if int(process.environ().get("PORT", "8000")) == port:
                return roles_in(process)
    return {}


def cpu_seconds(roles: dict[str, list[psutil.Process]]) -> Seconds:
    """User + system CPU seconds of every process, keyed (role, pid): a process restarted
    meanwhile is a new key, so a difference only counts processes alive at both ends."""
    seconds = {}
    for role, processes in roles.items():
        for process in processes:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                seconds[role, process.pid] = times.user + times.system
    return seconds


def cpu_by_role(before: Seconds, after: Seconds) -> dict[str, float]:
    spent: Counter[str] = Counter()
    for key, end in after.items():
        if key in before:
            spent[key[0]] += end - before[key]
    return dict(spent)


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else None


def profile_start(roles: dict[str, list[psutil.Process]], seconds: float, out: Path) -> list:
    """py-spy record (raw, collapsed stacks; idle frames left out) of every Python process of
    the click roles for `seconds`, one file per process under `out`."""
    binary = py_spy()
    if binary is None:
        raise SystemExit("py-spy is not installed in this environment (requirements.txt pins it)")
    out.mkdir(parents=True, exist_ok=True)
    recorders = []
    for role in ("web", "consumer", "live worker"):  # the servers' CPU is counted, not profiled
        for process in roles.get(role, []):
            path = out / f"{role.replace(' ', '-')}-{process.pid}.txt"
            recorders.append(subprocess.Popen(
                [binary, "record", "--pid", str(process.pid), "--duration", str(int(seconds)), "--rate",
                 str(PY_SPY_RATE), "--format", "raw", "--output", str(path), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return recorders


OURS = ("movie", "eventstore", "predictors", "livepath", "workers", "webapp", "pytorch_models", "devstack")


def profile_summary(out: Path, top: int = 14) -> dict[str, list[tuple[str, float]]]:
    """Per role, where its samples went: each stack is charged to its deepest function of ours
    and the package that function was in when sampled (`events._record → botocore`: botocore's
    time under `_record`, nothing deeper of ours; `→ self`: the function's own lines), largest
    share first. Stacks with no function of ours go to their leaf's package (`→ celery` in the
    worker's loop, `→ django` in the middleware)."""
    by_role: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    for path in sorted(out.glob("*.txt")):
        role = path.stem.rsplit("-", 1)[0].replace("-", " ")
        counts = by_role.setdefault(role, Counter())
        for line in path.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            totals[role] += int(n)
            counts[_charged(stack.split(";"))] += int(n)
    return {role: [(where, n / totals[role]) for where, n in counts.most_common(top)]
            for role, counts in by_role.items() if totals[role]}


def _where(frame: str) -> tuple[str, str]:
    """`function (path/to/module.py:line)` → (`module.function`, the path's top package)."""
    name, _, where = frame.partition(" (")
    path = where.split(":", 1)[0]
    parts = path.split("/")
    package = "python" if path.startswith("<") or len(parts) == 1 else parts[0]
    return f"{os.path.splitext(parts[-1])[0]}.{name}", package


def _charged(frames: list[str]) -> str:
    places = [_where(f) for f in frames]
    ours = [i for i, (_, package) in enumerate(places) if package in OURS]
    if not ours:
        return f"(none of ours) → {places[-1][1]}"
    deepest = ours[-1]
    callee = places[deepest + 1][1] if deepest + 1 < len(places) else "self"
    return f"{places[deepest][0]} → {callee}"
