"""The live visitors' DGL graph: edges follow histories, idle visitors leave, walks count."""

import torch

from pytorch_models.data.graph import USER, WATCHED, build_graph
from pytorch_models.serving.visitor_graph import VisitorGraph


def _edges(graph: VisitorGraph) -> set[tuple[int, int]]:
    users, items = graph.graph.edges(etype=WATCHED)
    return set(zip(users.tolist(), items.tolist(), strict=True))


def test_update_adds_and_removes_edges_in_one_batch():
    graph = VisitorGraph(n_items=10)
    a, b = graph.update({"a": [1, 2], "b": [3]}, now=0.0)
    assert _edges(graph) == {(a, 1), (a, 2), (b, 3)}

    graph.update({"a": [2, 4]}, now=1.0)  # 1 removed, 4 added
    assert _edges(graph) == {(a, 2), (a, 4), (b, 3)}
    assert graph.graph.num_edges("watched-by") == 3


def test_idle_visitors_are_evicted_and_their_nodes_reused():
    graph = VisitorGraph(n_items=10)
    graph.update({"a": [1], "b": [2]}, now=0.0)
    graph.update({"b": [2, 3]}, now=50.0)

    assert graph.evict_idle(older_than=10.0) == ["a"]
    assert len(graph) == 1 and all(u == graph.node_of["b"] for u, _ in _edges(graph))

    [node] = graph.update({"c": [5]}, now=60.0)
    assert graph.graph.num_nodes(USER) == 2  # the evicted node was reused, not a new one
    assert (node, 5) in _edges(graph)


def test_walks_start_at_the_visitors_items_and_reach_co_watched_movies():
    base = build_graph(2, 6, torch.tensor([[0, 1], [0, 2], [1, 4], [1, 5]]))  # 1-2 and 4-5 co-watched
    graph = VisitorGraph(n_items=6)
    nodes = graph.update({"v": [1], "w": [4, 3]}, now=0.0)

    visits = graph.visits(base, nodes)

    assert visits.shape == (2, 6)
    assert visits[0, 1] > 0 and visits[0, 2] > 0  # its own movie, then the co-watched one
    assert visits[0, [0, 3, 4, 5]].sum() == 0
    assert visits[1, 5] > 0 and visits[1, [0, 1, 2]].sum() == 0
