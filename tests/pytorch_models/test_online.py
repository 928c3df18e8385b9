"""The graph worker's fold-in: only what should change changes, and it ranks the right items."""

import pytest
import torch

from pytorch_models.online import OnlineModel
from pytorch_models.train import publish, train_model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    from tests.pytorch_models.conftest import community_interactions
    from pytorch_models.data import movielens_item_features

    data = community_interactions()
    n = data.n_items
    features = movielens_item_features(
        [f"Movie {i} ({1950 + i})" for i in range(n)],
        [["Comedy"] if i < n // 2 else ["Drama"] for i in range(n)],
        [1950 + i for i in range(n)],
    )
    out = {}
    for name in ("lightgcn", "ngcf", "pinsage"):
        result = train_model(name, data, features, epochs=20, batch_size=64, dim=16, lr=0.01,
                             progress=False, num_workers=0)
        out[name] = publish(result, data, tmp_path_factory.mktemp(name), item_features=features)
    return out


def _mean_rank(scores, items):
    order = torch.argsort(scores, descending=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    return rank[items].float().mean()


@pytest.mark.parametrize("name", ["lightgcn", "ngcf"])
def test_fine_tune_changes_only_the_visitor_and_batch_items(checkpoints, name):
    online = OnlineModel.from_checkpoint(checkpoints[name])
    weights = {k: v.clone() for k, v in online.model.state_dict().items()}
    users_before = online.user_ego.clone()
    items_before = online.item_ego.clone()
    visitor = online.add_user()
    assert visitor == len(users_before)
    online.add_interactions(visitor, [0, 1, 2])
    online.fine_tune(visitor)
    assert torch.equal(online.user_ego[: len(users_before)], users_before)  # other users bit-identical
    assert not torch.equal(online.user_ego[visitor], torch.zeros_like(online.user_ego[visitor]))
    for key, value in online.model.state_dict().items():
        assert torch.equal(value, weights[key]), key  # layer weights untouched
    moved = (online.item_ego - items_before).norm(dim=1)
    assert moved[[0, 1, 2]].max() > 0
    assert moved.max() < (online.user_ego[visitor].norm() + 1e-6)  # item rows move little


@pytest.mark.parametrize("name", ["lightgcn", "ngcf", "pinsage"])
def test_fine_tune_ranks_co_interacted_items_higher(checkpoints, name):
    online = OnlineModel.from_checkpoint(checkpoints[name])
    visitor = online.add_user()
    before = online.scores(visitor)
    assert before.shape == (30,)
    history = [0, 1, 2, 3]
    online.add_interactions(visitor, history)
    online.fine_tune(visitor)
    after = online.scores(visitor)
    assert after.shape == (30,) and torch.isfinite(after).all()
    co_interacted = list(range(4, 15))  # the rest of the visitor's community
    assert _mean_rank(after, co_interacted) < _mean_rank(before, co_interacted)
    assert _mean_rank(after, co_interacted) < _mean_rank(after, list(range(15, 30)))


def test_pinsage_fine_tune_moves_item_table_little_and_remove_works(checkpoints):
    online = OnlineModel.from_checkpoint(checkpoints["pinsage"])
    table_before = online.item_table.clone()
    visitor = online.add_user()
    online.add_interactions(visitor, [0, 1, 2, 3])
    online.fine_tune(visitor)
    change = (online.item_table - table_before).norm(dim=1) / table_before.norm(dim=1)
    assert change.max() < 0.1
    online.remove_interactions(visitor, [0, 1])
    assert sorted(online.user_items(visitor).tolist()) == [2, 3]
    assert torch.isfinite(online.scores(visitor)).all()
