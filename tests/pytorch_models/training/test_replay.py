"""A retrain's batch pairs: the new ones found across two versions' row numbers, and a replay
sample of the old ones that is bounded, seeded and keeps every new pair."""

import numpy as np
import pytest

from pytorch_models.training.replay import new_pair_mask, replay_rows, replay_size


def test_new_pairs_are_found_by_user_key_and_movie_id_whatever_the_rows():
    # The old version: users "a", "b"; movies 10, 20. The new one adds user "c" before them and
    # movie 5 first, so every row number moved.
    old_train = np.array([[0, 0], [0, 1], [1, 1]])  # a-10, a-20, b-20
    train = np.array([[1, 1], [1, 2], [2, 2], [0, 0], [2, 0]])  # a-10, a-20, b-20, c-5, b-5

    is_new = new_pair_mask(train, user_keys=["c", "a", "b"], item_ids=np.array([5, 10, 20]),
                           old_train=old_train, old_user_keys=["a", "b"], old_item_ids=np.array([10, 20]))

    assert is_new.tolist() == [False, False, False, True, True]


def test_a_user_or_movie_gone_since_leaves_its_old_pairs_out():
    is_new = new_pair_mask(np.array([[0, 0]]), user_keys=["a"], item_ids=np.array([10]),
                           old_train=np.array([[0, 0], [1, 1]]), old_user_keys=["a", "gone"],
                           old_item_ids=np.array([10, 99]))
    assert is_new.tolist() == [False]


def test_the_replay_sample_is_bounded_seeded_and_keeps_every_new_pair():
    is_new = np.zeros(10_000, dtype=bool)
    is_new[[3, 500, 9_999]] = True

    rows = replay_rows(is_new, fraction=0.25, max_pairs=100, seed=7)

    assert set(np.flatnonzero(is_new)) <= set(rows.tolist())
    assert len(rows) == 3 + 100 and len(set(rows.tolist())) == len(rows)  # the ceiling, no repeats
    assert np.array_equal(rows, replay_rows(is_new, fraction=0.25, max_pairs=100, seed=7))
    assert not np.array_equal(rows, replay_rows(is_new, fraction=0.25, max_pairs=100, seed=8))
    assert len(replay_rows(is_new, fraction=0.001, max_pairs=100, seed=7)) == 3 + 10  # ceil(0.001 x 9,997)


def test_replay_sizes():
    assert replay_size(80_000, fraction=0.25, max_pairs=100_000) == 20_000
    assert replay_size(20_000_000, fraction=0.25, max_pairs=100_000) == 100_000
    assert replay_size(0, fraction=0.25, max_pairs=100_000) == 0
    for fraction, ceiling in [(0, 10), (1.5, 10), (0.5, 0)]:
        with pytest.raises(ValueError):
            replay_size(10, fraction=fraction, max_pairs=ceiling)
