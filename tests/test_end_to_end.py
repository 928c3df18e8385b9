"""An anonymous visitor in real Chromium clicks three posters; within 10 s the PinSage
and NGCF pages show recommendations that reflect the last click, none of them a clicked movie.
The home page greets it with "Popular now" and, after the clicks, "Recommended for you" with
a "Because you watched" line under each poster."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module

import pytest
from django.conf import settings
from playwright.sync_api import sync_playwright

from eventstore import clicklog

pytestmark = pytest.mark.timeout(300)

FRESH_WITHIN_S = 10
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _visitor_of(session_key: str) -> str:
    """The visitor id the session holds (read on a thread: Playwright's loop forbids the ORM)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(lambda: store(session_key=session_key)["visitor"]).result()


def _shown(page) -> list[int]:
    ids = page.locator("#recommendations .poster").evaluate_all("els => els.map(e => e.dataset.movieId)")
    return [int(i) for i in ids]


def test_three_clicks_change_pinsage_and_ngcf(
    live_server, catalogue_imported, trained_models, clicklog_table, impressions_table, live_celery_worker,
    click_consumer, chromium_executable,
):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True,
                                             args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_server.url}/recommendations/pinsage/")
        assert "haven't clicked or rated anything yet" in page.content()
        cold = _shown(page)
        assert len(cold) == 20

        page.goto(f"{live_server.url}/")
        assert page.locator("#home-row-heading").inner_text() == "Popular now"

        clicked = []
        for position in range(3):
            page.goto(f"{live_server.url}/")
            if position == 0:
                popular_row = page.locator("#home-row").get_attribute("data-impression")
            poster = page.locator(".poster").nth(position * 5)
            clicked.append(int(poster.get_attribute("data-movie-id")))
            with page.expect_navigation():
                poster.click()
            assert page.url.endswith(f"/movies/{clicked[-1]}/")
        last_click = time.monotonic()
        session = next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")
        visitor = _visitor_of(session)
        logged = clicklog.events_for(visitor)  # app.js navigates after the POST's answer
        assert [e.movie_id for e in logged] == clicked
        # The first click was the first poster of the page's "Popular now" row: credited to it.
        assert (logged[0].impression, logged[0].position) == (popular_row, 1)
        last_event = logged[-1].event_id

        for model in ("pinsage", "ngcf"):
            while True:
                page.goto(f"{live_server.url}/recommendations/{model}/")
                shown = page.locator("#recommendations")
                if (shown.get_attribute("data-source") == "fresh"
                        and shown.get_attribute("data-as-of-event") == last_event):
                    break
                assert time.monotonic() - last_click < FRESH_WITHIN_S, (
                    f"{model} not fresh within {FRESH_WITHIN_S} s")
                time.sleep(0.2)
            shown = _shown(page)
            assert len(shown) == 20
            assert shown != cold
            assert not set(shown) & set(clicked)
            assert "haven't clicked" not in page.content()
            in_history = page.locator(".history-list a").evaluate_all("els => els.map(e => e.pathname)")
            assert sorted(in_history) == sorted(f"/movies/{m}/" for m in clicked)

        page.goto(f"{live_server.url}/")
        assert page.locator("#home-row-heading").inner_text() == "Recommended for you"
        row = page.locator("#home-row > li")
        assert row.count() == 8
        for i in range(row.count()):
            assert row.nth(i).locator(".because").inner_text().startswith("Because you watched")
            named = row.nth(i).locator(".because a").evaluate_all("els => els.map(e => e.pathname)")
            assert set(named) <= {f"/movies/{m}/" for m in clicked}
        browser.close()
