import numpy as np
import pytest
import torch
from django.core.paginator import EmptyPage

from movie import selectors
from movie.models import Movie


def test_training_snapshot(catalogue):
    snap = selectors.training_snapshot()
    assert snap.movie_ids == [1, 11, 27008, 40697, 171749]
    assert snap.titles[0] == "Toy Story" and snap.years[3] is None
    assert snap.genres[0] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert snap.genres[4] == []
    assert snap.pairs == [(1, 1), (1, 11), (1, 40697), (2, 1), (2, 27008), (3, 1), (3, 171749)]
    assert snap.tags == [["pixar"], ["pixar", "politics"], ["vampires"], ["space opera"], []]


def test_training_snapshot_features_match_the_release_files(catalogue):
    """The site's tag feature (tags from the database) is the one the CLI builds from tags.csv."""
    from predictors.training import training_dataset
    from pytorch_models.data.interactions import load_movielens_features

    from .conftest import FIXTURES

    snap = selectors.training_snapshot()
    _, from_database = training_dataset(snap)
    from_files = load_movielens_features(FIXTURES / "ml-latest-tiny", np.asarray(snap.movie_ids))
    assert (from_database.tags != 0).sum(1).tolist() == [1, 1, 0, 0, 0]  # "pixar", on two movies
    assert torch.equal(from_database.tags, from_files.tags)
    assert torch.equal(from_database.title_words, from_files.title_words)


def test_movies_by_ids_keeps_order_and_drops_unknown(catalogue):
    assert [m.id for m in selectors.movies_by_ids([40697, 123456, 1, 11])] == [40697, 1, 11]


def test_visitor_history_is_newest_first_one_row_per_movie(catalogue, interaction_add):
    interaction_add("s:abc", 1, minute=1)
    interaction_add("s:abc", 11, minute=2)
    interaction_add("s:abc", 1, kind="rate", value=4.5, minute=3)
    interaction_add("u:9", 40697, minute=4)

    history = selectors.visitor_history("s:abc")

    assert [(h.movie.id, h.kind, h.value) for h in history] == [(1, "rate", 4.5), (11, "click", None)]
    assert selectors.visitor_history("s:nobody") == []


def test_histories_are_read_up_to_the_cap_newest_first(catalogue, interaction_add, settings):
    """Never more than VISITOR_HISTORY_MAX movies, counted once each however many rows they
    have, in one statement that sends no more than that (its LIMIT)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.VISITOR_HISTORY_MAX = 3
    for minute, movie_id in enumerate([1, 11, 27008, 11, 40697, 171749, 40697]):
        interaction_add("s:long", movie_id, minute=minute)

    with CaptureQueriesContext(connection) as queries:
        read = selectors.visitor_history_read("s:long")
    assert read.movie_ids == [40697, 171749, 11] and read.capped and read.cap == 3
    assert [entry.movie_id for entry in read.entries] == [40697, 171749, 11]
    (statement,) = [q["sql"] for q in queries if "interaction" in q["sql"]]
    assert statement.rstrip().endswith("LIMIT 4")  # the cap and one more, to tell a longer history
    assert selectors.visitor_movie_ids("s:long") == [40697, 171749, 11]
    assert [h.movie_id for h in selectors.visitor_history("s:long", limit=50)] == [40697, 171749, 11]
    assert [h.movie_id for h in selectors.visitor_history("s:long", limit=2)] == [40697, 171749]

    settings.VISITOR_HISTORY_MAX = 5  # exactly the visitor's 5 movies: nothing fell out
    read = selectors.visitor_history_read("s:long")
    assert read.movie_ids == [40697, 171749, 11, 27008, 1] and not read.capped and read.cap is None


@pytest.mark.parametrize("page", ["recommendations", "history"])
def test_a_history_past_the_cap_is_said_and_its_newest_movies_excluded(client, catalogue, interaction_add,
                                                                       settings, page):
    from django.urls import reverse

    url = reverse("recommendations", args=["popular"]) if page == "recommendations" else reverse("history")
    settings.VISITOR_HISTORY_MAX = 2
    client.get(reverse("history"))  # creates the anonymous session
    visitor = client.session["visitor"]
    interaction_add(visitor, 1, minute=0)
    interaction_add(visitor, 11, minute=1)
    assert "no longer shape" not in client.get(url).content.decode()  # 2 movies: all of them count

    interaction_add(visitor, 27008, minute=2)
    response = client.get(url)
    assert "Your recommendations follow your latest 2 movies: your oldest clicks no longer shape them." in (
        response.content.decode())
    assert [entry.movie_id for entry in response.context["history"]] == [27008, 11]
    if page == "recommendations":
        shown = {movie.id for movie, _ in response.context["recs"].items}
        assert shown and not shown & {27008, 11}  # the movies that count are never recommended


def test_catalogue_page_filters_and_searches(catalogue):
    assert ([m.id for m in selectors.catalogue_page(genre="Comedy", sort="title").object_list]
            == [11, 27008, 1])
    assert [m.id for m in selectors.catalogue_page(query="BABYLON").object_list] == [40697]
    assert [m.id for m in selectors.catalogue_page(genre="Sci-Fi", query="toy").object_list] == []
    assert selectors.catalogue_page(genre="No Such Genre").paginator.count == 0


@pytest.mark.django_db
def test_catalogue_page_paginates_by_48():
    Movie.objects.bulk_create([Movie(id=i, title=f"Movie {i:03d}") for i in range(1, 101)])
    pages = [selectors.catalogue_page(page=n) for n in (1, 2, 3)]
    assert [len(p.object_list) for p in pages] == [48, 48, 4]
    assert pages[1].object_list[0].title == "Movie 049"
    with pytest.raises(EmptyPage):
        selectors.catalogue_page(page=4)


def test_popular_movies_counts_dataset_ratings(catalogue):
    top = selectors.popular_movies(k=2)
    assert [(m.id, score) for m, score in top] == [(1, 3.0), (11, 1.0)]
