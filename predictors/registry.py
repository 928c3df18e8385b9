"""Which trained version of each model is live.

`MODEL_DIR/<model>/<version>/` holds one published checkpoint; versions are UTC
timestamps, so the newest sorts last. A version is written under a hidden temporary
name and renamed into place, so readers never see half a checkpoint and the switch
to a new version is atomic.
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from django.conf import settings

from pytorch_models.checkpoint import META, Checkpoint, load_checkpoint


def model_dir() -> Path:
    return Path(settings.MODEL_DIR)


def versions(model: str) -> list[str]:
    folder = model_dir() / model
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def latest_version(model: str) -> str | None:
    found = versions(model)
    return found[-1] if found else None


VERSION_FORMAT = "%Y%m%dT%H%M%S%fZ"


def version_time(version: str) -> datetime | None:
    """When a version was published (its name); None for a folder named by hand."""
    try:
        return datetime.strptime(version, VERSION_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)
def _meta(folder: str) -> dict:
    return json.loads((Path(folder) / META).read_text())


def version_meta(model: str, version: str) -> dict:
    """A version's meta.json (metrics, training history, timings) without loading its tables,
    for pages that list every version. A published folder never changes: read once per process.
    The dict is shared: read it, never change it."""
    return _meta(str(model_dir() / model / version))


@contextlib.contextmanager
def publishing(model: str):
    """Yield a temporary folder to write a checkpoint into; publish it on success."""
    version = datetime.now(timezone.utc).strftime(VERSION_FORMAT)
    tmp = model_dir() / model / f".tmp-{version}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
        tmp.rename(tmp.with_name(version))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass(frozen=True)
class Published:
    """A loaded version with the movie-id ↔ row-index maps serving needs."""

    model: str
    version: str
    checkpoint: Checkpoint
    movie_ids: np.ndarray  # (n_items,) movie id of each row
    index_of: dict[int, int] = field(repr=False)

    def indices(self, movie_ids) -> list[int]:
        return [self.index_of[m] for m in movie_ids if m in self.index_of]


@functools.lru_cache(maxsize=16)
def _load(folder: str, model: str, version: str) -> Published:
    checkpoint = load_checkpoint(Path(folder))
    movie_ids = np.asarray(checkpoint.item_ids, dtype=np.int64)
    return Published(
        model=model,
        version=version,
        checkpoint=checkpoint,
        movie_ids=movie_ids,
        index_of={int(m): i for i, m in enumerate(movie_ids)},
    )


def published(model: str) -> Published | None:
    """The newest version of `model`, loaded once per process; None if never trained."""
    version = latest_version(model)
    if version is None:
        return None
    return _load(str(model_dir() / model / version), model, version)
