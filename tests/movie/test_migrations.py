"""movie.0010 and the first migrations of catalogue, tracking and experiments move the models
out of `movie` without touching a row: a database with rows in every moved table, migrated from
the last migration before the split to the end, keeps every row, read back through the new apps'
models, and the content types (with their permissions) follow the models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_SPLIT = ("movie", "0009_forwards_and_impression_owner")
# movie back to its last migration before the split, and the apps that took its models over to
# none of theirs.
TARGETS_BEFORE = [BEFORE_SPLIT, ("catalogue", None), ("tracking", None), ("experiments", None)]
TABLES = ["movie_genre", "movie_movie", "movie_movie_genres", "movie_movietag", "movie_datasetrating",
          "movie_paperreview", "movie_interaction", "movie_impression", "movie_accountvisitor",
          "movie_visitorforward", "movie_experiment"]
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
VISITOR = "v:" + "a" * 32
IMPRESSION_ID = uuid.UUID("11111111-2222-3333-4444-555555555555")
EVENT_ID = uuid.UUID("66666666-7777-8888-9999-000000000000")


def _migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()  # what is applied now
    return executor


def _counts() -> dict[str, int]:
    with connection.cursor() as cursor:
        counts = {}
        for table in TABLES:
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def _rows_write(apps) -> None:
    """One row in every table the split moves, through the models as migration 0009 left them."""
    def model(name):
        return apps.get_model("movie", name)

    user = apps.get_model("auth", "User").objects.create(username="someone")
    comedy = model("Genre").objects.create(name="Comedy")
    toy_story = model("Movie").objects.create(id=862, title="Toy Story", year=1995, ratings_count=1,
                                               rating_score=3.9)
    toy_story.genres.add(comedy)
    model("MovieTag").objects.create(movie=toy_story, name="pixar", users=2)
    model("PaperReview").objects.update_or_create(slug="lightgcn", defaults={
        "title": "LightGCN", "paper_title": "LightGCN", "authors": "He et al.", "venue": "SIGIR 2020",
        "url": "https://arxiv.org/abs/2002.02126", "body": "<p>Review.</p>", "model_name": "lightgcn"})
    model("DatasetRating").objects.create(dataset_user=1, movie=toy_story, rating=4.0, rated_at=AT)
    model("Experiment").objects.create(name="home-row", arms=[{"model": "lightgcn", "weight": 1}],
                                       started_at=AT)
    shown = model("Impression").objects.create(id=IMPRESSION_ID, visitor=VISITOR, model="lightgcn",
                                               model_version="v1", page="home", movie_ids=[862], size=1,
                                               created_at=AT, owner="try")
    model("Interaction").objects.create(visitor=VISITOR, movie=toy_story, kind="click", event_id=EVENT_ID,
                                        created_at=AT, impression=shown, position=1, client="c" * 24)
    model("AccountVisitor").objects.create(user=user, visitor=VISITOR)
    model("VisitorForward").objects.create(from_visitor="v:" + "b" * 32, to_visitor=VISITOR, created_at=AT)


# serialized_rollback: the flush after it then leaves the content types to the next such test to
# reload. Without it the flush recreates them in the current apps' order, under ids that differ
# from those the migrations gave, and every later serialized_rollback test fails to reload them
# (a duplicate 'admin-logentry').
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_split_keeps_every_row_and_the_content_types():
    executor = _migrate(TARGETS_BEFORE)
    _rows_write(executor.loader.project_state([BEFORE_SPLIT]).apps)
    before = _counts()
    experiment_type = ContentType.objects.get(app_label="movie", model="experiment")

    _migrate(executor.loader.graph.leaf_nodes())

    sasrec_review = {"movie_paperreview": before["movie_paperreview"] + 1}  # catalogue.0003 adds it
    assert _counts() == {**before, **sasrec_review} and all(before.values())
    from movie.catalogue.models import DatasetRating, Movie, MovieTag
    from movie.experiments.models import Experiment
    from movie.tracking.models import AccountVisitor, Impression, Interaction, VisitorForward

    toy_story = Movie.objects.get(pk=862)
    assert (toy_story.title, toy_story.year, toy_story.ratings_count, toy_story.rating_score) == (
        "Toy Story", 1995, 1, 3.9)
    assert [g.name for g in toy_story.genres.all()] == ["Comedy"]
    assert [(t.name, t.users) for t in MovieTag.objects.filter(movie=toy_story)] == [("pixar", 2)]
    assert DatasetRating.objects.get(movie=toy_story).rated_at == AT
    click = Interaction.objects.select_related("impression").get(event_id=EVENT_ID)
    assert (click.visitor, click.movie_id, click.position, click.client) == (VISITOR, 862, 1, "c" * 24)
    assert click.impression == Impression.objects.get(pk=IMPRESSION_ID)
    assert click.impression.movie_ids == [862] and click.impression.owner == "try"
    assert AccountVisitor.objects.get(visitor=VISITOR).user.username == "someone"
    assert VisitorForward.objects.get(to_visitor=VISITOR).created_at == AT
    assert Experiment.objects.get(name="home-row").arms == [{"model": "lightgcn", "weight": 1}]

    # The same content type, relabelled, with its permissions: none made afresh, none left behind.
    ContentType.objects.clear_cache()
    assert ContentType.objects.get_for_model(Experiment).pk == experiment_type.pk
    assert Permission.objects.filter(content_type=experiment_type, codename="add_experiment").exists()
    assert not ContentType.objects.filter(app_label="movie").exists()
