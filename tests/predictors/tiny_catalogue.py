"""A catalogue small enough to train on in a test, whose popular list can be worked out by hand."""

from predictors.training import TrainingData

MOVIES = list(range(1, 61))
# Users 1-10 rate a band each (user u: movies u to u + 9, so movie 10 has the most raters, 10);
# users 11-30 all rate movies 41-60. The popular model's top 20 for anyone is then movies 41-60
# (about 16 train ratings each against at most 10): it finds all 4 held-out movies of each of
# the 20 users of 41-60 and none of the 2 of each band user, a recall@20 of 20/30.
RATINGS = [(user, movie) for user in range(1, 11) for movie in range(user, user + 10)] + [
    (user, movie) for user in range(11, 31) for movie in range(41, 61)]
POPULAR_RECALL = 20 / 30

TINY_CATALOGUE = TrainingData(movie_ids=MOVIES, titles=[f"movie {m}" for m in MOVIES],
                              genres=[["Drama"] if m % 2 else ["Comedy"] for m in MOVIES],
                              years=[1960 + m for m in MOVIES], pairs=RATINGS)
