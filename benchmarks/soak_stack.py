"""The soak's own `make demo`: started as this process's child, its processes found in that
child's tree (never elsewhere), faults injected into them, and what they hold measured.

Faults are those the stack survives without a restart of the stack itself: a service paused
(SIGSTOP, then SIGCONT), or an app process killed (SIGKILL), which the demo's supervisor (or
granian, for its own workers) starts again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
SERVICES_ENV = VAR / "demo-services.env"
WARM_UP_S = 15 * 60  # the soak compares each resource with its level after this point
PAUSE_S = 3.0  # how long a paused service stays stopped: longer than a click's 1 s budgets

# Which process of the demo's tree is which, by its command line.
ROLES = (
    ("kafka", "tansu"), ("dynamodb", "dynalite"), ("redis", "redis-server"), ("redis", "valkey-server"),
    ("mariadb", "mariadbd"),
    ("live worker", "-Q live"), ("retrain worker", "-Q retrain"), ("upkeep worker", "-Q upkeep"),
    ("beat", " beat"), ("consumer", "workers.consumer"), ("web", "granian"), ("supervisor", "devstack"),
)


def role_of(process: psutil.Process) -> str | None:
    try:
        command = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    return next((role for role, marker in ROLES if marker in command), None)


def roles_in(root: psutil.Process) -> dict[str, list[psutil.Process]]:
    """`root` (a demo's supervisor) and the processes below it, by role."""
    found: dict[str, list[psutil.Process]] = {}
    for process in [root, *root.children(recursive=True)]:
        role = role_of(process)
        if role is not None:
            found.setdefault(role, []).append(process)
    return found


class DemoStack:
    """`python -m devstack demo` on `port` with `env` on top of the environment; a context manager."""

    def __init__(self, *, port: int, env: dict[str, str], log_path: Path):
        self.port, self.env, self.log_path = port, env, log_path
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DemoStack:
        SERVICES_ENV.unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "devstack", "demo"], cwd=ROOT,
                                            env={**os.environ, **self.env, "PORT": str(self.port)},
                                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            start_new_session=True)
        deadline = time.monotonic() + 1800  # a first run trains every model
        while not self._answers():
            if self.process.poll() is not None:
                raise SystemExit(f"make demo exited with {self.process.returncode}: see {self.log_path}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the demo did not answer within 30 minutes: see {self.log_path}")
            time.sleep(1)
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # the supervisor stops its children in order
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.base + "/", timeout=5).read()
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return SERVICES_ENV.exists()

    def services(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in SERVICES_ENV.read_text().split())

    def tree(self) -> dict[str, list[psutil.Process]]:
        """The demo's processes by role (web has granian's main process and its workers)."""
        return roles_in(psutil.Process(self.process.pid))

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each role's processes together, in MB."""
        rss: dict[str, float] = {}
        for role, processes in self.tree().items():
            for process in processes:
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss[role] = rss.get(role, 0.0) + process.memory_info().rss / 2**20
        return rss

    # --- faults: each returns what it did, in words ---------------------------------------

    def _one(self, role: str) -> psutil.Process | None:
        processes = self.tree().get(role, [])
        return processes[-1] if processes else None

    def _pause(self, role: str) -> str:
        process = self._one(role)
        if process is None:
            return f"{role}: not started by the demo (an existing server), skipped"
        process.send_signal(signal.SIGSTOP)
        time.sleep(PAUSE_S)
        process.send_signal(signal.SIGCONT)
        return f"{role} pid {process.pid} paused {PAUSE_S:.0f} s"

    def _kill(self, role: str) -> str:
        process = self._one(role)
        if process is None:
            return f"{role}: none running, skipped"
        process.send_signal(signal.SIGKILL)
        return f"{role} pid {process.pid} killed"

    def fault(self, name: str) -> str:
        kind, role = name.split(":", 1)
        return self._pause(role) if kind == "pause" else self._kill(role)


FAULTS = ("pause:kafka", "kill:live worker", "pause:dynamodb", "kill:consumer", "pause:redis", "kill:web",
          "kill:retrain worker")


def folder_mb(path: Path) -> float:
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a version being pruned, a LevelDB file compacted away
                total += os.path.getsize(os.path.join(folder, name))
    return total / 2**20


def redis_used_mb(url: str) -> float | None:
    try:
        return redis.Redis.from_url(url, socket_timeout=5).info("memory")["used_memory"] / 2**20
    except redis.RedisError:
        return None


def versions_kept(model_dir: Path) -> dict[str, int]:
    if not model_dir.is_dir():
        return {}
    return {m.name: sum(1 for v in m.iterdir() if v.is_dir() and not v.name.startswith("."))
            for m in sorted(model_dir.iterdir()) if m.is_dir()}


def db_rows() -> dict[str, int]:
    from django.contrib.sessions.models import Session

    from movie.tracking.models import Impression, Interaction
    return {"history rows": Interaction.objects.count(), "sessions": Session.objects.count(),
            "impression rows": Impression.objects.count()}


def sample(stack: DemoStack, at_s: float) -> dict:
    services = stack.services()
    row = {"t_min": round(at_s / 60, 1), "models MB": folder_mb(VAR / "models"),
           "dynalite MB": folder_mb(VAR / "dynalite"),
           "redis MB": redis_used_mb(services["REDIS_URL"]) or 0.0, **db_rows()}
    broker = services.get("BROKER_REDIS_URL")
    if broker and broker != services["REDIS_URL"]:
        row["broker MB"] = redis_used_mb(broker) or 0.0
    row.update({f"{role} RSS MB": mb for role, mb in sorted(stack.rss_mb().items())})
    row["versions"] = versions_kept(VAR / "models")
    return row


def print_sample(row: dict) -> None:
    cells = [f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()]
    print("  ".join(cells), flush=True)


# A resource's level over a stretch of the run: the median of its samples there, so one
# sample taken as a fault killed a process or as LevelDB compacted is not read as growth.
LEVEL_S = 10 * 60
# What a retention (the soak's 10 minutes) bounds: rows, the click log's LevelDB (its last 10
# minutes of events, plus what compaction has not yet dropped: its files swung between 4 and 13
# MB all through the hour of 2026-12-07) and Redis's live states (visitors active within
# LIVE_STATE_TTL_S). They follow the actions served within it, which a fault, a retrain's share
# of the cores or other work on the host moves (that run: 14,000 and 20,000 actions in its two
# windows), so they are judged per action served.
PER_ACTION = ("history rows", "sessions", "impression rows", "dynalite MB", "redis MB")
SERVED = "actions 10 min"


def _level(samples: list[dict], key: str, start_s: float, end_s: float) -> float | None:
    values = sorted(s[key] / s[SERVED] if key in PER_ACTION else s[key] for s in samples
                    if start_s <= s["t_min"] * 60 <= end_s and isinstance(s.get(key), (int, float))
                    and (key not in PER_ACTION or s.get(SERVED)))
    return statistics.median(values) if values else None


def flatness(samples: list[dict]) -> dict[str, float]:
    """Each numeric resource's growth: its level over the last LEVEL_S against its level over
    the LEVEL_S after WARM_UP_S (rows a retention bounds per action served in that window)."""
    end_s = samples[-1]["t_min"] * 60
    growth = {}
    for key, value in samples[-1].items():
        if key in ("t_min", SERVED) or not isinstance(value, (int, float)):
            continue
        base = _level(samples, key, WARM_UP_S, WARM_UP_S + LEVEL_S)
        last = _level(samples, key, end_s - LEVEL_S, end_s)
        if base and last is not None:
            growth[key] = round((last - base) / base, 3)
    return growth


def plot(samples: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = {"disk (MB)": ("models MB", "dynalite MB"), "Redis (MB)": ("redis MB", "broker MB"),
              "rows": ("history rows", "sessions", "impression rows", SERVED),
              "RSS (MB)": tuple(k for k in samples[-1] if k.endswith("RSS MB"))}
    figure, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 4))
    minutes = [s["t_min"] for s in samples]
    for axis, (title, keys) in zip(axes, groups.items(), strict=True):
        for k in keys:
            if any(k in s for s in samples):
                axis.plot(minutes, [s.get(k, float("nan")) for s in samples], marker="o", label=k)
        axis.axvline(WARM_UP_S / 60, color="grey", linestyle=":")
        axis.set_title(title)
        axis.set_xlabel("minutes")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
