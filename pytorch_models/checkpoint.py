"""Checkpoint folders: safetensors for tensors, JSON for everything else; never pickle.

    weights.safetensors          the model's state_dict
    item_embeddings.safetensors  `item_embeddings` (n_items, d), `item_ids` (n_items,),
                                 `item_popularity` (n_items,) and what fold-in needs
                                 (e.g. `item_bias` for PinSage)
    graph.safetensors            the training snapshot: `train_edges` (E, 2), `n_users`,
                                 `n_items`, `item_ids`, `user_ids`, `feature.*` tables and,
                                 where the data is ordered, `train_stamps` (E,)
    meta.json                    model name, config, metrics, data snapshot counts, timings
    visitors.json                the site's visitors trained as users: {visitor digest: user row}
                                 (only a scheduled retrain's versions have one)
    neighbours.safetensors       each movie's nearest movies (`serving.neighbours`; the site
                                 writes it into its similar-movies model's versions)

Loading maps the files, it does not read them: safetensors' `load_file` (0.4.5) builds each
tensor on `torch.UntypedStorage.from_file(..., shared=False)`, a private mapping of the file, so
a table's pages are the page cache's, one copy for every process that loads the version (a
write would copy the page it touches into that process, never reach the file; serving never
writes). tests/pytorch_models/test_shared_tables.py holds this against two real processes.
Anything a process derives from a table (a normalised copy, a matrix rebuilt from the edges)
is its own; serving keeps those to vectors of n_items, or publishes them.

meta.json stays small whatever the number of visitors, since every version's is read to list
versions (the dashboard); only what needs a visitor's row reads visitors.json
(`Checkpoint.visitors`). Versions published before visitors.json kept the map in meta.json
under `visitors`, and still load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from pytorch_models.data.interactions import ItemFeatures

WEIGHTS, ITEMS = "weights.safetensors", "item_embeddings.safetensors"
GRAPH, META = "graph.safetensors", "meta.json"
VISITORS = "visitors.json"


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v).detach().cpu().contiguous() for k, v in tensors.items()}


def save_checkpoint(
    out_dir: str | Path,
    *,
    model_name: str,
    config: dict,
    state_dict: dict[str, torch.Tensor],
    item_embeddings: torch.Tensor,
    extra_tensors: dict[str, torch.Tensor],
    meta: dict,
    train_edges: np.ndarray,
    n_users: int,
    item_ids: np.ndarray,
    user_ids: np.ndarray | None = None,
    item_features: ItemFeatures | None = None,
    visitors: dict[str, int] | None = None,
    train_stamps: np.ndarray | None = None,
) -> Path:
    """Write a checkpoint folder (created if missing) and return its path.

    visitors: visitor digest -> user row, for the users that are the site's visitors.
    train_stamps: (E,) seconds of each train edge, where the data has them (`Interactions`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    item_ids_t = torch.as_tensor(np.asarray(item_ids, dtype=np.int64))
    save_file(_contiguous(state_dict) or {"empty": torch.zeros(0)}, out / WEIGHTS)
    save_file(_contiguous({"item_embeddings": item_embeddings, "item_ids": item_ids_t, **extra_tensors}),
              out / ITEMS)
    graph = {
        "train_edges": torch.as_tensor(np.asarray(train_edges, dtype=np.int64)).reshape(-1, 2),
        "n_users": torch.tensor(n_users, dtype=torch.int64),
        "n_items": torch.tensor(len(item_ids_t), dtype=torch.int64),
        "item_ids": item_ids_t,
        "user_ids": torch.as_tensor(
            np.arange(n_users) if user_ids is None else np.asarray(user_ids, dtype=np.int64)
        ),
    }
    if item_features is not None:
        graph.update({f"feature.{k}": v for k, v in item_features.tensors().items()})
    if train_stamps is not None:
        graph["train_stamps"] = torch.as_tensor(np.asarray(train_stamps, dtype=np.int64))
    save_file(_contiguous(graph), out / GRAPH)
    document = {
        "model": model_name,
        "config": config,
        **meta,
        "item_features": item_features.meta() if item_features is not None else None,
    }
    if visitors is not None:
        (out / VISITORS).write_text(json.dumps(visitors, sort_keys=True))
    (out / META).write_text(json.dumps(document, indent=2, sort_keys=True))
    return out


@dataclass
class GraphSnapshot:
    train_edges: np.ndarray  # (E, 2) int64 [user, item]
    n_users: int
    n_items: int
    item_ids: np.ndarray
    user_ids: np.ndarray
    item_features: ItemFeatures | None
    train_stamps: np.ndarray | None = None  # (E,) seconds of each train edge, where ordered

    def trained_on(self, pairs: np.ndarray) -> bool:
        """Whether `pairs` (E, 2) are this snapshot's train edges, as a set of (user, item) rows."""
        return np.array_equal(np.unique(self.train_edges, axis=0),
                              np.unique(np.asarray(pairs).reshape(-1, 2), axis=0))


@dataclass
class Checkpoint:
    """A loaded checkpoint; the state_dict and graph snapshot load on first use."""

    path: Path
    model_name: str
    config: dict
    meta: dict
    item_embeddings: torch.Tensor  # (n_items, d)
    item_ids: np.ndarray  # (n_items,)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.path.name

    def visitors(self) -> dict[str, int]:
        """Visitor digest -> user row of the site's visitors this version trained on ({} for
        none); read from disk on each call, so a caller keeps what it needs."""
        if "visitors" in self.meta:  # published before visitors.json
            return dict(self.meta["visitors"])
        try:
            return json.loads((self.path / VISITORS).read_text())
        except FileNotFoundError:
            return {}

    def state_dict(self) -> dict[str, torch.Tensor]:
        weights = load_file(self.path / WEIGHTS)
        weights.pop("empty", None)
        return weights

    def graph(self) -> GraphSnapshot:
        tensors = load_file(self.path / GRAPH)
        features = {k.removeprefix("feature."): v for k, v in tensors.items() if k.startswith("feature.")}
        return GraphSnapshot(
            train_edges=tensors["train_edges"].numpy(),
            n_users=int(tensors["n_users"]),
            n_items=int(tensors["n_items"]),
            item_ids=tensors["item_ids"].numpy(),
            user_ids=tensors["user_ids"].numpy(),
            item_features=(ItemFeatures.from_tensors(features, self.meta["item_features"]) if features
                           else None),
            train_stamps=tensors["train_stamps"].numpy() if "train_stamps" in tensors else None,
        )


def load_checkpoint(directory: str | Path) -> Checkpoint:
    path = Path(directory)
    meta = json.loads((path / META).read_text())
    tables = load_file(path / ITEMS)
    return Checkpoint(
        path=path,
        model_name=meta["model"],
        config=meta["config"],
        meta=meta,
        item_embeddings=tables.pop("item_embeddings"),
        item_ids=tables.pop("item_ids").numpy(),
        extra=tables,
    )
