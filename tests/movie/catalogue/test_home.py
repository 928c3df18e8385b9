"""The home page: the catalogue opens on the most popular movies, with other orders to pick,
and above it a row: "Popular now" for a new visitor; "Recommended for you" from the visitor's
A/B arm once it has a history, with because-lines and the list's impression token, so a click
on it is credited to that arm."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from movie.catalogue.models import Movie
from movie.experiments.models import Experiment
from movie.experiments.selectors import arm_ctr
from movie.tracking.impression_tokens import impression_token_read
from pytorch_models.data.movielens import movies_read, release_detect
from tests.conftest import MOVIELENS

# ml-latest-tiny: movie 1 has 3 ratings (4.0, 2.5, 0.5), the other four one each (3.5, 1.0,
# 5.0, 4.5); the catalogue's mean is 21 / 7 = 3.0.
SORTED = {
    "popular": [1, 11, 27008, 40697, 171749],  # 3 ratings, then ties by id
    "rated": [40697, 171749, 11, 1, 27008],  # (10 * 3.0 + sum) / (10 + n)
    "newest": [171749, 27008, 1, 11, 40697],  # 2006, 1999, 1995, 1995, no year
    "title": [11, 40697, 171749, 27008, 1],
}
HISTORY = [1, 260, 1196, 2571]
ROW = re.compile(r'<ul class="poster-grid" id="home-row" data-model="(\w+)" data-impression="([^"]+)" '
                 r'data-impression-token="([^"]+)">(.*?)</ul>', re.S)


def _order(response) -> list[int]:
    return [m.id for m in response.context["page"].object_list]


@pytest.mark.parametrize("sort", SORTED)
def test_each_sort_orders_the_catalogue(client, catalogue, sort):
    assert _order(client.get(reverse("catalogue"), {"sort": sort})) == SORTED[sort]


def test_the_catalogue_opens_on_the_most_popular(client, catalogue):
    response = client.get(reverse("catalogue"))
    assert _order(response) == SORTED["popular"]
    assert '<option value="popular" selected>' in response.content.decode()


def test_an_unknown_sort_is_a_400_with_the_reason(client, catalogue):
    response = client.get(reverse("catalogue"), {"sort": "random"})
    assert response.status_code == 400 and "sort" in response.content.decode()


def test_the_rating_score_is_the_mean_pulled_towards_the_catalogue_mean(catalogue):
    movie = Movie.objects.get(pk=1)
    assert movie.ratings_count == 3
    assert movie.rating_score == pytest.approx((10 * 3.0 + 7.0) / 13)
    assert Movie.objects.get(pk=40697).rating_score == pytest.approx((10 * 3.0 + 5.0) / 11)


def test_the_genre_menu_keeps_the_chosen_genre_and_escapes_what_it_is_given(client, catalogue):
    body = client.get(reverse("catalogue"), {"genre": "Comedy"}).content.decode()
    assert '<option value="Comedy" selected>Comedy</option>' in body
    assert body.count(" selected>") == 2  # the genre and the default sort

    hostile = client.get(reverse("catalogue"), {"genre": '"><script>x</script>'}).content.decode()
    assert ("<script>x</script>" not in hostile
            and " selected>" not in hostile.split('name="genre"')[1].split("</select>")[0])


def test_a_search_or_a_later_page_has_no_home_row(client, catalogue):
    assert "home-row" not in client.get(reverse("catalogue"), {"q": "toy"}).content.decode()


# --- the row, with the session's trained models ------------------------------------------


@pytest.fixture
def with_models(db, trained_models, model_dir, settings):
    """The session's trained models (tests/movie points MODEL_DIR at an empty folder), and
    every movie they know, as rows."""
    settings.MODEL_DIR = model_dir
    Movie.objects.bulk_create(
        [Movie(id=m.movie_id, title=m.title, year=m.year) for m in movies_read(release_detect(MOVIELENS))],
        batch_size=2000,
    )


def _row(client) -> tuple[str, str, str, list[str]]:
    model, impression, token, items = ROW.search(client.get(reverse("catalogue")).content.decode()).groups()
    return model, impression, token, re.findall(r"<li>.*?</li>", items, re.S)


def test_a_first_page_view_creates_no_visitor_and_logs_no_list(client, with_models):
    response = client.get(reverse("catalogue"))
    body = response.content.decode()
    assert "Popular now" in body and 'id="home-row"' in body and "data-impression" not in body
    assert "sessionid" not in response.cookies


def test_a_new_visitor_sees_popular_now_and_an_invitation(client, with_models):
    client.get(reverse("history"))  # a visitor id, no history
    body = client.get(reverse("catalogue")).content.decode()
    assert "Popular now" in body and "Click a few posters" in body and "Recommended for you" not in body

    model, impression, token, items = _row(client)
    shown = impression_token_read(token, visitor=client.session["visitor"])
    assert model == "popular" and shown.page == "popular" and shown.impression_id == impression
    assert len(items) == 8 and not any("Because you watched" in item for item in items)
    assert shown.movie_ids == [int(m) for m in re.findall(r'data-movie-id="(\d+)"', "".join(items))]


@pytest.fixture
def ngcf_arm(db):
    return Experiment.objects.create(name="home-row", arms=[{"model": "ngcf", "weight": 1}],
                                     started_at=timezone.now())


def test_a_visitor_with_history_sees_its_arms_list_with_reasons(client, with_models, interaction_add,
                                                                ngcf_arm):
    client.get(reverse("history"))
    for minute, movie_id in enumerate(HISTORY):
        interaction_add(client.session["visitor"], movie_id, minute=minute)

    model, _, token, items = _row(client)
    shown = impression_token_read(token, visitor=client.session["visitor"])
    assert model == "ngcf" and shown.model == "ngcf" and shown.page == "home"
    assert len(items) == 8 and not set(shown.movie_ids) & set(HISTORY)
    for item in items:
        named = [int(m) for m in re.findall(r'Because you watched.*?</p>', item, re.S)
                 for m in re.findall(r'href="/movies/(\d+)/"', m)]
        assert 1 <= len(named) <= 2 and set(named) <= set(HISTORY)


def test_a_click_on_the_home_row_counts_for_its_arm(client, with_models, interaction_add, ngcf_arm,
                                                     clicklog_table, impressions_table):
    client.get(reverse("history"))
    for minute, movie_id in enumerate(HISTORY):
        interaction_add(client.session["visitor"], movie_id, minute=minute)
    _, impression, token, _ = _row(client)
    shown = impression_token_read(token, visitor=client.session["visitor"])
    assert [(a.impressions, a.clicks) for a in arm_ctr(ngcf_arm)] == [(0, 0)]

    posted = client.post("/api/impressions", json.dumps({"token": token}), content_type="application/json",
                         HTTP_IDEMPOTENCY_KEY=impression)
    clicked = client.post("/api/events", json.dumps({"movie_id": shown.movie_ids[2], "kind": "click",
                                                     "impression": impression, "position": 3}),
                          content_type="application/json")

    assert posted.status_code == 202 and clicked.status_code == 202
    [ngcf] = arm_ctr(ngcf_arm)
    assert (ngcf.model, ngcf.impressions, ngcf.clicks, ngcf.ctr) == ("ngcf", 1, 1, 1.0)
