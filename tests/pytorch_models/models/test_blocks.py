"""LightGCN and NGCF over sampled blocks (`models.blocks`, `models.neighbour_sampler`) against
the full-graph propagation they replace.

With every neighbour kept the blocks must give the full graph's embeddings, losses and
gradients; the layer-wise inference in chunks must give `layer_outputs`; with a small fan-out
a step must reach no further than its sampled neighbourhood, and the sampled neighbour sum
must be an unbiased estimate of the full one (worked out by hand on the five-node graph of
test_model_maths).
"""

import dataclasses
import math

import dgl
import numpy as np
import pytest
import torch

from pytorch_models.data.graph import SymmetricAdjacency
from pytorch_models.models.blocks import (
    batch_seeds,
    layerwise_outputs,
    neighbour_sum,
    node_chunks,
    sampled_loss,
    seed_layers,
)
from pytorch_models.models.lightgcn import LightGCN, LightGCNConfig
from pytorch_models.models.neighbour_sampler import NeighbourSampler
from pytorch_models.models.ngcf import NGCF, NGCFConfig

MODELS = [(LightGCN, LightGCNConfig), (NGCF, NGCFConfig)]


def built(cls, config_cls, data, layers=3):
    torch.manual_seed(0)
    return cls(config_cls(n_users=data.n_users, n_items=data.n_items, dim=8, layers=layers)).eval()


def a_batch(data):
    """Six train pairs of the first community (users 0-19, items 0-14) and a negative from it
    for each: their three-hop neighbourhood is that community, half the graph."""
    rows = [0, 1, 7, 60, 61, 90]
    users, pos = torch.from_numpy(data.train[rows, 0]), torch.from_numpy(data.train[rows, 1])
    assert users.max() < data.n_users // 2 and pos.max() < data.n_items // 2
    neg = torch.tensor([14, 3, 11, 0, 12, 5])
    return users, pos, neg


@pytest.mark.parametrize("cls,config_cls", MODELS)
def test_with_every_neighbour_the_blocks_give_the_full_graphs_embeddings_loss_and_gradients(
        communities, cls, config_cls):
    data = communities
    model = built(cls, config_cls, data)
    adjacency = SymmetricAdjacency(data.n_users, data.n_items, data.train).matrix
    sampler = NeighbourSampler(data.n_users, data.n_items, data.train, None, 3)
    users, pos, neg = a_batch(data)
    seeds = batch_seeds(users, pos, neg, data.n_users)
    blocks = sampler.blocks(seeds)

    full_layers = model.layer_outputs(adjacency, model.ego_embeddings())
    with torch.no_grad():
        sampled = model.combine(seed_layers(model, blocks))
        full = model.combine(full_layers)[seeds]
    assert torch.allclose(sampled, full, atol=1e-6)
    # The blocks do not cover the graph (they hold the batch's community), nor do they miss
    # any of the 35 nodes three hops can reach.
    assert len(blocks[0].src_nodes) == (data.n_users + data.n_items) // 2

    full_loss = model.loss(adjacency, users, pos, neg)
    full_loss.backward()
    full_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    sampled_value = sampled_loss(model, blocks, users, pos, neg)
    sampled_value.backward()
    assert float(sampled_value) == pytest.approx(float(full_loss), abs=1e-6)
    for full_grad, param in zip(full_grads, model.parameters(), strict=True):
        assert torch.allclose(param.grad, full_grad, atol=1e-6)


@pytest.mark.parametrize("cls,config_cls", MODELS)
def test_with_every_neighbour_candidate_negatives_pick_the_full_graphs_hardest(communities, cls,
                                                                               config_cls):
    data = communities
    model = built(cls, config_cls, data)
    adjacency = SymmetricAdjacency(data.n_users, data.n_items, data.train).matrix
    users, pos, _ = a_batch(data)
    candidates = torch.randint(0, data.n_items, (6, 5), generator=torch.Generator().manual_seed(1))
    blocks = NeighbourSampler(data.n_users, data.n_items, data.train, None, 3).blocks(
        batch_seeds(users, pos, candidates, data.n_users))
    with torch.no_grad():
        got = float(sampled_loss(model, blocks, users, pos, candidates))
        assert got == pytest.approx(float(model.loss(adjacency, users, pos, candidates)), abs=1e-6)
        # Not the loss of any single fixed column: the choice is per row.
        assert all(got != pytest.approx(float(model.loss(adjacency, users, pos, candidates[:, m])), abs=1e-4)
                   for m in range(5))


@pytest.mark.parametrize("cls,config_cls", MODELS)
def test_layerwise_inference_in_chunks_is_the_full_propagation(communities, cls, config_cls):
    data = communities
    model = built(cls, config_cls, data)
    adjacency = SymmetricAdjacency(data.n_users, data.n_items, data.train).matrix
    sampler = NeighbourSampler(data.n_users, data.n_items, data.train, [1, 1, 1], 3)
    chunks = node_chunks(sampler.degree, 40)

    got = layerwise_outputs(model, sampler.full_block, chunks)

    with torch.no_grad():
        expected = model.layer_outputs(adjacency, model.ego_embeddings())
    assert len(chunks) > 5  # many chunks, each with its own neighbourhood
    assert len(got) == 4
    for got_layer, expected_layer in zip(got, expected, strict=True):
        assert torch.allclose(got_layer, expected_layer, atol=1e-6)


def test_node_chunks_cover_every_node_once_within_the_edge_bound():
    degree = torch.tensor([3, 0, 5, 1, 1, 9, 2, 0, 4])
    chunks = node_chunks(degree, 6)
    assert torch.equal(torch.cat(chunks), torch.arange(9))
    # At most the bound plus one node's degree (the node that crosses it).
    assert all(int(degree[c].sum()) <= 6 + int(degree.max()) for c in chunks)
    assert [c.tolist() for c in chunks] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


@pytest.mark.parametrize("cls,config_cls", MODELS)
def test_with_a_small_fanout_a_step_reaches_only_its_sampled_neighbourhood(communities, cls, config_cls):
    """Three seeds, one neighbour per node per layer: at most 3·2·2·2 = 24 of the 70 nodes can
    be in the outermost block, so its src nodes are a strict subset of the graph, and no ego
    row outside them may receive a gradient."""
    data = communities
    model = built(cls, config_cls, data)
    dgl.seed(0)
    sampler = NeighbourSampler(data.n_users, data.n_items, data.train, [1, 1, 1], 3)
    first_item = int(data.train[data.train[:, 0] == 3][0, 1])
    users, pos, neg = torch.tensor([3]), torch.tensor([first_item]), torch.tensor([25])
    blocks = sampler.blocks(batch_seeds(users, pos, neg, data.n_users))

    sampled_loss(model, blocks, users, pos, neg).backward()

    reached = blocks[0].src_nodes
    assert len(reached) <= 24 < data.n_users + data.n_items
    # One sampled in-edge per dst node at most, in every layer.
    assert all(torch.bincount(block.edge_dst, minlength=block.n_dst).max() <= 1 for block in blocks)
    grads = torch.cat([model.user_embedding.weight.grad, model.item_embedding.weight.grad])
    touched = torch.nonzero(grads.abs().sum(1)).squeeze(1)
    assert set(touched.tolist()) <= set(reached.tolist())


# The graph of test_model_maths: user 0 watched items 0 and 1, user 1 items 1 and 2; nodes
# [u0, u1, i0, i1, i2] with degrees 2, 2, 1, 2, 1.
PAIRS = np.array([[0, 0], [0, 1], [1, 1], [1, 2]])
R = 1 / math.sqrt(2)
EGO = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0], [-1.0, 1.0]])


def test_the_full_blocks_weights_are_the_laplacians_entries():
    block = NeighbourSampler(2, 3, PAIRS, None, 1).blocks(torch.tensor([0, 3]))[0]
    # u0 <- i0 (1/√(2·1)), u0 <- i1 (1/√(2·2)); i1 <- u0, i1 <- u1 (1/2 each).
    got = {(int(block.src_nodes[s]), int(block.dst_nodes[d])): float(w)
           for s, d, w in zip(block.edge_src, block.edge_dst, block.weight, strict=True)}
    assert got == pytest.approx({(2, 0): R, (3, 0): 0.5, (0, 3): 0.5, (1, 3): 0.5})


@pytest.mark.parametrize("keep_order", [True, False])
def test_a_sampled_blocks_product_and_its_gradient_are_its_dense_matrixs(communities, keep_order):
    """The block's sparse product (built from edges grouped by dst, and for the backward by
    src: the sampler's order, or a sort when a block has none) against the dense matrix of the
    same edges: W·h forward and Wᵀ·g backward."""
    data = communities
    dgl.seed(0)
    sampler = NeighbourSampler(data.n_users, data.n_items, data.train, [2, 2], 2)
    block = sampler.blocks(batch_seeds(*a_batch(data), data.n_users))[0]
    assert torch.all(block.edge_dst[1:] >= block.edge_dst[:-1])
    assert torch.all(block.edge_src[block.src_order][1:] >= block.edge_src[block.src_order][:-1])
    if not keep_order:
        block = dataclasses.replace(block, src_order=None)
    dense = torch.zeros(block.n_dst, len(block.src_nodes), dtype=torch.float64)
    dense.index_put_((block.edge_dst, block.edge_src), block.weight.double(), accumulate=True)
    h = torch.randn(len(block.src_nodes), 3, dtype=torch.float64)
    g = torch.randn(block.n_dst, 3, dtype=torch.float64)
    h_leaf = h.float().requires_grad_()
    out = neighbour_sum(block, h_leaf)
    out.backward(g.float())
    torch.testing.assert_close(out.double(), dense @ h, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_leaf.grad.double(), dense.T @ g, rtol=1e-5, atol=1e-5)


def test_a_sampled_neighbour_sum_is_an_unbiased_estimate_of_the_full_one():
    """u0 keeps one of its two items: i0 with weight (1/√2)·2 = √2, or i1 with (1/2)·2 = 1
    (the d_v / s_v = 2 correction). The two outcomes, √2·e_i0 = [√2, √2] and e_i1 = [2, -1],
    average to (L E)_u0 = e_i0/√2 + e_i1/2 = [1/√2 + 1, 1/√2 - 1/2]; without the correction
    the mean would be half of it."""
    sampler = NeighbourSampler(2, 3, PAIRS, [1], 1)
    dgl.seed(0)
    outcomes = {}
    for _ in range(50):
        block = sampler.blocks(torch.tensor([0]))[0]
        side = neighbour_sum(block, EGO[block.src_nodes])[0]
        outcomes[int(block.src_nodes[block.edge_src[0]])] = side
    assert sorted(outcomes) == [2, 3]  # both items drawn over 50 tries
    assert torch.allclose(outcomes[2], torch.tensor([math.sqrt(2), math.sqrt(2)]))
    assert torch.allclose(outcomes[3], torch.tensor([2.0, -1.0]))
    assert torch.allclose((outcomes[2] + outcomes[3]) / 2, torch.tensor([R + 1, R - 0.5]))


def test_edge_dropout_on_a_block_keeps_or_rescales_each_edge():
    block = NeighbourSampler(2, 3, PAIRS, None, 1).blocks(torch.tensor([0, 1, 2, 3, 4]))[0]
    dropped = block.dropped(0.5, torch.Generator().manual_seed(0))
    ratio = dropped.weight / block.weight
    assert set(ratio.tolist()) <= {0.0, 2.0} and 0 < int((ratio == 0).sum()) < len(ratio)
    assert block.dropped(0.0) is block


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
@pytest.mark.parametrize("cls,config_cls", MODELS)
def test_a_sampled_step_runs_on_the_gpu_as_on_the_cpu(communities, cls, config_cls):
    data = communities
    model = built(cls, config_cls, data)
    users, pos, neg = a_batch(data)
    blocks = NeighbourSampler(data.n_users, data.n_items, data.train, None, 3).blocks(
        batch_seeds(users, pos, neg, data.n_users))
    on_cpu = float(sampled_loss(model, blocks, users, pos, neg))
    model.cuda()
    on_gpu = float(sampled_loss(model, [b.to("cuda") for b in blocks], users, pos, neg))
    assert on_gpu == pytest.approx(on_cpu, abs=1e-5)
