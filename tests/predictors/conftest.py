import pytest

from predictors.training import TrainingData

MOVIES = list(range(1, 41))
# Ten MovieLens users, user u rating movies u to u + 9: neighbours share most of their movies,
# and 40 movies are more than the 20 that recall@20 looks at.
RATINGS = [(user, movie) for user in range(1, 11) for movie in range(user, user + 10)]


@pytest.fixture
def training_data() -> TrainingData:
    return TrainingData(movie_ids=MOVIES, titles=[f"movie {m}" for m in MOVIES],
                        genres=[["Drama"] if m % 2 else ["Comedy"] for m in MOVIES],
                        years=[1990 + m for m in MOVIES], pairs=RATINGS)
