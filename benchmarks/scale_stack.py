"""One size of `benchmarks.scale`: its release, its import, the tables serving needs, a
visitor's fold-in cost, and the demo stack started on them under pages and clicks.

Each part is measured by the benchmark that owns it: `synthetic_movielens` writes the release,
`import_scale` resets the scratch database and times the import, `live_cost` times a fold-in,
`soak_stack.DemoStack` starts `python -m devstack demo` on the size's database, release and model
folder, and `pages` and `click_load` run against it as they run against `make demo`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import torch

from benchmarks.import_scale import database_reset, managed
from benchmarks.live_cost import MODELS as FOLD_IN_MODELS
from benchmarks.live_cost import update_seconds
from benchmarks.soak_stack import ROOT, SERVICES_ENV, DemoStack
from benchmarks.synthetic_movielens import release_write
from devstack.__main__ import models_without_version
from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.data.movielens import release_detect
from pytorch_models.data.movielens_ratings import ratings_chunks

# Ratings of each size's generated release; None: ml-latest-small as shipped.
SIZES = {"small": None, "1m": 1_000_000, "5m": 5_000_000, "25m": 25_000_000}
SMALL = ROOT / "data" / "ml-latest-small"


@dataclass(frozen=True)
class Size:
    name: str
    release: Path
    database: str  # a scratch database's URL: import_scale.database_reset drops it
    model_dir: Path  # the size's own MODEL_DIR, kept between runs as its release is


def size_prepare(name: str, *, work: Path, server: str, seed: int) -> Size:
    """The size's folders and database; a generated release written once into `work` for each
    seed (as `.partial`, renamed when complete, so a run killed half-way writes it again)."""
    if SIZES[name] is None:
        release, model_dir = SMALL, work / f"models-{name}"
    else:
        release, model_dir = work / f"synthetic-{name}-seed{seed}", work / f"models-{name}-seed{seed}"
    if not release.is_dir():
        partial = release.with_name(f".{release.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        release_write(partial, SIZES[name], seed=seed)
        partial.rename(release)
    return Size(name, release, f"{server.rstrip('/')}/cg_scale_{name}", model_dir)


def ratings_in(release: Path) -> int:
    return sum(len(chunk) for chunk in ratings_chunks(release_detect(release)))


def release_import(size: Size) -> dict[str, float]:
    """A fresh import into the size's scratch database (dropped and migrated first): wall s,
    CPU s and peak MB of `manage.py import_movielens`, Django's start-up included."""
    database_reset(size.database)
    managed(["migrate", "--verbosity", "0"], size.database)
    return managed(["import_movielens", str(size.release)], size.database)


def tables_fit(size: Size) -> dict[str, float] | None:
    """`manage.py train --missing --epochs 0` into the size's MODEL_DIR: the GNNs publish their
    spectral start (what a page or a fold-in costs does not depend on the weights' values), the
    graph filter and popular fit as always. None when every model has a version there already
    (from an earlier run on the same release; delete the folder to fit again)."""
    if not models_without_version(size.model_dir):
        return None
    return managed(["train", "--missing", "--epochs", "0"], size.database,
                   env={"MODEL_DIR": str(size.model_dir)})


def newest_version(model_dir: Path, model: str) -> Path:
    """The version the registry serves: the newest finished folder (versions are UTC stamps)."""
    return max(p for p in (model_dir / model).iterdir() if p.is_dir() and not p.name.startswith("."))


def fold_in_ms(size: Size, runs: int) -> dict[str, float]:
    """Per live model, ms of one new visitor's update alone (5 clicks: its node and edges,
    PinSage's walks, the fine-tune, every item's score and top-k; `live_cost.update_seconds`),
    median of `runs`, one thread, on the version the stack serves."""
    torch.set_num_threads(1)
    cost = {}
    for model in FOLD_IN_MODELS:  # one checkpoint in memory at a time
        checkpoint = load_checkpoint(newest_version(size.model_dir, model))
        cost[model] = round(1000 * update_seconds(checkpoint, 1, runs), 2)
    return cost


def benchmark_json(module: str, args: list[str], transcript: Path) -> dict:
    """`python -m benchmarks.<module> args`: its table kept in `transcript`, its progress bars on
    our stderr, its last line (one JSON object) returned."""
    done = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *args], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True)
    transcript.write_text(done.stdout)
    if done.returncode:
        raise SystemExit(f"benchmarks.{module} exited {done.returncode}: see {transcript}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def web_rss_mb(stack: DemoStack) -> list[float]:
    """Resident memory of each web process (granian's main process and its workers), in MB."""
    rss = []
    for process in stack.tree().get("web", []):
        with contextlib.suppress(psutil.NoSuchProcess):
            rss.append(process.memory_info().rss / 2**20)
    return rss


def stack_measure(size: Size, args: argparse.Namespace, transcripts: Path) -> dict:
    """The demo on the size's database, release and tables (no scheduled retrain: it would take
    the cores the figures are about), then `benchmarks.pages` and `benchmarks.click_load`
    against it. CPU per click is click_load's: each role's CPU from the first click until the
    last was fresh, over the clicks accepted (`benchmarks.stack_cpu`); the external MariaDB's is
    not counted (it is no child of the demo). Web RSS is the largest after each of the two loads."""
    transcripts.mkdir(parents=True, exist_ok=True)
    env = {"DATABASE_URL": size.database, "MODEL_DIR": str(size.model_dir), "DEMO_RELEASE": str(size.release),
           "RETRAIN_EVERY": "0"}
    with DemoStack(port=args.port, env=env, log_path=transcripts / "demo.log") as stack:
        pages = benchmark_json("pages", ["--url", stack.base, "--connections", str(args.connections),
                                         "--seconds", str(args.page_seconds), "--runs", str(args.page_runs)],
                               transcripts / "pages.txt")
        rss = web_rss_mb(stack)
        clicks = benchmark_json("click_load", ["--url", stack.base, "--rate", str(args.click_rate),
                                               "--duration", str(args.click_seconds),
                                               "--services", str(SERVICES_ENV)],
                                transcripts / "clicks.txt")
        rss_after = web_rss_mb(stack)
    keep = ("p50_ms", "p95_ms", "p99_ms", "rps", "errors", "server_cpu_ms", "goal_met")
    return {"pages": {name: {k: row[k] for k in keep} for name, row in pages["pages"].items()},
            "page_goals": pages["goals"], "live_lists": pages["live_lists"], "clicks": clicks,
            "cpu_ms_per_click": {**clicks["cpu_ms_per_click"], "all": clicks["cpu_ms_per_click_total"]},
            "web_rss_mb": round(max(rss + rss_after), 1), "web_processes": len(rss_after)}
