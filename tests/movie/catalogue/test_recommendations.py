"""The recommendations page reads: a GET never writes to Kafka, not even for a visitor whose
live list is from a replaced version (the live workers re-derive it themselves:
predictors.live.LiveEngine.refresh)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse
from kafka import KafkaConsumer, TopicPartition

from movie.catalogue.models import Movie
from predictors import cache, registry
from pytorch_models.data.movielens import movies_read, release_detect
from tests.conftest import MOVIELENS

HISTORY = [1, 260, 1196]  # Toy Story, Star Wars IV and V
MODEL = "lightgcn"


@pytest.fixture(autouse=True)
def model_dir_of_this_test(trained_models):
    """Overrides tests/movie's empty model folder: the page needs the trained models."""
    return trained_models


@pytest.fixture
def visitor(client, db, interaction_add) -> str:
    Movie.objects.bulk_create(
        [Movie(id=m.movie_id, title=m.title, year=m.year) for m in movies_read(release_detect(MOVIELENS))],
        batch_size=2000,
    )
    client.get(reverse("history"))  # creates the anonymous session
    visitor = client.session["visitor"]
    for minute, movie_id in enumerate(HISTORY):
        interaction_add(visitor, movie_id, minute=minute)
    return visitor


def _end_offsets() -> dict:
    """Every partition's end offset of the topics the app writes (clicks, impressions)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.KAFKA_BOOTSTRAP, group_id=None)
    try:
        partitions = [TopicPartition(topic, p)
                      for topic in (settings.KAFKA_TOPIC, settings.KAFKA_IMPRESSIONS_TOPIC)
                      for p in consumer.partitions_for_topic(topic)]
        return consumer.end_offsets(partitions)
    finally:
        consumer.close()


def test_a_page_view_writes_nothing_to_kafka_even_with_a_list_from_a_replaced_version(client, visitor):
    cache.recommendations_set(MODEL, visitor, model_version="replaced", items=[(2571, 1.0)] * 30,
                              as_of_event="an-older-event")
    before = _end_offsets()
    try:
        response = client.get(reverse("recommendations", args=[MODEL]))
    finally:
        after = _end_offsets()
        cache.recommendations_forget(visitor, [MODEL])

    assert response.status_code == 200
    recs = response.context["recs"]
    assert (recs.source, recs.model_version) == ("published", registry.published(MODEL).version)  # scored now
    assert after == before
