"""app.js in real Chromium against the live server: a list the server signed is reported once
(again on reload, stored once), and a click on one of its posters carries its impression id
and position. The page is a minimal one carrying exactly the markup the list templates put on
a list's <ul>, so this tests the script's contract, whatever page shows the list."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module

import pytest
from django.conf import settings
from playwright.sync_api import sync_playwright

from movie.catalogue.models import Movie
from movie.tracking.impression_tokens import impression_token
from movie.tracking.models import Impression, Interaction

pytestmark = pytest.mark.timeout(120)

SHOWN = [3, 1, 4, 5]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _in_thread(read):
    """Run an ORM read on a thread: Playwright's event loop forbids the ORM on its own."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(read).result()


def _visitor_of(session_key: str) -> str:
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return _in_thread(lambda: store(session_key=session_key)["visitor"])


def _list_page(impression_id: str, token: str) -> str:
    posters = "".join(f'<li><a class="poster" href="/movies/{m}/" data-movie-id="{m}">Movie {m}</a></li>'
                      for m in SHOWN)
    return (f'<!doctype html><html><head><script src="/static/movie/app.js" defer></script></head><body>'
            f'<ul class="poster-grid" data-impression="{impression_id}" data-impression-token="{token}">'
            f"{posters}</ul></body></html>")


def test_the_script_reports_a_list_once_and_credits_its_clicks(
    live_server, transactional_db, clicklog_table, impressions_table, chromium_executable
):
    Movie.objects.bulk_create(Movie(id=i, title=f"Movie {i}") for i in range(1, 6))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True,
                                             args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_server.url}/history/")  # a session (the visitor id) and the CSRF cookie
        session = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
        impression_id, token = impression_token(visitor=_visitor_of(session), model="lightgcn",
                                                model_version="v1", page="home", movie_ids=SHOWN)
        page.route(f"{live_server.url}/list/", lambda route: route.fulfill(
            status=200, content_type="text/html", body=_list_page(impression_id, token)))

        for _ in range(2):  # the second time, as a reload or a back-forward restore would
            with page.expect_response(f"{live_server.url}/api/impressions") as reported:
                page.goto(f"{live_server.url}/list/")
            assert reported.value.status == 202
        with page.expect_navigation():  # the script saves the click, then follows the link
            page.locator("a.poster").nth(2).click()
        browser.close()

    shown = _in_thread(lambda: list(Impression.objects.values_list("id", "movie_ids")))
    assert shown == [(uuid.UUID(impression_id), SHOWN)]
    clicks = _in_thread(
        lambda: list(Interaction.objects.values_list("movie_id", "impression_id", "position")))
    assert clicks == [(SHOWN[2], uuid.UUID(impression_id), 3)]
