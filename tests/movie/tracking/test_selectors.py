"""A visitor's history as the pages, the live sweep and the models read it."""

import pytest

from movie.tracking import selectors


def test_visitor_history_is_newest_first_one_row_per_movie(catalogue, interaction_add):
    interaction_add("s:abc", 1, minute=1)
    interaction_add("s:abc", 11, minute=2)
    interaction_add("s:abc", 1, kind="rate", value=4.5, minute=3)
    interaction_add("u:9", 40697, minute=4)

    history = selectors.visitor_history("s:abc")

    assert [(h.movie.id, h.kind, h.value) for h in history] == [(1, "rate", 4.5), (11, "click", None)]
    assert selectors.visitor_history("s:nobody") == []


def test_a_movies_latest_row_says_whether_it_was_dismissed(catalogue, interaction_add):
    """"Not interested" takes a movie out of the history and into the dismissed; a later click
    brings it back. The panel lists both, and a retrain never takes a dismissed movie as a
    positive."""
    interaction_add("s:no", 1, minute=1)
    interaction_add("s:no", 11, kind="dismiss", minute=2)
    interaction_add("s:no", 1, kind="dismiss", minute=3)  # clicked, then dismissed
    interaction_add("s:no", 27008, kind="dismiss", minute=4)
    interaction_add("s:no", 27008, minute=5)  # dismissed, then clicked

    read = selectors.visitor_history_read("s:no")
    assert read.movie_ids == [27008] and read.dismissed == [1, 11]
    assert [(e.movie_id, e.dismissed) for e in read.entries] == [(27008, False), (1, True), (11, True)]
    assert selectors.visitor_movies("s:no") == ([27008], [1, 11])
    assert selectors.visitor_latest_movie_ids("s:no") == [27008, 1, 11]  # the rows the mirror keeps
    assert [pair for pair in selectors.visitor_interactions() if pair[0] == "s:no"] == [("s:no", 27008)]


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
    assert selectors.visitor_movies("s:long") == ([40697, 171749, 11], [])
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
