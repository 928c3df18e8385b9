"""The staff dashboard against real trained versions, the real click and impression paths
(DynamoDB, Kafka, the database) and the real Redis: who may see it, what each panel shows,
and that its charts are PNGs."""

from __future__ import annotations

import io
import json
import re
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from PIL import Image

from livepath import latency
from livepath.store import client
from movie.catalogue.models import Movie
from movie.experiments import dashboard
from movie.experiments.models import Experiment
from movie.experiments.selectors import visitor_arm
from movie.tracking.impression_tokens import impression_token
from predictors import registry

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MODELS = ("pinsage", "ngcf", "lightgcn", "sasrec", "popular")
OLD_VERSION = "20200101T000000000000Z"  # published before meta.json kept a training history


@pytest.fixture
def staff(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_user(username="ops", password="x" * 12,
                                                             is_staff=True))
    return client


@pytest.fixture
def member(django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_user(username="reader", password="x" * 12))
    return client


@pytest.fixture
def trained(catalogue, model_dir_of_this_test) -> dict[str, str]:
    """Every model trained by `manage.py train` on the tiny catalogue, plus, for LightGCN, an
    older version as meta.json looked before it kept a history."""
    for model in MODELS:
        call_command("train", model=model, epochs=2, verbosity=0, stdout=StringIO())
    live = {model: registry.latest_version(model) for model in MODELS}
    old = model_dir_of_this_test / "lightgcn" / OLD_VERSION
    old.mkdir()
    meta = json.loads((model_dir_of_this_test / "lightgcn" / live["lightgcn"] / "meta.json").read_text())
    del meta["history"]
    (old / "meta.json").write_text(json.dumps(meta))
    return live


def _chart_urls(model: str = "lightgcn", version: str = OLD_VERSION) -> list[str]:
    return ["/dashboard/charts/ctr.png", "/dashboard/charts/latency.png",
            f"/dashboard/charts/{model}/{version}/curves.png",
            f"/dashboard/charts/{model}/{version}/metrics.png"]


def _section(html: str, section_id: str) -> str:
    match = re.search(rf'<section class="panel" id="{section_id}">(.*?)</section>', html, re.S)
    assert match, f"no section #{section_id}"
    return match.group(1)


def _png_size(response) -> tuple[int, int]:
    body = response.content
    assert response["Content-Type"] == "image/png" and body.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(body))
    image.load()  # decodes every pixel, not just the header
    return image.size


def test_anonymous_visitors_are_sent_to_log_in():
    for url in ["/dashboard/", *_chart_urls()]:
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={url}"


def test_signed_in_non_staff_get_403_and_no_link(member):
    for url in ["/dashboard/", *_chart_urls()]:
        assert member.get(url).status_code == 403
    assert 'href="/dashboard/"' not in member.get("/history/").content.decode()


def test_staff_see_every_models_live_version_history_and_metrics(staff, trained, model_dir_of_this_test):
    response = staff.get("/dashboard/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'href="/dashboard/"' in html  # the header's link, for staff only
    for model, version in trained.items():
        panel = _section(html, f"model-{model}")
        assert re.search(rf'class="live-version">{version}<', panel)
        metrics = json.loads((model_dir_of_this_test / model / version / "meta.json").read_text())["metrics"]
        row = re.search(r'<tr class="live">(.*?)</tr>', panel, re.S).group(1)
        for name in ("recall@20", "ndcg@20", "hit@20"):
            assert f"<td>{metrics[name]:.4f}</td>" in row
        assert f"/dashboard/charts/{model}/{version}/metrics.png" in panel
    lightgcn = _section(html, "model-lightgcn")
    assert lightgcn.index(trained["lightgcn"]) < lightgcn.index(OLD_VERSION)  # newest first
    old_row = re.search(rf"<tr>\s*<th scope=\"row\">{OLD_VERSION}(.*?)</tr>", lightgcn, re.S).group(1)
    assert "no curve recorded" in old_row and "2020-01-01 00:00" in old_row
    assert f"/dashboard/charts/lightgcn/{trained['lightgcn']}/curves.png" in lightgcn


def test_training_records_a_curve_the_chart_draws(staff, trained, model_dir_of_this_test):
    version = trained["ngcf"]
    history = json.loads((model_dir_of_this_test / "ngcf" / version / "meta.json").read_text())["history"]
    assert [entry["epoch"] for entry in history] == [1, 2]
    assert all(0 <= entry["recall@20"] <= 1 and entry["seconds"] > 0 for entry in history)

    response = staff.get(f"/dashboard/charts/ngcf/{version}/curves.png")

    assert response.status_code == 200 and _png_size(response) == (1280, 300)
    assert "immutable" in response["Cache-Control"]


def test_version_charts_are_drawn_once_per_version(staff, trained):
    dashboard._version_chart.cache_clear()
    first = staff.get(f"/dashboard/charts/lightgcn/{trained['lightgcn']}/metrics.png")
    again = staff.get(f"/dashboard/charts/lightgcn/{trained['lightgcn']}/metrics.png")
    old = staff.get(f"/dashboard/charts/lightgcn/{OLD_VERSION}/metrics.png")

    assert _png_size(first) == _png_size(old) == (640, 300)
    assert again.content == first.content and old.content != first.content  # two versions vs one
    assert dashboard._version_chart.cache_info().hits == 1


def test_unknown_versions_and_models_are_404(staff, trained):
    for url in ("/dashboard/charts/lightgcn/20990101T000000000000Z/curves.png",
                f"/dashboard/charts/nope/{trained['lightgcn']}/curves.png",
                f"/dashboard/charts/lightgcn/{trained['lightgcn']}/other.png"):
        assert staff.get(url).status_code == 404


def test_an_untrained_site_says_so(staff):
    html = staff.get("/dashboard/").content.decode()

    for model in MODELS:
        assert "Not trained yet" in _section(html, f"model-{model}")
    assert "none has run yet" in _section(html, "ctr")


# --- CTR: impressions and clicks through the real endpoints ----------------------------


@pytest.fixture
def movies(db):
    return [Movie.objects.create(id=i, title=f"Movie {i}", year=2000 + i) for i in range(1, 7)]


@pytest.fixture
def visitor(clicklog_table, impressions_table) -> Client:
    client = Client()
    client.get("/history/")  # a visitor id and a CSRF cookie, as a browser would have
    return client


def _arm_row(staff: Client, model: str) -> tuple[int, int, str]:
    """(impressions, clicked lists, CTR as shown) of `model`'s row in the CTR panel."""
    panel = _section(staff.get("/dashboard/").content.decode(), "ctr")
    row = re.search(rf'<tr class="arm" data-model="{model}">(.*?)</tr>', panel, re.S).group(1)
    cells = dict(re.findall(r'<td class="(\w+)">([^<]*)</td>', row))
    return int(cells["impressions"]), int(cells["clicks"]), cells["ctr"]


def test_ctr_panel_follows_an_impression_and_an_attributed_click(staff, movies, visitor):
    Experiment.objects.create(name="home-row",
                              arms=[{"model": "lightgcn", "weight": 1}, {"model": "ngcf", "weight": 1}],
                              started_at=timezone.now() - timedelta(hours=1))
    visitor_id = visitor.session["visitor"]
    arm = visitor_arm(visitor_id)
    other = ({"lightgcn", "ngcf"} - {arm}).pop()
    impression_id, token = impression_token(visitor=visitor_id, model=arm, model_version="20240101T000000Z",
                                            page="home", movie_ids=[3, 1, 4])
    assert ("Experiment <strong>home-row</strong>, running"
            in _section(staff.get("/dashboard/").content.decode(), "ctr"))
    assert _arm_row(staff, arm) == (0, 0, "0.0000")

    assert visitor.post("/api/impressions", data=json.dumps({"token": token}),
                        content_type="application/json").status_code == 202
    assert _arm_row(staff, arm) == (1, 0, "0.0000")

    click = {"movie_id": 1, "kind": "click", "impression": impression_id, "position": 2}
    assert visitor.post("/api/events", data=json.dumps(click),
                        content_type="application/json").status_code == 202
    assert _arm_row(staff, arm) == (1, 1, "1.0000")
    assert _arm_row(staff, other) == (0, 0, "0.0000")
    assert _png_size(staff.get("/dashboard/charts/ctr.png")) == (640, 300)


def test_a_stopped_experiment_is_shown_as_not_running(staff, movies):
    now = timezone.now()
    Experiment.objects.create(name="last-week", arms=[{"model": "pinsage", "weight": 1}],
                              started_at=now - timedelta(days=8), stopped_at=now - timedelta(days=1))

    panel = _section(staff.get("/dashboard/").content.decode(), "ctr")

    assert "No experiment running. The newest, <strong>last-week</strong>" in panel
    assert 'data-model="pinsage"' in panel


# --- latency: the workers' timings in Redis --------------------------------------------


@pytest.fixture
def no_timings():
    client().delete(latency.KEY)
    yield
    client().delete(latency.KEY)


def test_latency_panel_shows_p50_and_p95_of_the_last_hour(staff, no_timings):
    now = time.time()
    latency.timings_record([0.5] * 3, at=now - 2 * latency.WINDOW_S)  # trimmed by the next write
    latency.timings_record([0.1, 0.2, 0.3, 0.4, 1.0], at=now - 60)
    latency.timings_record([0.15], at=now)

    panel = _section(staff.get("/dashboard/").content.decode(), "latency")

    # Sorted: 0.1 0.15 0.2 0.3 0.4 1.0 -> p50 (0.2 + 0.3) / 2, p95 0.4 + 0.75 x 0.6.
    assert "6 applied clicks" in panel
    assert '<strong class="p50">250 ms</strong>' in panel and '<strong class="p95">850 ms</strong>' in panel
    assert _png_size(staff.get("/dashboard/charts/latency.png")) == (640, 300)


def test_no_timings_says_no_clicks_were_applied(staff, no_timings):
    assert "No clicks applied" in _section(staff.get("/dashboard/").content.decode(), "latency")


def test_redis_down_leaves_the_page_up_and_says_so(staff, trained, settings, unused_tcp_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{unused_tcp_port}/0"

    response = staff.get("/dashboard/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "Latency timings are unavailable" in _section(html, "latency")
    assert f'class="live-version">{trained["popular"]}<' in html
    assert staff.get("/dashboard/charts/latency.png").status_code == 503
