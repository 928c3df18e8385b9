"""Which trained version of each model is live.

`MODEL_DIR/<model>/<version>/` holds one published checkpoint; versions are UTC
timestamps, so the newest sorts last. A version is written under a hidden temporary
name and renamed into place, so readers never see half a checkpoint and the switch
to a new version is atomic.

Bound: after each publish (and each scheduled retrain, `versions_prune`) a model keeps its
newest `MODEL_VERSIONS_KEPT` versions plus any superseded less than `MODEL_VERSION_GRACE_S`
ago, and no temporary folder older than `ABANDONED_TMP_S`. The newest is never removed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from django.conf import settings

from pytorch_models.checkpoint import META, Checkpoint, load_checkpoint

log = logging.getLogger(__name__)


def model_dir() -> Path:
    return Path(settings.MODEL_DIR)


# Each process keeps the listing of every model folder it reads (one entry per model folder),
# so a request costs one stat of the folder rather than a listing and a stat per version. A
# rename into place, or a removal, changes the folder's mtime, which drops the listing. Two
# changes inside one tick of the filesystem's clock leave the mtime as it was, so a listing
# taken less than LISTING_RACY_S after the mtime is read again next time (git's "racy" rule);
# and any listing is read again after LISTING_MAX_AGE_S, for file systems whose clocks
# disagree with ours (a shared volume): a new version is then seen at most that late.
LISTING_RACY_S = 2.0
LISTING_MAX_AGE_S = 60.0
_listings: dict[str, tuple[int, float, tuple[str, ...]]] = {}  # folder -> (mtime_ns, listed at, versions)


def versions(model: str) -> list[str]:
    """The model's published versions, oldest first."""
    folder = model_dir() / model
    try:
        mtime_ns = folder.stat().st_mtime_ns
    except (FileNotFoundError, NotADirectoryError):
        return []
    now, held = time.time(), _listings.get(str(folder))
    if held is not None and held[0] == mtime_ns and held[1] - mtime_ns / 1e9 > LISTING_RACY_S \
            and now - held[1] < LISTING_MAX_AGE_S:
        return list(held[2])
    found = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir())
    _listings[str(folder)] = (mtime_ns, now, tuple(found))
    return found


def latest_version(model: str) -> str | None:
    found = versions(model)
    return found[-1] if found else None


VERSION_FORMAT = "%Y%m%dT%H%M%S%fZ"


def version_time(version: str) -> datetime | None:
    """When a version was published (its name); None for a folder named by hand."""
    try:
        return datetime.strptime(version, VERSION_FORMAT).replace(tzinfo=UTC)
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


TMP_PREFIX, REMOVING_PREFIX = ".tmp-", ".removing-"


@contextlib.contextmanager
def publishing(model: str):
    """Yield a temporary folder to write a checkpoint into; publish it on success, then prune
    the model's old versions (`versions_prune`)."""
    version = datetime.now(UTC).strftime(VERSION_FORMAT)
    tmp = model_dir() / model / f"{TMP_PREFIX}{version}"
    tmp.mkdir(parents=True)
    try:
        yield tmp
        tmp.rename(tmp.with_name(version))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    versions_prune_logged(model)


def version_of(folder: Path) -> str:
    """The version a folder `publishing` yielded is published as."""
    return folder.name.removeprefix(TMP_PREFIX)


# A temporary folder lives while one checkpoint is written (seconds: ~10 MB for LightGCN on
# ml-latest-small); one an hour old was left by a process killed mid-write.
ABANDONED_TMP_S = 3600.0


def _published_at(folder: Path) -> float:
    """When the folder was renamed into place, as far as can be told: its name's time, or the
    last write inside it (just before the rename), whichever is later."""
    named = version_time(folder.name)
    written = folder.stat().st_mtime
    return max(written, named.timestamp()) if named else written


def versions_prune(model: str, *, keep: int | None = None, grace_s: float | None = None,
                   now: float | None = None) -> list[str]:
    """Remove the model's versions older than its newest `keep` (MODEL_VERSIONS_KEPT) once
    superseded for longer than `grace_s` (MODEL_VERSION_GRACE_S), and abandoned temporary
    folders; returns the versions removed.

    The grace covers a process that resolved a version just before the next was published
    and is still reading its files (a web process loading its tables, a live worker, the
    retrain's warm start): a version is superseded when the one after it was published. The
    newest version is never removed, whatever `keep` says."""
    keep = max(1, settings.MODEL_VERSIONS_KEPT if keep is None else keep)
    grace_s = settings.MODEL_VERSION_GRACE_S if grace_s is None else grace_s
    now = time.time() if now is None else now
    folder = model_dir() / model
    if not folder.is_dir():
        return []
    found = versions(model)
    removed = []
    for older, newer in zip(found[:-keep], found[1:], strict=False):
        try:
            superseded_for = now - _published_at(folder / newer)
        except FileNotFoundError:  # another process pruned it meanwhile
            continue
        if superseded_for > grace_s:
            try:  # hidden first, so no listing shows a half-removed version
                (folder / older).rename(folder / f"{REMOVING_PREFIX}{older}")
            except FileNotFoundError:
                continue
            removed.append(older)
    for tmp in folder.glob(f"{TMP_PREFIX}*"):
        started = version_time(tmp.name.removeprefix(TMP_PREFIX))
        if started is not None and now - started.timestamp() > ABANDONED_TMP_S:
            with contextlib.suppress(FileNotFoundError):
                tmp.rename(folder / f"{REMOVING_PREFIX}{tmp.name}")
    for leaving in folder.glob(f"{REMOVING_PREFIX}*"):  # with any a killed prune left
        shutil.rmtree(leaving, ignore_errors=True)
    return removed


def versions_prune_logged(model: str) -> list[str]:
    """`versions_prune`, logged; a failure to remove is logged, never raised: the version just
    published stays published, and the next publish tries again."""
    try:
        removed = versions_prune(model)
    except OSError:
        log.exception("%s: pruning old versions failed", model)
        return []
    if removed:
        log.info("%s: removed old versions %s", model, ", ".join(removed))
    return removed


class RowIndex(Mapping):
    """Movie id -> row of a version's item table, read-only, from two sorted arrays: 16 bytes a
    movie in each process, where a dict of ints took about 100 (25 MB a model at 250,000 movies)."""

    def __init__(self, movie_ids: np.ndarray):
        self._order = np.argsort(movie_ids, kind="stable")
        self._sorted = movie_ids[self._order]

    def _find(self, movie_id) -> int:
        at = int(np.searchsorted(self._sorted, movie_id))
        if at == len(self._sorted) or self._sorted[at] != movie_id:
            return -1
        return int(self._order[at])

    def __getitem__(self, movie_id) -> int:
        row = self._find(movie_id) if isinstance(movie_id, int | np.integer) else -1
        if row < 0:
            raise KeyError(movie_id)
        return row

    def __contains__(self, movie_id) -> bool:
        return isinstance(movie_id, int | np.integer) and self._find(movie_id) >= 0

    def __iter__(self):
        return (int(m) for m in self._sorted)

    def __len__(self) -> int:
        return len(self._sorted)

    def rows(self, movie_ids) -> list[int]:
        """The rows of the known `movie_ids`, in their order (unknown ones left out)."""
        wanted = np.asarray(list(movie_ids), dtype=np.int64)
        if len(self._sorted) == 0 or len(wanted) == 0:
            return []
        at = np.minimum(np.searchsorted(self._sorted, wanted), len(self._sorted) - 1)
        found = self._sorted[at] == wanted
        return self._order[at[found]].tolist()


@dataclass(frozen=True)
class Published:
    """A loaded version with the movie-id ↔ row-index maps serving needs. The tables are the
    version's files mapped into memory (`pytorch_models.checkpoint`): every process that loads
    the version shares one copy of them through the page cache."""

    model: str
    version: str
    checkpoint: Checkpoint
    movie_ids: np.ndarray  # (n_items,) movie id of each row
    index_of: RowIndex = field(repr=False)

    def indices(self, movie_ids) -> list[int]:
        return self.index_of.rows(movie_ids)


# The newest version of each model this process loaded, by model: (its folder, the version).
# Only the newest: a version's tables are mapped from its files, and every page they were read
# into stays resident while it is held (after a prune too), so holding the versions a retrain
# replaced grew the live worker by 280 MB in 40 minutes of the soak's 2-minute retrains
# (benchmarks.soak). Bound: one version per model, what its files hold. A request that took the
# older version keeps its own reference until it ends.
_newest: dict[str, tuple[str, Published]] = {}
_newest_lock = threading.Lock()


def _load(folder: str, model: str, version: str) -> Published:
    checkpoint = load_checkpoint(Path(folder))
    movie_ids = np.asarray(checkpoint.item_ids, dtype=np.int64)
    return Published(model=model, version=version, checkpoint=checkpoint, movie_ids=movie_ids,
                     index_of=RowIndex(movie_ids))


def published(model: str) -> Published | None:
    """The newest version of `model`, loaded once per process (and the one it replaced
    dropped); None if never trained."""
    version = latest_version(model)
    if version is None:
        return None
    folder = str(model_dir() / model / version)
    held = _newest.get(model)
    if held is None or held[0] != folder:
        with _newest_lock:  # one load per version, whatever the threads asking
            held = _newest.get(model)
            if held is None or held[0] != folder:
                held = _newest[model] = (folder, _load(folder, model, version))
    return held[1]
