"""The scheduled retrain's training data: every visitor a user, all of its clicks training."""

import numpy as np

from predictors.retrain import visitors_as_users
from predictors.training import training_dataset


def test_visitors_are_users_after_the_rating_users_and_hold_nothing_out(training_data):
    clicked = [3, 4, 5, 6, 7]

    interactions, _, visitors = visitors_as_users(training_data, [("v:a", m) for m in clicked])

    (row,) = visitors.values()
    assert interactions.user_ids[row] == 11  # the rating users are 1 to 10
    visitor_movies = interactions.item_ids[interactions.train[interactions.train[:, 0] == row, 1]]
    assert sorted(visitor_movies.tolist()) == clicked
    # The held-out ratings are those of the ratings alone: every version is measured on them.
    ratings_alone, _ = training_dataset(training_data)
    assert np.array_equal(interactions.test, ratings_alone.test) and len(interactions.test) > 0
