"""Live visitors as nodes and edges of a DGL graph beside a version's frozen training graph.

DGL copies a graph's whole edge list when edges are added or removed, and rebuilds its CSR
before the next walk: on a Gowalla-sized graph (810k edges) that is 12 ms + 17 ms per change
(measured with DGL 2.1, one thread). So the published training graph stays frozen (its CSR
is built once per version) and the visitors live in a graph of their own whose size is the
live visitors' clicks, not the catalogue's. Random walks from a visitor's items run on both,
so co-clicks of other live visitors count alongside the training users'.

Idle visitors are evicted: their edges removed and their node reused by the next visitor.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence

import dgl
import torch

from pytorch_models.data.graph import MOVIE, USER, WATCHED, WATCHED_BY
from pytorch_models.models.pinsage.sampler import WalkConfig

# Walks per visitor: 100 keep the walk ranking's middle band populated on ml-latest-small
# (ranks 32-128 need ~130 distinct visited movies) at ~1 ms per visitor.
VISITOR_WALKS = 100


class VisitorGraph:
    """`user` nodes for live visitors and their `watched` / `watched-by` edges to `movie` rows."""

    def __init__(self, n_items: int, *, walks: WalkConfig | None = None):
        empty = torch.zeros(0, dtype=torch.int64)
        self.graph = dgl.heterograph(
            {(USER, WATCHED, MOVIE): (empty, empty), (MOVIE, WATCHED_BY, USER): (empty, empty)},
            num_nodes_dict={USER: 0, MOVIE: n_items},
        )
        self.n_items = n_items
        self.walks = walks or WalkConfig()
        self.node_of: dict[str, int] = {}
        self.items_of: dict[str, frozenset[int]] = {}
        self.last_seen: OrderedDict[str, float] = OrderedDict()  # least recently seen first
        self.free: list[int] = []

    def __len__(self) -> int:
        return len(self.node_of)

    def update(self, histories: Mapping[str, Sequence[int]], now: float) -> list[int]:
        """Make each visitor's edges its current item rows (one DGL mutation per edge type
        for the whole batch); returns the visitors' nodes in the order given."""
        new = [v for v in histories if v not in self.node_of]
        grow = max(0, len(new) - len(self.free))
        if grow:
            first = self.graph.num_nodes(USER)
            self.graph.add_nodes(grow, ntype=USER)
            self.free.extend(range(first + grow - 1, first - 1, -1))
        for visitor in new:
            self.node_of[visitor] = self.free.pop()
            self.items_of[visitor] = frozenset()
        added, removed = [], []
        for visitor, items in histories.items():
            node, before, after = self.node_of[visitor], self.items_of[visitor], frozenset(items)
            added += [(node, i) for i in after - before]
            removed += [(node, i) for i in before - after]
            self.items_of[visitor] = after
            self.last_seen[visitor] = now
            self.last_seen.move_to_end(visitor)
        self._remove_edges(removed)
        if added:
            users, items = torch.tensor(added, dtype=torch.int64).T
            self.graph.add_edges(users, items, etype=WATCHED)
            self.graph.add_edges(items, users, etype=WATCHED_BY)
        return [self.node_of[v] for v in histories]

    def _remove_edges(self, pairs: list[tuple[int, int]]) -> None:
        if not pairs:
            return
        users, items = torch.tensor(pairs, dtype=torch.int64).T
        self.graph.remove_edges(self.graph.edge_ids(users, items, etype=WATCHED), etype=WATCHED)
        self.graph.remove_edges(self.graph.edge_ids(items, users, etype=WATCHED_BY), etype=WATCHED_BY)

    def evict_idle(self, older_than: float) -> list[str]:
        """Drop visitors last seen before `older_than`: edges removed, nodes kept for reuse."""
        gone = []
        while self.last_seen and next(iter(self.last_seen.values())) < older_than:
            visitor, _ = self.last_seen.popitem(last=False)
            gone.append(visitor)
        self._remove_edges([(self.node_of[v], i) for v in gone for i in self.items_of[v]])
        for visitor in gone:
            self.free.append(self.node_of.pop(visitor))
            del self.items_of[visitor]
        return gone

    def visits(self, base: dgl.DGLGraph, nodes: Sequence[int]) -> torch.Tensor:
        """(V, n_items) visit counts of random walks from each visitor node: the first step
        to one of its movies, then movie → user → movie traversals with termination
        (PinSage's importance walks), on the training graph and on the visitors' graph."""
        starts_from = torch.tensor(nodes, dtype=torch.int64).repeat_interleave(VISITOR_WALKS)
        owner = torch.arange(len(nodes)).repeat_interleave(VISITOR_WALKS)
        first, _ = dgl.sampling.random_walk(self.graph, starts_from, metapath=[WATCHED])
        starts = first[:, 1]
        owner, starts = owner[starts >= 0], starts[starts >= 0]
        counts = torch.zeros(len(nodes) * self.n_items)
        counts.index_add_(0, owner * self.n_items + starts, torch.ones(len(starts)))
        metapath = [WATCHED_BY, WATCHED] * self.walks.num_traversals
        for graph in (base, self.graph):
            traces, _ = dgl.sampling.random_walk(graph, starts, metapath=metapath,
                                                 restart_prob=self.walks.termination_prob)
            movies = traces[:, 2::2]  # every second node after the start is a movie
            hit = movies >= 0
            rows = owner.unsqueeze(1).expand_as(movies)[hit] * self.n_items + movies[hit]
            counts.index_add_(0, rows, torch.ones(len(rows)))
        return counts.view(len(nodes), self.n_items)
