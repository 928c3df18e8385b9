""""Because you watched …" on the recommendations page and in the JSON API, with the session's
briefly trained models: every named movie is in the visitor's history, and taking a movie out
of the history takes it out of the explanations."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from movie.catalogue.models import Movie
from movie.catalogue.recommendations import recommendations_for
from pytorch_models.data.movielens import movies_read, release_detect
from tests.conftest import MOVIELENS

HISTORY = [1, 260, 1196, 2571]  # Toy Story, Star Wars IV and V, The Matrix
REMOVED = 260


@pytest.fixture(autouse=True)
def model_dir_of_this_test(trained_models):
    """Overrides tests/movie's empty model folder: these pages need the trained models."""
    return trained_models


@pytest.fixture
def movies(db):
    """Every movie the models know, as rows (ratings are not needed to serve)."""
    Movie.objects.bulk_create(
        [Movie(id=m.movie_id, title=m.title, year=m.year) for m in movies_read(release_detect(MOVIELENS))],
        batch_size=2000,
    )


@pytest.fixture
def visitor(client, movies, interaction_add) -> str:
    client.get(reverse("history"))  # creates the anonymous session
    visitor = client.session["visitor"]
    for minute, movie_id in enumerate(HISTORY):
        interaction_add(visitor, movie_id, minute=minute)
    return visitor


@pytest.mark.parametrize("model", ["pinsage", "ngcf", "lightgcn", "graphfilter"])
def test_every_recommendation_names_movies_from_the_history(visitor, model):
    recs = recommendations_for(visitor=visitor, model=model, k=20)

    assert len(recs.items) == 20 and not recs.fallback
    for explaining in recs.because_per_item:
        assert 1 <= len(explaining) <= 2 and {m.id for m in explaining} <= set(HISTORY)


def test_the_page_shows_a_because_line_under_each_poster(client, visitor):
    body = client.get(reverse("recommendations", args=["ngcf"])).content.decode()

    grid = re.search(r'<ul class="poster-grid" id="recommendations".*?</ul>', body, re.S).group(0)
    items = re.findall(r"<li>.*?</li>", grid, re.S)
    assert len(items) == 20
    for item in items:
        line = re.search(r'<p class="because[^"]*">Because you watched (.*?)</p>', item, re.S)
        assert line, item
        linked = {int(m) for m in re.findall(r'href="/movies/(\d+)/"', line.group(1))}
        assert 1 <= len(linked) <= 2 and linked <= set(HISTORY)


def test_removing_a_movie_from_the_history_removes_it_from_the_explanations(client, visitor, clicklog_table):
    before = recommendations_for(visitor=visitor, model="lightgcn", k=20)
    assert any(REMOVED in {m.id for m in explaining} for explaining in before.because_per_item)

    page = client.post(
        reverse("history-remove", args=[REMOVED]), {"next": reverse("recommendations", args=["lightgcn"])},
        follow=True,
    )

    named = {m.id for explaining in page.context["recs"].because_per_item for m in explaining}
    assert named and REMOVED not in named and named <= set(HISTORY) - {REMOVED}


def test_the_api_carries_because_per_item(client, visitor):
    items = client.get(reverse("api-recommendations", args=["pinsage"])).json()["items"]

    assert len(items) == 20
    assert all(1 <= len(item["because"]) <= 2 and set(item["because"]) <= set(HISTORY) for item in items)


def test_popular_items_carry_an_empty_because(client, visitor):
    items = client.get(reverse("api-recommendations", args=["popular"])).json()["items"]
    assert items and all(item["because"] == [] for item in items)


def test_a_new_visitor_sees_popular_posters_without_a_because_line(client, movies):
    page = client.get(reverse("recommendations", args=["pinsage"]))

    assert page.context["recs"].fallback and len(page.context["recs"].items) == 20
    assert "Because you watched" not in page.content.decode()


def test_the_graph_filter_page_reflects_a_click_at_once_in_closed_form(client, visitor, interaction_add):
    """No worker and no cache: the filter scores the whole history on request, so the next page
    already holds the new click (its neighbours move, the clicked movie leaves the list)."""
    page = client.get(reverse("recommendations", args=["graphfilter"]))
    before = [m.id for m, _ in page.context["recs"].items]
    body = page.content.decode()
    assert page.context["recs"].source == "closed_form" and len(before) == 20
    assert "nothing to fine-tune" in body and 'aria-current="page">Graph filter<' in body
    assert not set(before) & set(HISTORY)

    interaction_add(visitor, before[0], minute=len(HISTORY))
    page = client.get(reverse("recommendations", args=["graphfilter"]))
    after = [m.id for m, _ in page.context["recs"].items]

    assert before[0] not in after and after[:19] != before[1:]  # scores moved: not the old list shifted up
    assert client.get(reverse("paper-review", args=["bspm"])).status_code == 200
