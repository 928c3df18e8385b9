"""Warm starts from a published version."""

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
