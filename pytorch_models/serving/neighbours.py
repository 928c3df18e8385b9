"""Each movie's nearest movies by the cosine of a version's item rows, computed once at publish.

"More like this" is the same list for every visitor but for the movies it dismissed: an
item-to-item table, as PinSage's own deployment serves it. Scoring every movie per page read
PinSage's whole table and ranked every score (at 62,423 movies 32 MB and 62,423 scores): the
movie page took 8.4 ms of server CPU at 25M ratings, against 3.2 ms at ml-latest-small's 9,742
movies; with the table a page reads one row of `K` and took 2.6 ms (docs/benchmarks.md).

`neighbours.safetensors` in the version folder: `rows` (I, K) int32 and `scores` (I, K)
float32, best first, each movie's own row left out. Bound: I · K · 8 bytes (256 bytes a movie,
16 MB at 62,423 movies), mapped, so the web processes share one copy.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tqdm import tqdm

NEIGHBOURS = "neighbours.safetensors"
K = 32  # a page shows 12; the rest stand in for the visitor's dismissed movies
SCRATCH_BYTES = 256 << 20  # the scores of a chunk of rows against every row, one buffer reused


def cosine_neighbours(table: torch.Tensor, k: int = K,
                      progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows (I, k) int32, scores (I, k) float32): each row's k most similar other rows by
    cosine, best first (fewer than k columns when the table has k rows or fewer)."""
    unit = F.normalize(table.float(), dim=1)
    n = len(unit)
    k = min(k, n - 1)
    chunk = max(1, min(n, SCRATCH_BYTES // (4 * n)))
    block = torch.empty(chunk, n)  # one buffer: fresh ones cost their page faults every chunk
    rows, scores = torch.empty(n, k, dtype=torch.int32), torch.empty(n, k)
    for start in tqdm(range(0, n, chunk), desc="neighbours", unit="chunk", disable=not progress):
        end = min(start + chunk, n)
        scored = torch.mm(unit[start:end], unit.T, out=block[:end - start])
        own = torch.arange(start, end)
        scored[own - start, own] = float("-inf")
        values, found = torch.topk(scored, k, dim=1)
        rows[start:end], scores[start:end] = found.int(), values
    return rows, scores


def neighbours_write(folder: Path, table: torch.Tensor, progress: bool = False) -> Path:
    """Write the version's table under a temporary name, renamed into place: a reader finds none
    or a whole one."""
    rows, scores = cosine_neighbours(table, progress=progress)
    path = folder / NEIGHBOURS
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        save_file({"rows": rows, "scores": scores}, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def neighbours_load(folder: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(rows, scores) mapped from the version folder; None where it was published without them."""
    try:
        tables = load_file(folder / NEIGHBOURS)
    except FileNotFoundError:
        return None
    return tables["rows"], tables["scores"]


def listed(neighbours: tuple[torch.Tensor, torch.Tensor], row: int, exclude_rows: set[int],
           k: int) -> list[tuple[int, float]] | None:
    """The best k (row, cosine) of `row`'s neighbours outside `exclude_rows`; None when fewer
    than k are left (the caller scores every row)."""
    rows, scores = neighbours
    found = [(r, s) for r, s in zip(rows[row].tolist(), scores[row].tolist(), strict=True)
             if r not in exclude_rows]
    return found[:k] if len(found) >= k else None
