"""Fold-in against frozen tables: exact for trained users, per-visitor parameters only."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.data.graph import SymmetricAdjacency
from pytorch_models.models.losses import bpr_loss, max_margin_loss
from pytorch_models.serving.fold_in import PinSageFoldIn, fold_in_for
from pytorch_models.serving.visitor_batch import VisitorBatch, _random_negatives, draw_weights, top_unseen
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model
from tests.pytorch_models.conftest import community_interactions


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    rank = lambda x: torch.argsort(torch.argsort(x)).double()  # noqa: E731
    ra, rb = rank(a), rank(b)
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from pytorch_models.data.interactions import movielens_item_features

    data = community_interactions(n_users=60, n_items=150, per_user=20)
    n = data.n_items
    features = movielens_item_features(
        [f"Movie {i} ({1950 + i % 60})" for i in range(n)],
        [["Comedy"] if i < n // 2 else ["Drama"] for i in range(n)],
        [1950 + i % 60 for i in range(n)],
    )
    out = {}
    for name in ("lightgcn", "ngcf", "pinsage"):
        result = train_model(name, data, features,
                             TrainOptions(epochs=10, batch_size=64, dim=16, lr=0.01, progress=False,
                                          num_workers=0))
        folder = publish(result, data, tmp_path_factory.mktemp(name), item_features=features)
        out[name] = load_checkpoint(folder)
    return data, out


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
def test_a_trained_users_fold_in_ranks_like_the_full_model(checkpoints, name):
    data, ckpts = checkpoints
    checkpoint = ckpts[name]
    fold_in = fold_in_for(checkpoint)
    users = [0, 1, 45]
    histories = [sorted(data.train[data.train[:, 0] == u, 1].tolist()) for u in users]
    batch = VisitorBatch.from_histories(histories, user_rows=users)

    live = fold_in.scores(torch.zeros(len(users), 16), batch)

    with torch.no_grad():
        full_users, full_items = fold_in.model.embeddings(
            SymmetricAdjacency(data.n_users, data.n_items, data.train).matrix)
    full = full_users[users] @ full_items.T
    for i in range(len(users)):
        top = torch.topk(full[i], 100).indices
        assert _spearman(live[i][top], full[i][top]) >= 0.95
        assert torch.allclose(live[i], full[i], atol=1e-4)  # the same formulas: equal, in fact


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
def test_fine_tune_moves_only_the_visitors_parameters(checkpoints, name):
    _, ckpts = checkpoints
    fold_in = fold_in_for(ckpts[name])
    frozen = {k: v.clone() for k, v in fold_in.model.state_dict().items()}
    tables = [t.clone() for t in fold_in.item_layers]
    batch = VisitorBatch.from_histories([[0, 1, 2, 3], [80, 81]])

    offsets = fold_in.fine_tune(torch.zeros(2, 16), batch, generator=torch.Generator().manual_seed(0))

    assert offsets.shape == (2, 16) and offsets.abs().sum(1).min() > 0
    assert all(torch.equal(v, frozen[k]) for k, v in fold_in.model.state_dict().items())
    assert all(torch.equal(a, b) for a, b in zip(tables, fold_in.item_layers, strict=True))


@pytest.mark.parametrize("name", ["lightgcn", "ngcf", "pinsage"])
def test_fine_tune_raises_the_visitors_items_and_keeps_its_community_first(checkpoints, name):
    _, ckpts = checkpoints
    fold_in = fold_in_for(ckpts[name])
    history = [0, 1, 2, 3, 4]
    batch = VisitorBatch.from_histories([history])
    before = fold_in.scores(torch.zeros(1, 16), batch)[0]
    offsets = fold_in.fine_tune(torch.zeros(1, 16), batch, steps=20,
                                generator=torch.Generator().manual_seed(0))
    after = fold_in.scores(offsets, batch)[0]
    own_community, other = torch.arange(5, 75), torch.arange(75, 150)

    def mean_rank(scores, items):
        rank = torch.empty(len(scores), dtype=torch.long)
        rank[torch.argsort(scores, descending=True)] = torch.arange(len(scores))
        return rank[items].float().mean()

    def loss(scores):  # the model's own loss over every (history item, other item) pair
        seen = torch.zeros(len(scores), dtype=torch.bool)
        seen[history] = True
        pos, neg = scores[seen], scores[~seen].expand(len(history), -1)
        return max_margin_loss(pos, neg, fold_in.margin) if name == "pinsage" else bpr_loss(pos, neg)

    assert torch.isfinite(after).all()
    assert loss(after) < loss(before)
    assert mean_rank(after, own_community) < mean_rank(after, other)


@pytest.mark.parametrize("name", ["lightgcn", "ngcf", "pinsage"])
def test_a_dismissal_is_a_negative_for_the_movie_and_its_neighbours(checkpoints, name):
    """A visitor of one community dismisses the movie the fold-in ranks first: after the same
    fine-tune with the same draws, that movie and the ten closest to it in the model's space
    score lower than without the dismissal, and no list shows the dismissed movie."""
    _, ckpts = checkpoints
    fold_in = fold_in_for(ckpts[name])
    history = [0, 1, 2, 3, 4]
    plain = VisitorBatch.from_histories([history])
    scores = fold_in.scores(torch.zeros(1, 16), plain)[0]
    scores[history] = float("-inf")
    top = int(scores.argmax())
    table = F.normalize(ckpts[name].item_embeddings.float(), dim=1)
    closeness = table @ table[top]
    closeness[[top, *history]] = float("-inf")
    neighbours = torch.topk(closeness, 10).indices

    def tuned(batch):
        offsets = fold_in.fine_tune(torch.zeros(1, 16), batch, steps=20,
                                    generator=torch.Generator().manual_seed(0))
        return fold_in.scores(offsets, batch)[0], batch

    without, _ = tuned(plain)
    with_dismissal, batch = tuned(VisitorBatch.from_histories([history], dismissed=[[top]]))

    assert with_dismissal[top] < without[top]
    assert with_dismissal[neighbours].mean() < without[neighbours].mean()
    _, listed = top_unseen(with_dismissal.unsqueeze(0).clone(), batch, 150)
    assert top not in listed[0].tolist() and len(listed[0]) == 150 - len(history) - 1


def test_dismissal_pairs_weigh_each_visitors_dismissals_as_one():
    batch = VisitorBatch.from_histories([[5, 6, 7], [8]], dismissed=[[1, 2], []])
    positives, negatives, owners, weights = batch.dismissal_pairs(torch.Generator().manual_seed(0))
    assert negatives.tolist() == [1, 2] and owners.tolist() == [0, 0]
    assert set(positives.tolist()) <= {5, 6, 7} and weights.tolist() == [0.5, 0.5]
    assert batch.seen(10)[0, [1, 2, 5, 6, 7]].all() and not batch.seen(10)[1, [1, 2]].any()


def test_pinsage_initial_query_is_the_importance_weighted_mean(checkpoints):
    _, ckpts = checkpoints
    fold_in = fold_in_for(ckpts["pinsage"])
    table = F.normalize(ckpts["pinsage"].item_embeddings.float(), dim=1)
    batch = VisitorBatch.from_histories([[3, 7, 9], [20]])
    visits = torch.zeros(2, 150)
    visits[0, [3, 7, 9, 50]] = torch.tensor([4.0, 0.0, 1.0, 30.0])  # 50 is not the visitor's

    query = fold_in.initial(batch, visits)

    weights = 1 + torch.tensor([4.0, 0.0, 1.0]).log1p()  # own items only
    expected = (weights.unsqueeze(1) * table[[3, 7, 9]]).sum(0) / weights.sum()
    assert torch.allclose(query[0], expected, atol=1e-6)
    assert torch.allclose(query[1], table[20], atol=1e-6)
    plain = fold_in.initial(batch)  # no walks: the plain mean
    assert torch.allclose(plain[0], table[[3, 7, 9]].mean(0), atol=1e-6)
    # With a zero offset the scores are the published user scoring (mean query · z + bias).
    scores = fold_in.scores(torch.zeros(2, 16), batch)
    assert torch.allclose(scores[0], ckpts["pinsage"].item_embeddings.float() @ plain[0]
                          + ckpts["pinsage"].extra["item_bias"], atol=1e-5)


def test_a_batch_needs_items_and_keeps_the_newest_first():
    with pytest.raises(ValueError):
        VisitorBatch.from_histories([[1], []])
    batch = VisitorBatch.from_histories([[5, 6, 7], [8]])
    assert batch.items[batch.recent(2)].tolist() == [6, 7, 8]
    assert np.array_equal(batch.seen(10).nonzero().tolist(), [[0, 5], [0, 6], [0, 7], [1, 8]])


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
def test_a_version_published_without_layer_tables_folds_in_the_same(checkpoints, name):
    _, ckpts = checkpoints
    checkpoint = ckpts[name]
    older = dataclasses.replace(checkpoint, extra={k: v for k, v in checkpoint.extra.items()
                                                   if k not in ("item_layers", "item_degree")})
    batch = VisitorBatch.from_histories([[0, 1, 2], [90]])

    assert torch.allclose(fold_in_for(older).scores(torch.zeros(2, 16), batch),
                          fold_in_for(checkpoint).scores(torch.zeros(2, 16), batch), atol=1e-5)


def test_pinsage_fold_in_draws_negatives_as_its_version_was_trained(tmp_path, communities,
                                                                    community_features):
    """A version trained with popularity-weighted negatives is fine-tuned with them too; with a
    weight on one unseen item only, every negative is that item."""
    result = train_model("pinsage", communities, community_features,
                         TrainOptions(epochs=1, batch_size=64, dim=8, negative_power=0.5, progress=False,
                                      num_workers=0))
    checkpoint = load_checkpoint(publish(result, communities, tmp_path / "pinsage",
                                         item_features=community_features))
    fold_in = PinSageFoldIn.from_checkpoint(checkpoint)
    counts = checkpoint.extra["item_popularity"].double()
    assert torch.allclose(fold_in.negative_weight, (counts + 1) ** 0.5)

    weight = torch.zeros(communities.n_items, dtype=torch.float64)
    weight[5] = 1.0
    seen = torch.zeros(2, communities.n_items, dtype=torch.bool)
    seen[0, 3] = True
    neg = _random_negatives(torch.tensor([0, 1, 1]), 4, seen, communities.n_items, None, draw_weights(weight))
    assert neg.shape == (3, 4) and torch.all(neg == 5)
    # Drawn in proportion to the weights: item 7 three times as often as item 2, no other.
    weight[5], weight[2], weight[7] = 0.0, 1.0, 3.0
    neg = _random_negatives(torch.zeros(4000, dtype=torch.long), 1, seen[:1], communities.n_items,
                            torch.Generator().manual_seed(0), draw_weights(weight))
    assert set(neg.flatten().tolist()) == {2, 7} and 0.72 < float((neg == 7).double().mean()) < 0.78


@pytest.mark.parametrize("name", ["lightgcn", "ngcf", "pinsage"])
def test_the_bounded_scan_lists_what_the_full_product_lists(checkpoints, name):
    """A large catalogue's lists go through `bounded_scan`; forced onto this small one, a visitor
    with history and dismissals gets the same list as from every item's score."""
    from pytorch_models.serving.bounded_scan import BoundedScan

    _, ckpts = checkpoints
    fold_in = fold_in_for(ckpts[name])
    assert fold_in.scan is None  # 150 movies (and LightGCN and NGCF at any size): the float32 product
    batch = VisitorBatch.from_histories([[3, 40, 77, 120], [5, 6]], dismissed=[[90], []])
    offsets = torch.randn(2, ckpts[name].config["dim"], generator=torch.Generator().manual_seed(0)) * 0.1
    expected = top_unseen(fold_in.scores(offsets, batch), batch, 30)
    table, bias = (fold_in.item_table, fold_in.item_bias) if name == "pinsage" else (fold_in.item_final, None)
    fold_in.scan = BoundedScan(table, bias)
    values, rows = fold_in.top_unseen(offsets, batch, None, 30)
    assert torch.equal(rows, expected[1])
    torch.testing.assert_close(values, expected[0])


def test_gathered_rows_are_the_tables_rows_whatever_the_sizes_asked_before(monkeypatch):
    from pytorch_models.serving.fold_in import RowGather

    table = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    gather = RowGather(table)
    for rows in (torch.tensor([[3, 4], [5, 49]]), torch.arange(40).view(8, 5), torch.tensor([[7], [0]])):
        assert torch.equal(gather(rows), table[rows])
    assert len(gather.buffer) == 40  # kept at the largest gather
    monkeypatch.setattr(RowGather, "MAX_BYTES", 10 * 6 * 4)
    rows = torch.arange(30).view(3, 10)  # past the bound: gathered fresh, the buffer left alone
    assert torch.equal(gather(rows), table[rows]) and len(gather.buffer) == 40
