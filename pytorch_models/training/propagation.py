"""How LightGCN and NGCF propagate while they train (`TrainOptions.propagation`): the loss of
a BPR batch, and every node's layers for evaluation and publishing.

`FullPropagation` multiplies the whole normalised adjacency at every step (exact; a step costs
the graph). `SampledPropagation` samples the batch's multi-layer neighbourhood with DGL and
computes only its nodes (`models.blocks`; a step costs the batch and the fan-outs), and gets
every node's layers from a layer-wise pass in chunks. With fan-out "all" the two give the same
losses and embeddings (tests/pytorch_models/training/test_propagation.py).
"""

from __future__ import annotations

import torch

from pytorch_models.data.graph import SymmetricAdjacency
from pytorch_models.data.interactions import Interactions
from pytorch_models.models.blocks import batch_seeds, layerwise_outputs, node_chunks, sampled_loss
from pytorch_models.models.embedding import EmbeddingPropagation
from pytorch_models.models.neighbour_sampler import NeighbourSampler

# In-edges per chunk of the layer-wise inference: its messages take INFERENCE_EDGES · d floats
# (256 MiB at d = 256) on the model's device, beside the chunk's neighbours' rows. A memory
# bound, not a tuned speed: fewer, larger chunks only save per-chunk overhead.
INFERENCE_EDGES = 1 << 18


def _node_dropout(model: EmbeddingPropagation) -> float:
    return getattr(model.config, "node_dropout", 0.0)  # NGCF's; LightGCN has none


class FullPropagation:
    """Every step propagates all N rows over the (N, N) normalised adjacency (built on the CPU;
    on another device the model's, moved there once, or every step with NGCF's dropout)."""

    def __init__(self, model: EmbeddingPropagation, data: Interactions, generator: torch.Generator):
        self.model, self.generator = model, generator
        self.adjacency = SymmetricAdjacency(data.n_users, data.n_items, data.train)
        self._on_device: torch.Tensor | None = None

    def prepare(self, batch):
        """What `loss` takes for a BPR batch (users, pos, neg): the batch itself."""
        return batch

    def loss(self, batch) -> torch.Tensor:
        """The BPR loss of (users, pos, neg), NGCF's edge dropout drawn on the whole graph."""
        users, pos, neg = batch
        device = self.model.user_embedding.weight.device
        rate = _node_dropout(self.model)
        matrix = self.adjacency.dropped(rate, self.generator).to(device) if rate > 0 else self._matrix()
        return self.model.loss(matrix, *(t.to(device) for t in (users, pos, neg)))

    def layers(self) -> list[torch.Tensor]:
        """[E^(0), ..., E^(K)] of every node, (N, d) each, on the model's device."""
        with torch.no_grad():
            return self.model.layer_outputs(self._matrix(), self.model.ego_embeddings())

    def _matrix(self) -> torch.Tensor:
        """The undropped adjacency on the model's device, moved there once."""
        device = self.model.user_embedding.weight.device
        if self._on_device is None or self._on_device.device != device:
            self._on_device = self.adjacency.matrix.to(device)
        return self._on_device


class SampledPropagation:
    """Every step computes only the batch's nodes, over blocks sampled with `fanouts` (per
    layer, input layer first; None: every neighbour). The model may sit on any device: the
    blocks are sampled on the CPU and moved to it."""

    def __init__(self, model: EmbeddingPropagation, data: Interactions, fanouts: list[int] | None,
                 generator: torch.Generator, inference_edges: int = INFERENCE_EDGES):
        self.model, self.generator = model, generator
        self.sampler = NeighbourSampler(data.n_users, data.n_items, data.train, fanouts, model.config.layers)
        self.chunks = node_chunks(self.sampler.degree, inference_edges)

    def prepare(self, batch):
        """What `loss` takes for a BPR batch (users, pos, neg): (users, pos, neg, blocks), the
        blocks sampled on the CPU (in a DataLoader worker, `bpr_sampler.prepared_batches`)."""
        users, pos, neg = batch
        return users, pos, neg, self.sampler.blocks(batch_seeds(users, pos, neg, self.model.config.n_users))

    def loss(self, batch) -> torch.Tensor:
        """The BPR loss of a `prepare`d batch over its sampled blocks, NGCF's edge dropout drawn
        on the blocks' edges."""
        users, pos, neg, blocks = batch
        device = self.model.user_embedding.weight.device
        rate = _node_dropout(self.model)
        blocks = [block.dropped(rate, self.generator).to(device) for block in blocks]
        return sampled_loss(self.model, blocks, users, pos, neg)

    def layers(self) -> list[torch.Tensor]:
        """[E^(0), ..., E^(K)] of every node, (N, d) each on the CPU, layer by layer in chunks."""
        return layerwise_outputs(self.model, self.sampler.full_block, self.chunks)
