"""The history and impression tables stay bounded: rows past their retention go, and so do a
visitor's rows of movies past its history cap (movie.tracking.services.history_expire)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from movie.tracking.models import Impression, Interaction
from movie.tracking.services import history_expire, impressions_expire
from workers import tasks

VISITOR, OTHER = "v:" + "e" * 32, "v:" + "f" * 32
A, B, C, D, E = 1, 11, 27008, 40697, 171749  # the tiny catalogue's movies
FOREVER = 100_000  # days: only the cap applies


def _rows(visitor: str) -> list[tuple[int, str]]:
    return sorted(Interaction.objects.filter(visitor=visitor).values_list("movie_id", "kind"))


def test_rows_past_the_retention_go_and_newer_ones_stay(catalogue, interaction_add):
    interaction_add(VISITOR, A, minute=0)  # 2024: far past a 30-day retention
    interaction_add(VISITOR, B, minute=1)
    Interaction.objects.create(visitor=VISITOR, movie_id=C, kind="click", event_id=uuid.uuid4(),
                               created_at=timezone.now())

    assert history_expire(retention_days=30, per_visitor=500) == 2
    assert _rows(VISITOR) == [(C, "click")]


def test_a_visitor_past_its_cap_keeps_the_rows_of_its_newest_movies_only(catalogue, interaction_add):
    for minute, movie_id in enumerate([A, B, C, D, E]):
        interaction_add(VISITOR, movie_id, minute=minute)
    interaction_add(VISITOR, A, kind="rate", value=4.0, minute=10)  # movie A again: now its newest
    interaction_add(OTHER, A, minute=0)
    interaction_add(OTHER, B, minute=1)

    # Newest first: A (minute 10), E, D | C, B go. Both of A's rows stay.
    assert history_expire(retention_days=FOREVER, per_visitor=3) == 2
    assert _rows(VISITOR) == [(A, "click"), (A, "rate"), (D, "click"), (E, "click")]
    assert _rows(OTHER) == [(A, "click"), (B, "click")]  # under the cap: untouched
    assert history_expire(retention_days=FOREVER, per_visitor=3) == 0  # nothing more to do


def test_a_run_deletes_at_most_its_budget(catalogue, interaction_add):
    for minute, movie_id in enumerate([A, B, C, D, E]):
        interaction_add(VISITOR, movie_id, minute=minute)

    assert history_expire(retention_days=30, per_visitor=500, budget=2) == 2
    assert _rows(VISITOR) == [(C, "click"), (D, "click"), (E, "click")]  # the oldest went first


def test_impressions_past_their_retention_go_and_their_clicks_stay(catalogue, interaction_add):
    old = Impression.objects.create(id=uuid.uuid4(), visitor=VISITOR, model="lightgcn", page="home",
                                    movie_ids=[A, B], size=2, created_at=timezone.now() - timedelta(days=91))
    new = Impression.objects.create(id=uuid.uuid4(), visitor=VISITOR, model="lightgcn", page="home",
                                    movie_ids=[A, B], size=2, created_at=timezone.now())
    click = interaction_add(VISITOR, A)
    click.impression, click.position = old, 1
    click.save()

    assert impressions_expire(retention_days=90) == 1
    assert list(Impression.objects.values_list("id", flat=True)) == [new.id]
    click.refresh_from_db()
    assert click.impression_id is None and click.position == 1


@pytest.mark.django_db
def test_beat_expires_the_mirrors_on_the_retrain_queue(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["expire-mirrors"]
    assert entry["task"] == "workers.tasks.mirrors_expire"
    assert tasks.mirrors_expire.queue == "upkeep"  # neither in a live tick's way nor behind a retrain
    assert tasks.mirrors_expire() == {"history": 0, "impressions": 0}
