import numpy as np
import pytest

from pytorch_models.data import (
    interactions_from_pairs,
    load_gowalla,
    load_movielens,
    load_movielens_features,
    movie_tags,
    movielens_item_features,
    read_movielens_tags,
    split_per_user,
    tag_normalise,
    title_year,
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
    assert title_year("Heat (1995)") == 1995 and title_year("Untitled") is None


def test_tags_are_normalised_and_counted_by_distinct_users(tmp_path):
    (tmp_path / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n1,10,Dark  Comedy ,1\n2,10,dark comedy,2\n2,10,DARK COMEDY,3\n"
        "2,10,quirky,4\n3,20,,5\n3,20,Quirky,6\n"
    )
    rows = read_movielens_tags(tmp_path)

    assert rows[0] == (1, 10, "dark comedy") and len(rows) == 5  # the blank tag is dropped
    assert movie_tags(rows) == {10: [("dark comedy", 2), ("quirky", 1)], 20: [("quirky", 1)]}
    assert tag_normalise("  Based on  a BOOK ") == "based on a book"
    assert read_movielens_tags(tmp_path / "missing") == []


def test_a_tag_is_a_feature_only_on_two_movies_or_more():
    titles, genres, years = ["A (2000)", "B (2001)", "C (2002)"], [[], [], []], [2000, 2001, 2002]
    features = movielens_item_features(titles, genres, years, [["quirky", "mine alone"], ["quirky"], []])

    assert (features.tags != 0).sum(1).tolist() == [1, 1, 0]
    assert features.tags[0, 0] == features.tags[1, 0] and (features.tags < features.n_tag_buckets).all()
    assert movielens_item_features(titles, genres, years).tags is None
    capped = movielens_item_features(titles, genres, years, [[f"t{i}" for i in range(40)]] * 2 + [[]], max_tags=16)
    assert capped.tags.shape == (3, 16) and (capped.tags[:2] != 0).all()


def _write(path, text):
    path.write_text(text, encoding="latin-1")


@pytest.mark.parametrize("layout", ["latest", "1m", "100k"])
def test_load_movielens_formats(tmp_path, layout):
    if layout == "latest":
        _write(tmp_path / "movies.csv", 'movieId,title,genres\r\n1,"Heat, The (1995)",Action|Crime\r\n'
               "2,Alien (1979),Horror\r\n3,Unrated (2001),Drama\r\n")
        _write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\r\n1,1,4.0,1\r\n1,2,3.0,2\r\n2,1,5,3\r\n")
    elif layout == "1m":
        _write(tmp_path / "movies.dat", "1::Heat (1995)::Action|Crime\n2::Alien (1979)::Horror\n3::Unrated (2001)::Drama\n")
        _write(tmp_path / "ratings.dat", "1::1::4::1\n1::2::3::2\n2::1::5::3\n")
    else:
        _write(tmp_path / "u.genre", "unknown|0\nAction|1\nCrime|2\nHorror|3\nDrama|4\n")
        _write(tmp_path / "u.item", "1|Heat (1995)|01-Jan-1995||url|0|1|1|0|0\n2|Alien (1979)|01-Jan-1979||url|0|0|0|1|0\n"
               "3|Unrated (2001)|01-Jan-2001||url|0|0|0|0|1\n")
        _write(tmp_path / "u.data", "1\t1\t4\t1\n1\t2\t3\t2\n2\t1\t5\t3\n")
    data = load_movielens(tmp_path, test_fraction=0.0)
    assert data.n_items == 3 and data.n_users == 2  # the unrated movie is an item
    assert data.item_ids.tolist() == [1, 2, 3]
    assert len(data.train) == 3 and len(data.test) == 0
    features = load_movielens_features(tmp_path, data.item_ids)
    assert features.genres.shape == (3, 4)
    assert features.genres[0].sum() == 2


def test_load_gowalla(tmp_path):
    (tmp_path / "train.txt").write_text("0 0 1 2\n1 2 3\n")
    (tmp_path / "test.txt").write_text("0 3\n1 4\n")
    data = load_gowalla(tmp_path)
    assert (data.n_users, data.n_items) == (2, 5)
    assert data.train.shape == (5, 2) and data.test.tolist() == [[0, 3], [1, 4]]
