"""Two processes that load one published version hold one copy of its tables: the file's pages
are mapped from the page cache (shared), not read into each process (private). A load that
copies the bytes is measured beside it, so the test can tell the two apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pytorch_models.checkpoint import ITEMS, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
N_ITEMS, DIM = 20_000, 256  # a 20 MB table: far above the interpreter's own noise
TABLE_BYTES = N_ITEMS * DIM * 4

# Loads the version as a web process does, touches every page of the table (a top-k over a
# score of every row), reports what its memory grew by, and holds the table until told to go.
CHILD = """
import json, sys
from pathlib import Path

import torch
from safetensors.torch import load

from pytorch_models.checkpoint import ITEMS, load_checkpoint

def rollup():
    fields = {}
    for line in open("/proc/self/smaps_rollup"):
        parts = line.split()
        if parts[0].endswith(":") and len(parts) > 1 and parts[1].isdigit():
            fields[parts[0][:-1]] = int(parts[1]) * 1024
    return fields

folder, mode = Path(sys.argv[1]), sys.argv[2]
torch.zeros(1) @ torch.zeros(1)  # torch's own first-use allocations, before the baseline
before = rollup()
if mode == "mapped":
    table = load_checkpoint(folder).item_embeddings
else:  # the bytes read into the process, then parsed
    table = load((folder / ITEMS).read_bytes())["item_embeddings"]
torch.topk(table @ table[0], 20)
after = rollup()
private = sum(after[k] - before[k] for k in ("Private_Clean", "Private_Dirty"))
print(json.dumps({"private": private}), flush=True)
sys.stdin.read()
"""


def _file_pages(pid: int, path: Path) -> dict[str, int]:
    """Rss, Pss and shared bytes of the process's mappings of `path` (/proc/<pid>/smaps)."""
    totals, inside = {"Rss": 0, "Pss": 0, "Shared": 0}, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if "-" in parts[0] and len(parts) >= 5:  # a mapping's header line
            inside = len(parts) >= 6 and parts[5] == str(path)
        elif inside and parts[0] in ("Rss:", "Pss:"):
            totals[parts[0][:-1]] += int(parts[1]) * 1024
        elif inside and parts[0] in ("Shared_Clean:", "Shared_Dirty:"):
            totals["Shared"] += int(parts[1]) * 1024
    return totals


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> Path:
    folder = save_checkpoint(
        tmp_path_factory.mktemp("models") / "lightgcn" / "v1", model_name="lightgcn", config={},
        state_dict={}, item_embeddings=torch.randn(N_ITEMS, DIM), extra_tensors={}, meta={},
        train_edges=np.zeros((0, 2), dtype=np.int64), n_users=0, item_ids=np.arange(N_ITEMS),
    )
    with open(folder / ITEMS, "rb") as written:  # its pages clean before anyone maps them
        os.fsync(written.fileno())
    return folder


def _two_processes(version: Path, mode: str) -> tuple[list[dict], list[dict]]:
    """Two loaders started one after the other: each one's report, and its pages of the file
    while both hold the table."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children, reports = [], []
    try:
        for _ in range(2):
            child = subprocess.Popen([sys.executable, "-c", CHILD, str(version), mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
            children.append(child)
            reports.append(json.loads(child.stdout.readline()))
        pages = [_file_pages(child.pid, version / ITEMS) for child in children]
    finally:
        for child in children:
            child.communicate(input="", timeout=60)
    return reports, pages


def test_two_processes_map_one_copy_of_a_published_table(version):
    reports, pages = _two_processes(version, "mapped")

    for mapped in pages:
        assert mapped["Rss"] >= 0.95 * TABLE_BYTES  # the table is resident as pages of the file...
        assert mapped["Shared"] >= 0.95 * TABLE_BYTES  # ...that both processes hold...
        assert mapped["Pss"] <= 0.55 * TABLE_BYTES  # ...so each is charged half
    assert reports[1]["private"] < 0.1 * TABLE_BYTES  # the second process added no copy of its own


def test_a_copying_load_holds_a_copy_per_process(version):
    reports, pages = _two_processes(version, "copied")

    assert all(mapped["Rss"] == 0 for mapped in pages)
    assert all(report["private"] >= 0.95 * TABLE_BYTES for report in reports)
