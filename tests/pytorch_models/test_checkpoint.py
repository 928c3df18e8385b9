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
    from pytorch_models.data import ItemFeatures

    tables = {k: v for k, v in community_features.tensors().items() if k != "tags"}
    meta = {k: v for k, v in community_features.meta().items() if k != "n_tag_buckets"}

    old = ItemFeatures.from_tensors(tables, meta)

    assert old.tags is None and old.n_tag_buckets == 0 and "tags" not in old.tensors()
