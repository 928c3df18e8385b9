import numpy as np
import pytest
import torch

from pytorch_models.data.interactions import (
    interactions_from_pairs,
    load_gowalla,
    load_movielens,
    load_movielens_features,
    movielens_item_features,
    split_per_user,
    unique_pairs,
)


def test_split_per_user_is_seeded_and_keeps_single_interactions():
    pairs = np.array([[0, i] for i in range(10)] + [[1, 3]] + [[2, 1], [2, 2]], dtype=np.int64)
    train, test = split_per_user(pairs, 3, 0.2, seed=0)
    again_train, again_test = split_per_user(pairs, 3, 0.2, seed=0)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert len(train) + len(test) == len(pairs)
    assert (test[:, 0] == 0).sum() == 2  # 20% of 10
    assert [1, 3] in train.tolist()  # one interaction: stays in train
    assert (train[:, 0] == 2).sum() >= 1


def test_interactions_from_pairs_maps_external_ids():
    data = interactions_from_pairs([7, 9], [100, 200, 300], np.array([[9, 300], [7, 100], [9, 300]]))
    assert data.n_users == 2 and data.n_items == 3
    assert sorted(data.train.tolist()) == [[0, 0], [1, 2]]
    with pytest.raises(ValueError):
        interactions_from_pairs([7], [100], np.array([[7, 999]]))


def test_item_features_shapes_and_ranges():
    features = movielens_item_features(
        ["Heat (1995)", "Alien (1979)", "Untitled"], [["Action", "Crime"], ["Horror"], []], [1995, 1979, None]
    )
    assert features.genres.shape == (3, 3)
    assert features.genres.sum(1).tolist() == [2.0, 1.0, 0.0]
    assert ((features.year >= 0) & (features.year <= 1)).all() and features.year[2] == 0.5
    assert features.year_bucket.tolist()[2] == 0 and features.year_bucket[0] > features.year_bucket[1]
    assert features.title_words.shape[0] == 3 and (features.title_words < features.n_title_buckets).all()


def test_a_tag_is_a_feature_only_on_two_movies_or_more():
    titles, genres, years = ["A (2000)", "B (2001)", "C (2002)"], [[], [], []], [2000, 2001, 2002]
    features = movielens_item_features(titles, genres, years, [["quirky", "mine alone"], ["quirky"], []])

    assert (features.tags != 0).sum(1).tolist() == [1, 1, 0]
    assert features.tags[0, 0] == features.tags[1, 0] and (features.tags < features.n_tag_buckets).all()
    assert movielens_item_features(titles, genres, years).tags is None
    capped = movielens_item_features(titles, genres, years, [[f"t{i}" for i in range(40)]] * 2 + [[]],
                                     max_tags=16)
    assert capped.tags.shape == (3, 16) and (capped.tags[:2] != 0).all()


def test_load_movielens_items_users_and_features(tmp_path):
    """Each format's parsing is tested in test_movielens.py; here what training makes of it."""
    (tmp_path / "movies.csv").write_text(
        'movieId,title,genres\n1,"Heat, The (1995)",Action|Crime\n2,Alien (1979),Horror\n'
        "3,Stranger Things (2016- ),Drama\n"
    )
    (tmp_path / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,1\n1,2,3.0,2\n2,1,5,3\n2,9,5,3\n"
    )
    data = load_movielens(tmp_path, test_fraction=0.0)
    assert data.item_ids.tolist() == [1, 2, 3, 9]  # the unrated movie and the unlisted rated one are items
    assert data.user_ids.tolist() == [1, 2] and len(data.train) == 4 and len(data.test) == 0

    features = load_movielens_features(tmp_path, data.item_ids)
    assert features.genres.shape == (4, 4) and features.genres[0].sum() == 2 and features.genres[3].sum() == 0
    # A series still running is dated by its first year, as the site's import dates it.
    started = movielens_item_features(["Stranger Things"], [[]], [2016])
    assert features.year[2] == started.year[0] and features.year_bucket[2] == started.year_bucket[0]
    assert torch.equal(features.title_words[2], started.title_words[0])


def test_load_gowalla(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1 2\n1 2 3\n")
    (tmp_path / "test.txt").write_text("0 3\n1 4\n")
    data = load_gowalla(tmp_path)
    assert (data.n_users, data.n_items) == (2, 5)
    assert data.train.shape == (5, 2) and data.test.tolist() == [[0, 3], [1, 4]]


def test_unique_pairs_are_numpys_unique_rows_with_their_first_positions():
    rng = np.random.default_rng(3)
    pairs = np.stack([rng.integers(0, 50, 5000), rng.integers(0, 200_000, 5000)], axis=1)
    pairs = np.concatenate([pairs, pairs[:700]])  # duplicates
    rows, first = unique_pairs(pairs, return_index=True)
    expected, expected_first = np.unique(pairs, axis=0, return_index=True)
    assert np.array_equal(rows, expected) and np.array_equal(first, expected_first)
    assert rows.tobytes() == expected.tobytes()  # the digests of the ratings hash these bytes
    assert unique_pairs(np.zeros((0, 2), np.int64)).shape == (0, 2)
