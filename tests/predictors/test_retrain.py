"""The scheduled retrain's training data: every visitor a user, all of its clicks training."""

import numpy as np

from predictors.retrain import visitors_as_users
from predictors.training import training_dataset
from tests.predictors.tiny_catalogue import TINY_CATALOGUE


def test_visitors_are_users_after_the_rating_users_and_hold_nothing_out():
    clicked = [3, 4, 5, 6, 7]

    interactions, _, visitors = visitors_as_users(TINY_CATALOGUE, [("v:a", m) for m in clicked])

    (row,) = visitors.values()
    assert interactions.user_ids[row] == 31  # the rating users are 1 to 30
    visitor_movies = interactions.item_ids[interactions.train[interactions.train[:, 0] == row, 1]]
    assert sorted(visitor_movies.tolist()) == clicked
    # The held-out ratings are those of the ratings alone: every version is measured on them.
    ratings_alone, _ = training_dataset(TINY_CATALOGUE)
    assert np.array_equal(interactions.test, ratings_alone.test) and len(interactions.test) > 0
