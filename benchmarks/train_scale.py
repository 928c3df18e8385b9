"""Training throughput against the graph's size, on one process and on two (issue 24, item 6).

    python -m benchmarks.train_scale [--sizes gowalla 5m 25m] [--models lightgcn ngcf pinsage]
        [--steps 30] [--warm-up 5] [--repeats 3] [--gowalla ../shared/data/gowalla]
        [--work /tmp/cinegraph-scale] [--out var/train_scale/train_scale.png]

Per size, the train split: Gowalla's as the NGCF/LightGCN papers give it (810k pairs), or a
generated release of 5M or 25M ratings (`benchmarks.synthetic_movielens`, written once into
--work as `benchmarks.scale` writes it) split 80/20 per user, cached as .npy beside it. Per model,
the training step as `pytorch_models.training.loops` takes it, at the default global batch of
2048 positive pairs: LightGCN and NGCF (dim 64, 3 layers) over sampled blocks (fan-out 10 per
layer, `training.propagation`), PinSage (dim 128, 2 layers, ids only) over its cached
importance-neighbour table. Three ways to keep both cores busy, per size and model:
- 1 process, 2 torch threads, blocks sampled between steps in the training process;
- the same with one DataLoader worker (one thread) sampling the next batches meanwhile;
- 2 processes on gloo (`training.distributed`, one torch thread each, the batch split between
  them, gradients averaged every step), sampling between steps.
Each does --warm-up steps, then --steps timed ones; throughput is positive pairs per second of
the timed steps (rank 0's clock), the median of --repeats runs. Graph building, the neighbour
table and loading are not timed.

Goals (issue 24): per model, throughput at the largest size >= 0.8x Gowalla's (a step's cost
independent of the graph), and 2 processes >= 1.0x one process with two threads (nothing lost
by going distributed). Prints a table, the calibration loop and the goals judged; plots
throughput against train pairs, log-log, into --out; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tqdm import tqdm

import pytorch_models  # noqa: F401  (sets DGLBACKEND before dgl loads)
from benchmarks.pages import calibration_ms
from benchmarks.scale_stack import SIZES
from benchmarks.synthetic_movielens import release_write
from pytorch_models.data.graph import build_graph
from pytorch_models.data.interactions import Interactions, load_gowalla, load_movielens
from pytorch_models.models.architectures import CONFIGS, build_model
from pytorch_models.models.pinsage.sampler import WalkConfig, batch_loader, neighbour_table
from pytorch_models.training import distributed
from pytorch_models.training.bpr_sampler import PositiveSet, prepared_batches
from pytorch_models.training.loops import optimiser_step
from pytorch_models.training.memory import freed_memory_kept
from pytorch_models.training.propagation import SampledPropagation

BATCH = 2048
FANOUT = [10, 10, 10]
SCALE_GOAL = 0.8  # throughput at the largest size over Gowalla's
DISTRIBUTED_GOAL = 1.0  # 2 processes over 1 process with 2 threads
# (label, processes, torch threads per process, sampling workers)
RUNS = (("1 process", 1, 2, 0), ("1 process + sampler", 1, 2, 1), ("2 processes", 2, 1, 0))


def split_load(size: str, args: argparse.Namespace) -> Path:
    """The size's train split as a folder of train.npy and shape.json (made once)."""
    folder = args.work / f"train-split-{size}"
    if (folder / "shape.json").exists():
        return folder
    if size == "gowalla":
        data = load_gowalla(args.gowalla)
    else:
        release = args.work / f"synthetic-{size}-seed0"  # benchmarks.scale's release, when it made one
        if not release.is_dir():
            partial = release.with_name(f".{release.name}.partial")
            release_write(partial, SIZES[size], seed=0)
            partial.rename(release)
        data = load_movielens(release)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "train.npy", data.train)
    (folder / "shape.json").write_text(json.dumps({"n_users": data.n_users, "n_items": data.n_items}))
    return folder


def interactions(folder: Path) -> Interactions:
    shape = json.loads((folder / "shape.json").read_text())
    train = np.load(folder / "train.npy")
    empty = np.zeros((0, 2), dtype=np.int64)
    return Interactions(shape["n_users"], shape["n_items"], train, empty, np.arange(shape["n_items"]),
                        np.arange(shape["n_users"]))


def steps(model_name: str, data: Interactions, workers: int, total: int):
    """(loss step, iterator of `total` batches, pairs per global batch) of one model's training."""
    ranks = distributed.current()
    generator = torch.Generator().manual_seed(7919 * ranks.rank)
    if model_name == "pinsage":
        config = CONFIGS["pinsage"](n_items=data.n_items, dim=128, layers=2, negative_power=0.5)
        model = build_model("pinsage", asdict(config))
        g = build_graph(data.n_users, data.n_items, data.train)
        walks = WalkConfig(negative_power=0.5)
        table = neighbour_table(g, torch.arange(data.n_items), walks)
        pairs = torch.from_numpy(data.train)
        shuffled = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(0))
        batches = batch_loader(g, config.layers, walks, batch_size=math.ceil(BATCH / ranks.world),
                               n_batches=total, n_hard=0, seed=ranks.rank, num_workers=workers, table=table,
                               edges=pairs[distributed.strided(shuffled)])

        def loss(batch):
            return model.loss(batch.hops, None, batch.queries, batch.pos, batch.neg, batch.shared_neg)
    else:
        config = CONFIGS[model_name](n_users=data.n_users, n_items=data.n_items, dim=64, layers=3)
        model = build_model(model_name, asdict(config))
        propagation = SampledPropagation(model, data, FANOUT, generator)
        positives = PositiveSet(data.train, data.n_items)
        batches = prepared_batches(torch.from_numpy(data.train), positives, BATCH, 1, order_seed=0,
                                   seed=ranks.rank, prepare=propagation.prepare, num_workers=workers,
                                   part=(ranks.rank, ranks.world))
        loss = propagation.loss
    distributed.broadcast_parameters(model)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch) -> None:
        optimiser_step(optimiser, loss(batch), lambda: distributed.average_gradients(model))

    return step, batches


def throughput(model_name: str, folder: Path, workers: int, warm_up: int, timed: int) -> float:
    """Positive pairs per second over `timed` steps after `warm_up` ones, on this rank's clock."""
    data = interactions(folder)
    with freed_memory_kept():  # as `train_model` trains
        step, batches = steps(model_name, data, workers, warm_up + timed)
        started = None
        for i, batch in enumerate(batches):
            if i == warm_up:
                if distributed.current().many:
                    dist.barrier()
                started = time.perf_counter()
            step(batch)
            if i + 1 == warm_up + timed:
                break
        return timed * BATCH / (time.perf_counter() - started)


def _rank(rank: int, port: int, model_name: str, folder: str, warm_up: int, timed: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        value = throughput(model_name, Path(folder), 0, warm_up, timed)
        if rank == 0:
            Path(out).write_text(json.dumps(value))
    finally:
        distributed.stop()


def run(model_name: str, folder: Path, processes: int, threads: int, workers: int,
        args: argparse.Namespace) -> float:
    if processes == 1:
        torch.set_num_threads(threads)
        return throughput(model_name, folder, workers, args.warm_up, args.steps)
    with socket.socket() as s, tempfile.TemporaryDirectory() as tmp:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        out = Path(tmp) / "rank0.json"
        mp.spawn(_rank, args=(port, model_name, str(folder), args.warm_up, args.steps, str(out)), nprocs=2)
        return json.loads(out.read_text())


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for colour, model in enumerate(sorted({r["model"] for r in rows})):
        for label, style in zip([r[0] for r in RUNS], ("-", ":", "--"), strict=True):
            points = sorted((r["train_pairs"], r["pairs_per_s"][label]) for r in rows if r["model"] == model)
            ax.plot(*zip(*points, strict=True), style, marker="o", color=f"C{colour}",
                    label=f"{model}, {label}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("train pairs (graph edges)")
    ax.set_ylabel("positive pairs per second")
    ax.set_title("Training throughput against the graph's size (2 cores)")
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["gowalla", "5m", "25m"],
                        choices=["gowalla", *[s for s in SIZES if SIZES[s]]])
    parser.add_argument("--models", nargs="+", default=["lightgcn", "ngcf", "pinsage"],
                        choices=["lightgcn", "ngcf", "pinsage"])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--warm-up", type=int, default=5, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; the table shows the median")
    parser.add_argument("--gowalla", type=Path, default=Path("../shared/data/gowalla"))
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cinegraph-scale")
    parser.add_argument("--out", type=Path, default=Path("var/train_scale/train_scale.png"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the spawned ranks' OpenMP pools
    calibration = calibration_ms()
    rows = []
    progress = tqdm(total=len(args.sizes) * len(args.models) * len(RUNS) * args.repeats, desc="train_scale")
    for size in args.sizes:
        progress.set_postfix_str(f"{size}: loading")
        folder = split_load(size, args)
        pairs = len(np.load(folder / "train.npy", mmap_mode="r"))
        for model in args.models:
            figures = {}
            for label, processes, threads, workers in RUNS:
                progress.set_postfix_str(f"{size}: {model}, {label}")
                runs = []
                for _ in range(args.repeats):
                    runs.append(run(model, folder, processes, threads, workers, args))
                    progress.update()
                figures[label] = round(statistics.median(runs), 1)
            rows.append({"size": size, "train_pairs": pairs, "model": model, "pairs_per_s": figures})
    progress.close()

    print(f"\n{'size':<8} {'train pairs':>12} {'model':<9} " + " ".join(f"{r[0]:>20}" for r in RUNS)
          + f" {'2 proc / 1':>11}")
    for row in rows:
        values = row["pairs_per_s"]
        print(f"{row['size']:<8} {row['train_pairs']:>12,} {row['model']:<9} "
              + " ".join(f"{values[r[0]]:>20,.0f}" for r in RUNS)
              + f" {values['2 processes'] / values['1 process']:>11.2f}")
    goals = {}
    smallest, largest = args.sizes[0], args.sizes[-1]
    for model in args.models:
        by_size = {r["size"]: r["pairs_per_s"] for r in rows if r["model"] == model}
        best = {size: max(values.values()) for size, values in by_size.items()}
        scale = best[largest] / best[smallest]
        ratio = min(v["2 processes"] / v["1 process"] for v in by_size.values())
        goals[model] = {f"throughput {largest} / {smallest}": round(scale, 2),
                        "scale_goal_met": scale >= SCALE_GOAL,
                        "2 processes / 1 (worst size)": round(ratio, 2),
                        "distributed_goal_met": ratio >= DISTRIBUTED_GOAL}
    print(f"\ncalibration loop {calibration:.1f} ms (pairs per second are CPU-bound: on a host 1.5x slower, "
          "about two thirds of each figure; the ratios hold)")
    for model, judged in goals.items():
        print(f"{model}: {judged}")
    plot(rows, args.out)
    print(f"plot: {args.out}")
    print(json.dumps({"calibration_ms": round(calibration, 1), "batch": BATCH, "rows": rows, "goals": goals}))


if __name__ == "__main__":
    main()
