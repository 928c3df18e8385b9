"""LightGCN and NGCF over blocks: the final embeddings of a minibatch's nodes from their sampled
multi-layer neighbourhood, and every node's layers by layer-wise inference in chunks.

Why: the full-graph path (`EmbeddingPropagation.loss`) propagates all N rows through every
layer for every batch, so a step costs O(E·d·K) and an epoch O(E²·d·K / B), quadratic in the
data. Over blocks a step costs the batch's sampled edges, bounded by the seeds and the fan-outs
whatever the size of the graph (the DGL minibatch examples' shape: sample, then compute on
the blocks; a separate layer-wise pass for inference).

The maths is the full graph's restricted to the edges a block holds. Layer k+1 of a dst node v
takes the neighbour sum

    side_v = Σ_{u in sampled N(v)} w_uv · E^(k)_u,   w_uv = d_u^-1/2 · d_v^-1/2 · d_v / s_v,

with d the FULL graph's degrees and s_v the number of v's neighbours the block kept. The first
two factors are L's entry; d_v / s_v makes the sum an unbiased estimate of (L E^(k))_v under
uniform sampling without replacement, so embeddings trained on samples keep the scale that
full inference gives them. Where every neighbour is kept (fan-out "all", or at least the
degree) s_v = d_v, and the sum is the row of L E^(k): sampled with full fan-out is full-graph
propagation. The layer itself is the model's `next_layer`, the same as on the full graph.

Plain torch (sparse CSR products built from index tensors), so any device runs it; DGL only
samples (`models.neighbour_sampler`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from pytorch_models.linalg import row_pointers
from pytorch_models.models.embedding import EmbeddingPropagation


@dataclass(frozen=True)
class Block:
    """One layer's messages: from `src_nodes` to the first `n_dst` of them. DGL's block layout:
    the dst nodes come first among the src nodes, so each dst node's own previous layer (which
    NGCF mixes in) is at hand, and the seeds are the first rows of every layer.

    src_nodes: (S,) global node rows (users first, item i at n_users + i).
    edge_src: (E,) local rows into src_nodes; edge_dst: (E,) local rows into the dst nodes,
        in ascending order (the edges grouped by dst node, as DGL's in-edge sampling gives them).
    weight: (E,) w_uv of the module docstring.
    src_order: (E,) the edges' positions grouped by src node (a stable order), for the
        backward's transposed product; None: sorted when a backward pass asks for it.
    """

    src_nodes: torch.Tensor
    n_dst: int
    edge_src: torch.Tensor
    edge_dst: torch.Tensor
    weight: torch.Tensor
    src_order: torch.Tensor | None = None

    @property
    def dst_nodes(self) -> torch.Tensor:
        return self.src_nodes[: self.n_dst]

    def to(self, device: torch.device | str) -> Block:
        order = None if self.src_order is None else self.src_order.to(device)
        return Block(self.src_nodes.to(device), self.n_dst, self.edge_src.to(device),
                     self.edge_dst.to(device), self.weight.to(device), order)

    def dropped(self, rate: float, generator: torch.Generator | None = None) -> Block:
        """NGCF's edge dropout on the block's edges: each kept with probability 1 - rate and
        rescaled by 1 / (1 - rate), as `SymmetricAdjacency.dropped` does to L. Each block
        draws its own (a message is one direction of one layer), so the two directions of an
        edge are not dropped together as on the full graph."""
        if rate <= 0:
            return self
        keep = (torch.rand(len(self.weight), generator=generator) >= rate).float() / (1.0 - rate)
        return Block(self.src_nodes, self.n_dst, self.edge_src, self.edge_dst,
                     self.weight * keep.to(self.weight.device), self.src_order)


def _grouped_csr(rows: torch.Tensor, columns: torch.Tensor, values: torch.Tensor,
                 shape: tuple[int, int]) -> torch.Tensor:
    """The CSR matrix of entries already grouped by row (`rows` ascending), built from its row
    counts: no coalescing sort (`to_sparse_csr` from COO spent 23 ms on a 632k-edge block that
    this builds in 1)."""
    return torch.sparse_csr_tensor(row_pointers(rows, shape[0]), columns, values, shape)


class _BlockProduct(torch.autograd.Function):
    """The block's (n_dst, S) sparse matrix times h (S, d); h's gradient through the transposed
    matrix, built only when a backward pass asks for it (layer-wise inference never does)."""

    @staticmethod
    def forward(ctx, block, h):
        ctx.block, ctx.n_src = block, h.shape[0]
        return _grouped_csr(block.edge_dst, block.edge_src, block.weight, (block.n_dst, h.shape[0])) @ h

    @staticmethod
    def backward(ctx, grad):
        block = ctx.block
        order = block.src_order
        if order is None:
            order = torch.sort(block.edge_src, stable=True).indices
        matrix = _grouped_csr(block.edge_src.index_select(0, order), block.edge_dst.index_select(0, order),
                              block.weight.index_select(0, order), (ctx.n_src, block.n_dst))
        return None, matrix @ grad


def neighbour_sum(block: Block, h_src: torch.Tensor) -> torch.Tensor:
    """(n_dst, d) the dst nodes' weighted sum of their sampled neighbours' rows h_src (S, d), as
    a sparse product: a gather of every edge's row (edges × d floats) would be a fresh block of
    memory each step, faulted in and zeroed by the kernel (docs/benchmarks.md, "A sampled
    step's system time")."""
    return _BlockProduct.apply(block, h_src)


def batch_seeds(users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, n_users: int) -> torch.Tensor:
    """The sorted distinct graph nodes of a BPR batch (users (B,), items pos (B,) and neg (B,)
    or (B, M)): the seeds to sample blocks for. Sorted, so `sampled_loss` finds a row's seed
    by binary search."""
    return torch.unique(torch.cat([users, n_users + pos, n_users + neg.flatten()]))


def seed_layers(model: EmbeddingPropagation, blocks: list[Block]) -> list[torch.Tensor]:
    """[E^(0), ..., E^(K)] of the seeds (the last block's dst nodes), (S, d) each, from one
    block per layer, outermost first (a block's dst nodes are the next block's src nodes)."""
    h = model.ego_rows(blocks[0].src_nodes)
    n_seeds = blocks[-1].n_dst
    layers = [h[:n_seeds]]
    for k, block in enumerate(blocks):
        h = model.next_layer(k, neighbour_sum(block, h), h[: block.n_dst])
        layers.append(h[:n_seeds])
    return layers


def sampled_loss(model: EmbeddingPropagation, blocks: list[Block], users: torch.Tensor, pos: torch.Tensor,
                 neg: torch.Tensor) -> torch.Tensor:
    """`EmbeddingPropagation.loss` of the batch (users, pos, neg as there, on any device) over
    blocks sampled for `batch_seeds(users, pos, neg)`: the same BPR and L2 terms and the same
    hardest-candidate rule, computed only on the batch's neighbourhood."""
    n_users = model.config.n_users
    seeds = blocks[-1].dst_nodes
    users, pos, neg = (t.to(seeds.device).contiguous() for t in (users, pos, neg))  # pairs[:, 0] is a view
    layers = seed_layers(model, blocks)
    if neg.dim() == 2:
        neg = model.hardest(layers, torch.searchsorted(seeds, users),
                            torch.searchsorted(seeds, n_users + neg), neg)
    rows = torch.searchsorted(seeds, torch.cat([users, n_users + pos, n_users + neg]))
    return model.batch_loss([x.index_select(0, rows) for x in layers], len(users))


def node_chunks(degree: torch.Tensor, max_edges: int) -> list[torch.Tensor]:
    """Consecutive runs of the nodes 0..N-1 (degree (N,)) with about `max_edges` in-edges each
    (at most max_edges plus one node's degree): what bounds the memory of a chunk's messages."""
    start = torch.cumsum(degree.long(), 0) - degree.long()  # in-edges before each node
    _, counts = torch.unique_consecutive(start // max(max_edges, 1), return_counts=True)
    return list(torch.arange(len(degree)).split(counts.tolist()))


def layerwise_outputs(model: EmbeddingPropagation, full_block: Callable[[torch.Tensor], Block],
                      chunks: list[torch.Tensor]) -> list[torch.Tensor]:
    """[E^(0), ..., E^(K)] of every node, (N, d) each on the CPU: `layer_outputs` over the
    whole graph, computed a layer at a time over `chunks` of dst nodes (covering 0..N-1).

    full_block(nodes): the block of every in-edge of `nodes`; w_uv is then L's entry. Only a
    chunk's block and its neighbours' rows go to the model's device, so the memory there is
    bounded by the chunk, not the graph. Dropout follows the model's mode (call it in eval)."""
    device = model.user_embedding.weight.device
    with torch.no_grad():
        layers = [model.ego_embeddings().cpu()]
        for k in range(model.config.layers):
            h, out = layers[-1], torch.empty_like(layers[-1])
            for nodes in chunks:
                block = full_block(nodes)
                h_src = h[block.src_nodes].to(device)
                side = neighbour_sum(block.to(device), h_src)
                out[block.dst_nodes] = model.next_layer(k, side, h_src[: block.n_dst]).cpu()
            layers.append(out)
    return layers
