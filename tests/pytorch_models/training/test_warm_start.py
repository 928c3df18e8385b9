"""Warm starts from a published version."""

import numpy as np
import torch

from pytorch_models.checkpoint import load_checkpoint
from pytorch_models.models.architectures import build_model
from pytorch_models.training.options import TrainOptions
from pytorch_models.training.train_model import publish, train_model
from pytorch_models.training.warm_start import warm_start


def test_a_version_of_another_dim_leaves_the_rows_it_cannot_fill(tmp_path, communities, community_features):
    """A live PinSage of dim 8 warm-starting one of dim 16 (the default changed) copies what
    fits (the item bias) and keeps the new model's own id rows, instead of failing."""
    old = train_model("pinsage", communities, community_features,
                      TrainOptions(epochs=1, batch_size=64, dim=8, progress=False, num_workers=0))
    checkpoint = load_checkpoint(publish(old, communities, tmp_path / "old",
                                         item_features=community_features))
    new = build_model("pinsage", {**checkpoint.config, "dim": 16})
    ids_before = new.input.id_embedding.weight.detach().clone()
    keys = [str(u) for u in communities.user_ids]

    carried = warm_start(new, checkpoint, item_ids=communities.item_ids, user_keys=keys,
                         checkpoint_user_keys=keys)

    assert carried["items"] == communities.n_items
    assert torch.equal(new.input.id_embedding.weight, ids_before)
    assert torch.equal(new.item_bias.detach(), checkpoint.state_dict()["item_bias"])


def test_a_user_the_version_lacks_starts_as_the_mean_of_its_movies(tmp_path, communities):
    """A retrain's new visitor (a user key the live version has not seen) is folded in from its
    training movies' carried rows, as the live path folds a visitor in; a user with no training
    pair keeps the model's own row; known users keep theirs."""
    old = train_model("lightgcn", communities, None, TrainOptions(epochs=1, dim=8, progress=False))
    checkpoint = load_checkpoint(publish(old, communities, tmp_path / "old"))
    keys = [str(u) for u in communities.user_ids]
    new = build_model("lightgcn", {**checkpoint.config, "n_users": communities.n_users + 2})
    newcomer, idle = communities.n_users, communities.n_users + 1
    train = np.concatenate([communities.train, [[newcomer, 3], [newcomer, 5]]])
    idle_before = new.user_embedding.weight[idle].detach().clone()

    carried = warm_start(new, checkpoint, item_ids=communities.item_ids, user_keys=[*keys, "v:new", "v:idle"],
                         checkpoint_user_keys=keys, train=train)

    old_state = checkpoint.state_dict()
    assert carried == {"items": communities.n_items, "users": communities.n_users, "folded_in": 1}
    items = old_state["item_embedding.weight"]
    assert torch.allclose(new.user_embedding.weight[newcomer], (items[3] + items[5]) / 2)
    assert torch.equal(new.user_embedding.weight[idle], idle_before)
    assert torch.equal(new.user_embedding.weight[:newcomer], old_state["user_embedding.weight"])
