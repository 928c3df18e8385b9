"""The registry: its listing read once per change of the model folder, old versions pruned
after a grace period, one version per model held in memory."""

from __future__ import annotations

import dataclasses
import gc
import os
import time
import weakref
from datetime import UTC, datetime

import pytest

from predictors import registry
from predictors.versions import version_make
from tests.predictors.tiny_catalogue import TINY_CATALOGUE

MODEL = "lightgcn"


@pytest.fixture
def model_folder(settings, tmp_path):
    settings.MODEL_DIR = tmp_path
    folder = tmp_path / MODEL
    folder.mkdir()
    return folder


def _version(folder, published_at: float) -> str:
    """A version folder named for `published_at` (unix seconds), its files written then."""
    name = datetime.fromtimestamp(published_at, UTC).strftime(registry.VERSION_FORMAT)
    (folder / name).mkdir()
    (folder / name / "meta.json").write_text("{}")
    os.utime(folder / name, (published_at, published_at))
    return name


def _age(folder, seconds_ago: float) -> int:
    """Set the folder's mtime `seconds_ago`; returns it (ns)."""
    at = time.time() - seconds_ago
    os.utime(folder, (at, at))
    return folder.stat().st_mtime_ns


def test_the_listing_is_read_again_only_when_the_model_folder_changes(model_folder):
    first = _version(model_folder, time.time() - 100)
    mtime_ns = _age(model_folder, 100)
    assert registry.versions(MODEL) == [first]

    # A folder that appears without the model folder's mtime moving is not seen: the listing
    # came from memory, not from reading the folder again.
    unseen = _version(model_folder, time.time() - 50)
    os.utime(model_folder, ns=(mtime_ns, mtime_ns))
    assert registry.versions(MODEL) == [first]

    # A publish renames into place, which moves the mtime: the new version is live at once.
    with registry.publishing(MODEL) as folder:
        (folder / "meta.json").write_text("{}")
    published = registry.version_of(folder)
    assert registry.versions(MODEL) == sorted([first, unseen, published])
    assert registry.latest_version(MODEL) == published


def test_a_listing_taken_right_after_a_change_is_not_trusted(model_folder):
    """Two changes in one tick of the file system's clock leave the same mtime."""
    first = _version(model_folder, time.time() - 100)
    mtime_ns = model_folder.stat().st_mtime_ns  # just now
    assert registry.versions(MODEL) == [first]

    second = _version(model_folder, time.time())
    os.utime(model_folder, ns=(mtime_ns, mtime_ns))
    assert registry.versions(MODEL) == [first, second]


def test_prune_keeps_the_newest_and_those_superseded_within_the_grace(model_folder):
    now = time.time()
    names = [_version(model_folder, now - age) for age in (5000, 4000, 3000, 200, 100)]

    removed = registry.versions_prune(MODEL, keep=2, grace_s=600, now=now)

    # The 2 newest stay; of the older, the one superseded 200 s ago (by the 4th) is in its grace.
    assert removed == names[:2]
    assert registry.versions(MODEL) == names[2:]
    assert sorted(p.name for p in model_folder.iterdir()) == names[2:]  # nothing hidden left either

    later = registry.versions_prune(MODEL, keep=2, grace_s=600, now=now + 1000)
    assert later == names[2:3] and registry.versions(MODEL) == names[3:]


def test_prune_never_removes_the_newest_version(model_folder):
    now = time.time()
    names = [_version(model_folder, now - age) for age in (3000, 2000)]

    assert registry.versions_prune(MODEL, keep=0, grace_s=0, now=now) == names[:1]
    assert registry.versions(MODEL) == names[1:]
    assert registry.versions_prune(MODEL, keep=0, grace_s=0, now=now) == []


def test_prune_counts_the_grace_from_when_the_next_version_was_written(model_folder):
    """A version whose name is older than its files (written long after it was named) was
    published when its files were, and that is when the one before it was superseded."""
    now = time.time()
    old = _version(model_folder, now - 5000)
    new = _version(model_folder, now - 4000)
    os.utime(model_folder / new, (now - 60, now - 60))

    assert registry.versions_prune(MODEL, keep=1, grace_s=600, now=now) == []
    assert registry.versions_prune(MODEL, keep=1, grace_s=600, now=now + 600) == [old]


def test_prune_removes_abandoned_temporary_folders(model_folder):
    now = time.time()
    live = _version(model_folder, now - 7200)
    stamp = datetime.fromtimestamp(now - 2 * registry.ABANDONED_TMP_S, UTC).strftime(registry.VERSION_FORMAT)
    abandoned = model_folder / f"{registry.TMP_PREFIX}{stamp}"
    abandoned.mkdir()
    (abandoned / "weights.safetensors").write_bytes(b"half")
    writing = model_folder / f"{registry.TMP_PREFIX}{datetime.now(UTC).strftime(registry.VERSION_FORMAT)}"
    writing.mkdir()

    registry.versions_prune(MODEL, keep=1, grace_s=0, now=now)

    assert sorted(p.name for p in model_folder.iterdir()) == sorted([live, writing.name])


def test_every_publish_prunes(model_folder, settings):
    settings.MODEL_VERSIONS_KEPT, settings.MODEL_VERSION_GRACE_S = 2, 600
    now = time.time()
    old = [_version(model_folder, now - age) for age in (9000, 8000, 7000)]

    with registry.publishing(MODEL) as folder:
        (folder / "meta.json").write_text("{}")

    # The newest two stay; old[1] was superseded by old[2] 7000 s ago, past its grace.
    assert registry.versions(MODEL) == [old[2], registry.version_of(folder)]


def test_a_publish_that_fails_leaves_the_versions_as_they_were(model_folder, settings):
    settings.MODEL_VERSIONS_KEPT, settings.MODEL_VERSION_GRACE_S = 1, 0
    old = [_version(model_folder, time.time() - age) for age in (9000, 8000)]

    with pytest.raises(RuntimeError), registry.publishing(MODEL) as folder:
        (folder / "meta.json").write_text("{}")
        raise RuntimeError("the disk is full")

    assert registry.versions(MODEL) == old
    assert sorted(p.name for p in model_folder.iterdir()) == old


def test_a_process_holds_only_each_models_newest_version(settings, tmp_path):
    """A new version replaces the one a process held: the replaced one (its mapped tables) is
    freed once no request holds it, however many versions a retrain publishes."""
    settings.MODEL_DIR = tmp_path
    first = version_make(model="popular", training_data=TINY_CATALOGUE)
    held = registry.published("popular")
    assert held.version == first.version and registry.published("popular") is held
    replaced = weakref.ref(held)
    del held

    second = version_make(model="popular", training_data=dataclasses.replace(
        TINY_CATALOGUE, pairs=[*TINY_CATALOGUE.pairs, (99, 3)]))

    assert registry.published("popular").version == second.version != first.version
    gc.collect()
    assert replaced() is None
