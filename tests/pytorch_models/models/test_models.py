"""LightGCN, NGCF and PinSage on tiny random graphs: shapes, ranges, loss falls."""

import dataclasses
from dataclasses import asdict

import numpy as np
import pytest
import torch

from pytorch_models.data.graph import SymmetricAdjacency, build_graph
from pytorch_models.models.lightgcn import LightGCN, LightGCNConfig
from pytorch_models.models.ngcf import NGCF, NGCFConfig
from pytorch_models.models.pinsage.model import ItemInput, PinSage, PinSageConfig
from pytorch_models.models.pinsage.sampler import (
    WalkConfig,
    full_hops,
    make_batch,
    neighbour_table,
    random_negatives,
)
from pytorch_models.training.bpr_sampler import PositiveSet


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
        n_tag_buckets=features.n_tag_buckets,
    )
    model = PinSage(config)
    g = build_graph(data.n_users, data.n_items, data.train)
    walks = WalkConfig(num_neighbors=5, hard_band=(2, 8), hard_walks=20)
    batch = make_batch(g, 2, walks, 64, n_hard=1, generator=torch.Generator().manual_seed(0), n_shared=6)
    assert batch.neg.shape == (len(batch.queries), 2) and batch.shared_neg.shape == (6,)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        loss = model.loss(batch.hops, features.tensors(), batch.queries, batch.pos, batch.neg,
                          batch.shared_neg)
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


def test_pinsage_input_adds_the_tags(community_features):
    """Two movies alike in every feature and id row but their tags get different inputs; a
    movie without kept tags gets what the same movie would get with no tag feature at all."""
    torch.manual_seed(0)
    features = community_features
    config = PinSageConfig(
        n_items=2, dim=8, n_genres=features.genres.shape[1], n_year_buckets=features.n_year_buckets,
        n_title_buckets=features.n_title_buckets, n_tag_buckets=features.n_tag_buckets,
    )
    item_input = ItemInput(config)
    with torch.no_grad():
        item_input.id_embedding.weight[1] = item_input.id_embedding.weight[0]
    alike = {name: table[[1, 1]].clone() for name, table in features.tensors().items()}  # both: movie 1's
    alike["tags"][1] = features.tags[-1]  # movie 1's features with the last movie's tags

    with torch.no_grad():
        inputs = item_input(torch.tensor([0, 1]), alike)
        alike["tags"][0] = 0  # no tags
        untagged = item_input(torch.tensor([0]), alike)
        without = ItemInput(dataclasses.replace(config, n_tag_buckets=0))
        without.load_state_dict({k: v for k, v in item_input.state_dict().items()
                                 if not k.startswith("tags.")})
        no_feature = without(torch.tensor([0]), alike)

    assert not torch.allclose(inputs[0], inputs[1])
    assert torch.allclose(untagged, no_feature)
    assert not torch.allclose(untagged, inputs[:1])


def test_pinsage_random_negatives_follow_degree_to_the_power():
    """Item 0 is watched by 8 users, item 1 by none: at power 0.5 it is drawn 3x as often."""
    g = build_graph(8, 2, np.array([[u, 0] for u in range(8)]))
    generator = torch.Generator().manual_seed(0)

    uniform = random_negatives(g, (20_000,), 0.0, generator)
    weighted = random_negatives(g, (200, 100), 0.5, generator)

    assert weighted.shape == (200, 100) and uniform.float().mean() == pytest.approx(0.5, abs=0.02)
    assert (weighted == 0).float().mean() == pytest.approx(3 / 4, abs=0.02)  # sqrt(9) : sqrt(1)


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
def test_candidate_negatives_train_on_the_one_the_propagated_embeddings_score_highest(communities, cls,
                                                                                      config_cls):
    """Dynamic negative sampling: with (B, M) candidates the loss is the loss of each row's
    highest-scoring candidate under the final (propagated) embeddings, not the lowest, nor the
    ego rows' favourite."""
    torch.manual_seed(0)
    data = communities
    model = cls(config_cls(n_users=data.n_users, n_items=data.n_items, dim=8, layers=3)).eval()
    adjacency = SymmetricAdjacency(data.n_users, data.n_items, data.train).matrix
    users, pos = torch.from_numpy(data.train[:6, 0]), torch.from_numpy(data.train[:6, 1])
    candidates = torch.randint(0, data.n_items, (6, 5), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        final_users, final_items = model.embeddings(adjacency)
        ego_users, ego_items = model.user_embedding.weight, model.item_embedding.weight

        def pick(u, i, choose):
            scores = (u[users, None] * i[candidates]).sum(-1)
            return candidates.gather(1, choose(scores, 1, keepdim=True)).squeeze(1)

        hardest = pick(final_users, final_items, torch.argmax)
        easiest = pick(final_users, final_items, torch.argmin)
        ego_hardest = pick(ego_users, ego_items, torch.argmax)
        assert not torch.equal(hardest, easiest) and not torch.equal(hardest, ego_hardest)
        got = float(model.loss(adjacency, users, pos, candidates))
    assert got == pytest.approx(float(model.loss(adjacency, users, pos, hardest)), abs=1e-6)
    assert got != pytest.approx(float(model.loss(adjacency, users, pos, easiest)), abs=1e-4)
    assert got != pytest.approx(float(model.loss(adjacency, users, pos, ego_hardest)), abs=1e-4)
