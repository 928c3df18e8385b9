"""LightGCN, NGCF and PinSage on tiny random graphs: shapes, ranges, loss falls."""

from dataclasses import asdict

import pytest
import torch

from pytorch_models.graph import SymmetricAdjacency, build_graph
from pytorch_models.lightgcn.model import LightGCN, LightGCNConfig
from pytorch_models.ngcf.model import NGCF, NGCFConfig
from pytorch_models.pinsage.model import PinSage, PinSageConfig
from pytorch_models.pinsage.sampler import WalkConfig, full_hops, make_batch, neighbour_table
from pytorch_models.sampling import PositiveSet


@pytest.mark.parametrize("cls,config_cls,width", [(LightGCN, LightGCNConfig, 1), (NGCF, NGCFConfig, 4)])
def test_embedding_models_shapes_and_loss_falls(communities, cls, config_cls, width):
    torch.manual_seed(0)
    data = communities
    model = cls(config_cls(n_users=data.n_users, n_items=data.n_items, dim=16, layers=3))
    adjacency = SymmetricAdjacency(data.n_users, data.n_items, data.train)
    users_emb, items_emb = model.embeddings(adjacency.matrix)
    assert users_emb.shape == (data.n_users, 16 * width) and items_emb.shape == (data.n_items, 16 * width)
    positives = PositiveSet(data.train, data.n_items)
    pairs = torch.from_numpy(data.train)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(0)
    neg = positives.sample_negatives(pairs[:, 0], generator)
    assert not positives.contains(pairs[:, 0], neg).any()
    model.eval()  # fixed batch, no dropout: the same loss must fall
    losses = []
    for _ in range(30):
        loss = model.loss(adjacency.matrix, pairs[:, 0], pairs[:, 1], neg)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0] * 0.8
    model.reset_parameters()
    assert torch.isfinite(model.embeddings(adjacency.matrix)[0]).all()


def test_ngcf_edge_dropout_keeps_symmetry(communities):
    adjacency = SymmetricAdjacency(communities.n_users, communities.n_items, communities.train)
    dropped = adjacency.dropped(0.5, torch.Generator().manual_seed(0)).to_dense()
    assert torch.allclose(dropped, dropped.T)
    assert (dropped != 0).sum() < (adjacency.matrix.to_dense() != 0).sum()


def test_pinsage_shapes_and_loss_falls(communities, community_features):
    torch.manual_seed(0)
    data, features = communities, community_features
    config = PinSageConfig(
        n_items=data.n_items, dim=16, layers=2, n_genres=features.genres.shape[1],
        n_year_buckets=features.n_year_buckets, n_title_buckets=features.n_title_buckets,
    )
    model = PinSage(config)
    g = build_graph(data.n_users, data.n_items, data.train)
    walks = WalkConfig(num_neighbors=5, hard_band=(2, 8), hard_walks=20)
    batch = make_batch(g, 2, walks, 64, n_hard=1, generator=torch.Generator().manual_seed(0), n_shared=6)
    assert batch.neg.shape == (len(batch.queries), 2) and batch.shared_neg.shape == (6,)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        loss = model.loss(batch.hops, features.tensors(), batch.queries, batch.pos, batch.neg, batch.shared_neg)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0] * 0.8
    table, weights = neighbour_table(g, torch.arange(data.n_items), walks)
    assert table.shape == (data.n_items, 5) and (weights >= 0).all()
    with torch.no_grad():
        items = model(full_hops(table, weights, 2), features.tensors())
    assert items.shape == (data.n_items, 16) and torch.isfinite(items).all()
    assert asdict(config)["n_items"] == data.n_items


def test_pinsage_batches_from_the_cached_table_match_whole_table_inference(communities):
    """Blocks built from a neighbour table give a batch's items the embeddings that the
    whole-catalogue pass over the same table gives them (training and serving agree)."""
    torch.manual_seed(0)
    data = communities
    model = PinSage(PinSageConfig(n_items=data.n_items, dim=16, layers=2)).eval()
    g = build_graph(data.n_users, data.n_items, data.train)
    walks = WalkConfig(num_neighbors=5)
    table = neighbour_table(g, torch.arange(data.n_items), walks)

    batch = make_batch(g, 2, walks, 16, n_hard=0, generator=torch.Generator().manual_seed(1), table=table)

    seeds = batch.hops[-1].src_nodes[: batch.hops[-1].n_dst]
    with torch.no_grad():
        from_batch = model(batch.hops, None)
        from_table = model(full_hops(*table, 2), None)[seeds]
    assert len(seeds) > 1
    assert torch.allclose(from_batch, from_table, atol=1e-6)


@pytest.mark.parametrize("cls,config_cls", [(LightGCN, LightGCNConfig), (NGCF, NGCFConfig)])
def test_propagate_rows_is_the_full_propagation_at_those_rows(communities, cls, config_cls):
    torch.manual_seed(0)
    data = communities
    model = cls(config_cls(n_users=data.n_users, n_items=data.n_items, dim=8, layers=3)).eval()
    adjacency = SymmetricAdjacency(data.n_users, data.n_items, data.train).matrix
    rows = torch.tensor([0, 5, data.n_users + 3, 5])
    with torch.no_grad():
        full = model.propagate(adjacency, model.ego_embeddings())
        picked = model.propagate_rows(adjacency, model.ego_embeddings(), rows)
    assert torch.allclose(picked, full[rows], atol=1e-6)
