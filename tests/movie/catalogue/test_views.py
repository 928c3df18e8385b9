import json
import xml.etree.ElementTree as ET
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from movie.catalogue.models import Movie, PaperReview
from movie.tracking.models import Interaction

FALLBACK = "You haven't clicked or rated anything yet, so these are the most popular movies."


def test_catalogue_lists_posters_and_sets_csrf_cookie(client, catalogue):
    response = client.get(reverse("catalogue"))
    assert response.status_code == 200
    assert "csrftoken" in response.cookies
    grid = response.content.decode().split("All movies", 1)[1]  # below the home row
    assert grid.count('class="poster"') == 5
    assert 'data-movie-id="40697"' in grid and reverse("poster", args=[40697]) in grid


def test_catalogue_genre_filter_and_search(client, catalogue):
    comedy = client.get(reverse("catalogue"), {"genre": "Comedy"})
    assert [m.id for m in comedy.context["page"].object_list] == [1, 11, 27008]  # most rated first
    search = client.get(reverse("catalogue"), {"q": "dusk"})
    assert [m.id for m in search.context["page"].object_list] == [27008]
    assert "matching “dusk”" in search.content.decode()


@pytest.mark.django_db
def test_catalogue_pagination(client):
    Movie.objects.bulk_create([Movie(id=i, title=f"Movie {i:03d}") for i in range(1, 101)])
    first = client.get(reverse("catalogue"), {"q": "movie"})
    assert len(first.context["page"].object_list) == 48
    assert "?q=movie&amp;page=2" in first.content.decode()
    last = client.get(reverse("catalogue"), {"q": "movie", "page": 3})
    assert [m.id for m in last.context["page"].object_list] == [97, 98, 99, 100]
    assert client.get(reverse("catalogue"), {"page": 4}).status_code == 404
    assert client.get(reverse("catalogue"), {"page": "abc"}).status_code == 400
    assert client.get(reverse("catalogue"), {"page": 0}).status_code == 400


def test_movie_detail(client, catalogue):
    response = client.get(reverse("movie-detail", args=[1]))
    body = response.content.decode()
    assert response.status_code == 200 and "csrftoken" in response.cookies
    assert "Toy Story" in body and "(1995)" in body and "Animation" in body
    assert "https://www.imdb.com/title/tt0114709/" in body and "https://www.themoviedb.org/movie/862" in body
    assert body.count('class="star"') == 10 and 'data-value="0.5"' in body and 'data-value="5.0"' in body
    assert "More like this" in body
    assert client.get(reverse("movie-detail", args=[424242])).status_code == 404


def test_detail_uses_poster_url_when_set(client, catalogue):
    Movie.objects.filter(pk=1).update(poster_url="https://img.example/toy.jpg")
    assert "https://img.example/toy.jpg" in client.get(reverse("movie-detail", args=[1])).content.decode()


def test_poster_svg_is_cacheable_and_escaped(client, catalogue):
    Movie.objects.filter(pk=11).update(title="Tom & Jerry <script>")
    response = client.get(reverse("poster", args=[11]))
    assert response.status_code == 200 and response["Content-Type"].startswith("image/svg+xml")
    assert "max-age=86400" in response["Cache-Control"] and response["ETag"]
    root = ET.fromstring(response.content)
    assert "Tom & Jerry <script>" in " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}tspan"))
    again = client.get(reverse("poster", args=[11]), HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert client.get("/posters/424242.svg").status_code == 404


def test_recommendations_unknown_model_is_404(client, catalogue):
    assert client.get(reverse("recommendations", args=["word2vec"])).status_code == 404


@pytest.mark.parametrize("model", ["pinsage", "ngcf", "lightgcn"])
def test_recommendations_fall_back_to_popular_without_history(client, catalogue, model):
    response = client.get(reverse("recommendations", args=[model]))
    body = response.content.decode()
    assert response.status_code == 200 and FALLBACK in body
    assert [m.id for m, _ in response.context["recs"].items][:2] == [1, 11]
    assert reverse("paper-review", args=[model]) in body and "Model version" in body
    assert "Your history" in body


def test_popular_page_is_not_a_fallback(client, catalogue):
    body = client.get(reverse("recommendations", args=["popular"])).content.decode()
    assert FALLBACK not in body


def test_history_panel_lists_the_visitors_movies(client, catalogue, interaction_add):
    client.get(reverse("history"))  # creates the anonymous session
    visitor = client.session["visitor"]
    interaction_add(visitor, 40697, minute=1)
    interaction_add(visitor, 11, kind="rate", value=4.0, minute=2)
    interaction_add("s:someone-else", 1, minute=3)

    page = client.get(reverse("recommendations", args=["pinsage"]))

    assert [h.movie.id for h in page.context["history"]] == [11, 40697]
    body = page.content.decode()
    assert FALLBACK not in body and "rated 4.0" in body
    assert reverse("history-remove", args=[11]) in body


def test_history_remove_calls_events_and_redirects(client, catalogue, interaction_add, clicklog_table):
    client.get(reverse("history"))
    visitor = client.session["visitor"]
    interaction_add(visitor, 11)

    response = client.post(reverse("history-remove", args=[11]),
                           {"next": reverse("recommendations", args=["ngcf"])})

    assert response.status_code == 302 and response["Location"] == reverse("recommendations", args=["ngcf"])
    assert not Interaction.objects.filter(visitor=visitor).exists()


def test_history_remove_rejects_foreign_redirects_and_get(client, catalogue):
    response = client.post(reverse("history-remove", args=[11]), {"next": "https://evil.example/"})
    assert response.status_code == 302 and response["Location"] == reverse("history")
    for foreign in ("foo", "//evil.example/", "javascript:alert(1)"):
        response = client.post(reverse("history-remove", args=[11]), {"next": foreign})
        assert response.status_code == 302 and response["Location"] == reverse("history"), foreign
    assert client.get(reverse("history-remove", args=[11])).status_code == 405


def test_paper_pages(client, db):
    listing = client.get(reverse("paper-list")).content.decode()
    for slug in ("pinsage", "ngcf", "lightgcn"):
        assert reverse("paper-review", args=[slug]) in listing
    page = client.get(reverse("paper-review", args=["pinsage"]))
    body = page.content.decode()
    assert page.status_code == 200 and page.context["metrics"] is None
    assert "Graph Convolutional Neural Networks for Web-Scale Recommender Systems" in body
    assert "KDD 2018" in body and "Measured on Cinegraph" in body and "Not trained yet" in body
    assert "max-margin" in body and "<h2>The method</h2>" in body
    assert PaperReview.objects.get(slug="ngcf").venue == "SIGIR 2019"
    assert PaperReview.objects.get(slug="lightgcn").venue == "SIGIR 2020"
    assert client.get(reverse("paper-review", args=["nope"])).status_code == 404


def test_paper_page_shows_measured_metrics_beside_popular(client, catalogue, model_dir_of_this_test):
    for model in ("popular", "ngcf"):
        call_command("train", model=model, epochs=1, verbosity=0, stdout=StringIO())
    meta = json.loads(next((model_dir_of_this_test / "ngcf").glob("*/meta.json")).read_text())
    recall = meta["metrics"]["recall@20"]

    body = client.get(reverse("paper-review", args=["ngcf"])).content.decode()

    assert "popular baseline" in body and "Not trained yet" not in body
    assert f"<th scope=\"row\">recall@20</th><td>{recall:.4f}</td>" in body


def test_sasrec_trains_by_time_and_its_pages_say_what_it_reads(client, catalogue, interaction_add,
                                                                model_dir_of_this_test):
    """`manage.py train --model sasrec` reads the ratings' times from the database; its review
    shows its figures as held out by time, with no popular baseline from another split; its
    page reads the visitor's clicks in order."""
    for model in ("popular", "sasrec"):
        call_command("train", model=model, epochs=1, verbosity=0, stdout=StringIO())
    meta = json.loads(next((model_dir_of_this_test / "sasrec").glob("*/meta.json")).read_text())
    assert meta["data"]["split"]["by"] == "time"
    assert PaperReview.objects.get(slug="sasrec").venue == "ICDM 2018"

    review = client.get(reverse("paper-review", args=["sasrec"]))
    body = review.content.decode()
    assert review.context["metrics"].by_time and "the latest 20% of each user's ratings by time" in body
    assert f"<td>{meta['metrics']['recall@20']:.4f}</td><td>–</td>" in body

    client.get(reverse("history"))  # creates the anonymous session
    interaction_add(client.session["visitor"], 11, minute=1)
    page = client.get(reverse("recommendations", args=["sasrec"]))
    assert page.context["recs"].source == "sequence"
    assert "in the order you clicked them" in page.content.decode()
    assert 11 not in [m.id for m, _ in page.context["recs"].items]


def test_static_assets_are_local(client, db):
    body = client.get(reverse("paper-list")).content.decode()
    assert "/static/movie/app.css" in body and "/static/movie/app.js" in body
    assert "cdn" not in body.lower()
