"""The training snapshot a checkpoint carries."""

import numpy as np

from pytorch_models.checkpoint import GraphSnapshot


def test_trained_on_compares_edges_as_rows_not_columns():
    """Sorting each column on its own would call these two edge sets equal."""
    snapshot = GraphSnapshot(np.array([[0, 1], [1, 0]]), 2, 2, np.arange(2), np.arange(2), None)

    assert snapshot.trained_on(np.array([[1, 0], [0, 1]]))  # the same rows, in another order
    assert not snapshot.trained_on(np.array([[0, 0], [1, 1]]))  # same columns, other rows


def test_features_saved_before_tags_load_without_them(community_features):
    """A version published before the tag feature has no `tags` table nor `n_tag_buckets`."""
    from pytorch_models.data.interactions import ItemFeatures

    tables = {k: v for k, v in community_features.tensors().items() if k != "tags"}
    meta = {k: v for k, v in community_features.meta().items() if k != "n_tag_buckets"}

    old = ItemFeatures.from_tensors(tables, meta)

    assert old.tags is None and old.n_tag_buckets == 0 and "tags" not in old.tensors()


def _saved(folder, *, visitors=None, meta=None):
    import torch

    from pytorch_models.checkpoint import save_checkpoint

    return save_checkpoint(
        folder, model_name="popular", config={}, state_dict={}, item_embeddings=torch.ones(3, 1),
        extra_tensors={}, meta=meta or {}, train_edges=np.array([[0, 0], [1, 2]]), n_users=2,
        item_ids=np.array([10, 20, 30]), visitors=visitors,
    )


def test_the_visitor_map_lives_beside_meta_json_not_in_it(tmp_path):
    """meta.json is read for every version listed: its size must not follow the visitors."""
    import json

    from pytorch_models.checkpoint import META, VISITORS, load_checkpoint

    many = {f"{i:064x}": i for i in range(1000)}
    folder = _saved(tmp_path / "v", visitors=many)
    few = _saved(tmp_path / "w", visitors={"ab": 1})

    assert "visitors" not in json.loads((folder / META).read_text())
    assert (folder / META).stat().st_size == (few / META).stat().st_size
    assert json.loads((folder / VISITORS).read_text()) == many
    assert load_checkpoint(folder).visitors() == many


def test_a_checkpoint_without_visitors_has_none(tmp_path):
    from pytorch_models.checkpoint import load_checkpoint

    assert load_checkpoint(_saved(tmp_path / "v")).visitors() == {}


def test_a_version_that_kept_its_visitors_in_meta_json_still_reads_them(tmp_path):
    """Versions published before visitors.json carry the map in meta.json."""
    from pytorch_models.checkpoint import VISITORS, load_checkpoint

    folder = _saved(tmp_path / "v", meta={"visitors": {"ab": 1, "cd": 0}})

    assert not (folder / VISITORS).exists()
    assert load_checkpoint(folder).visitors() == {"ab": 1, "cd": 0}
