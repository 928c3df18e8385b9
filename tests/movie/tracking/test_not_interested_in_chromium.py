""""Not interested" in real Chromium against the live server: the poster leaves the row at
once, the event goes through the same exactly-once path as a click, the movie stays gone on the
next page, and the history panel lists it with an Undo that brings it back.

A transactional test whose flush recreates the content types must not run just before a test
with serialized_rollback (test_events.py's), whose restore would insert them again: the file's
name puts it after them, beside test_impressions_in_chromium.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from playwright.sync_api import sync_playwright

from movie.catalogue.models import DatasetRating, Movie
from movie.tracking.models import Interaction

pytestmark = pytest.mark.timeout(120)

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def _in_thread(read):
    """Run an ORM read on a thread: Playwright's event loop forbids the ORM on its own."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(read).result()


def _shown(page) -> list[int]:
    return [int(m) for m in page.locator("#recommendations li:not([hidden]) a.poster").evaluate_all(
        "posters => posters.map(p => p.dataset.movieId)")]


def test_a_dismissed_recommendation_leaves_at_once_stays_gone_and_can_be_undone(
    live_server, transactional_db, clicklog_table, impressions_table, chromium_executable
):
    # Nothing trained: the page falls back to the most rated movies, 6 then 5 ... ratings.
    Movie.objects.bulk_create(Movie(id=i, title=f"Movie {i}") for i in range(1, 7))
    at = datetime(2024, 1, 1, tzinfo=UTC)
    DatasetRating.objects.bulk_create(DatasetRating(dataset_user=u, movie_id=m, rating=4.0, rated_at=at)
                                      for m in range(1, 7) for u in range(m))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True,
                                             args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_server.url}/recommendations/lightgcn/")
        assert _shown(page) == [6, 5, 4, 3, 2, 1]

        with page.expect_response(f"{live_server.url}/api/events") as saved:
            page.get_by_role("button", name="Not interested in Movie 6").click()
            assert _shown(page) == [5, 4, 3, 2, 1]  # at once, before the server answers
        assert saved.value.status == 202

        page.reload()
        assert _shown(page) == [5, 4, 3, 2, 1]  # the next page, from the server
        page.goto(f"{live_server.url}/recommendations/graphfilter/")
        assert _shown(page) == [5, 4, 3, 2, 1]  # every model's list
        history = page.locator(".history-list li")
        assert history.count() == 1 and "not interested" in history.first.inner_text()

        with page.expect_navigation():  # the history panel's form posts, then comes back here
            page.get_by_role("button", name="Undo not interested in Movie 6").click()
        assert _shown(page) == [6, 5, 4, 3, 2, 1]
        page.wait_for_load_state("networkidle")  # its impression posted: nothing in flight after the test
        browser.close()

    kinds = _in_thread(lambda: list(Interaction.objects.values_list("movie_id", "kind")))
    assert kinds == []  # the undo removed the dismissal's row
