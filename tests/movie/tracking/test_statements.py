"""The click path's statements write and find what the ORM writes and finds."""

import uuid
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, transaction

from movie.catalogue.models import Movie
from movie.tracking import statements
from movie.tracking.models import Impression, Interaction, VisitorForward


@pytest.fixture
def movie(db):
    return Movie.objects.create(id=31, title="Dangerous Minds", year=1995)


def _fields(row: Interaction) -> dict:
    return {f.attname: getattr(row, f.attname)
            for f in Interaction._meta.concrete_fields if f.attname != "id"}


def test_an_inserted_row_reads_back_as_the_orms_own(movie):
    impression = Impression.objects.create(id=uuid.uuid4(), visitor="v:" + "a" * 32, model="lightgcn",
                                           page="home", movie_ids=[31], size=1,
                                           created_at=datetime.now(UTC))
    at = datetime(2026, 12, 7, 19, 2, 15, 714786, tzinfo=UTC)
    values = dict(visitor="v:" + "a" * 32, movie_id=31, kind="rate", value=3.5, created_at=at,
                  impression_id=impression.id, position=4, client="b37c6bdcda717f4a9929aca5")
    ours, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    statements.insert(Interaction, event_id=ours, **values)
    Interaction.objects.create(event_id=theirs, **values)

    read = {str(row.event_id): _fields(row) for row in Interaction.objects.all()}
    assert read[ours] == {**read[theirs], "event_id": uuid.UUID(ours)}
    assert read[ours]["created_at"] == at and read[ours]["value"] == 3.5


def test_first_finds_by_a_uuid_string_and_by_a_foreign_keys_column(movie):
    event_id = str(uuid.uuid4())
    row = Interaction.objects.create(visitor="v:" + "c" * 32, movie_id=31, kind="click", event_id=event_id,
                                     created_at=datetime.now(UTC))
    assert statements.first(Interaction, ("id", "visitor"), event_id=event_id) == (row.id, row.visitor)
    assert statements.first(Interaction, ("id",), event_id=event_id.upper()) == (row.id,)
    assert statements.first(Interaction, ("id",), event_id=str(uuid.uuid4())) is None
    assert statements.first(Interaction, ("kind",), visitor=row.visitor, movie_id=31) == ("click",)
    assert statements.first(Movie, ("id",), id=32) is None

    moved, account = "v:" + "d" * 32, "v:" + "e" * 32
    VisitorForward.objects.create(from_visitor=moved, to_visitor=account, created_at=datetime.now(UTC))
    assert statements.first(VisitorForward, ("to_visitor",), from_visitor=moved) == (account,)


def test_a_second_row_with_one_event_id_is_djangos_integrity_error_and_writes_nothing(movie):
    values = dict(visitor="v:" + "f" * 32, movie_id=31, kind="click", value=None,
                  event_id=str(uuid.uuid4()), created_at=datetime.now(UTC), impression_id=None,
                  position=None, client="")
    statements.insert(Interaction, **values)
    with pytest.raises(IntegrityError), transaction.atomic():
        statements.insert(Interaction, **{**values, "visitor": "v:" + "9" * 32})
    with pytest.raises(IntegrityError), transaction.atomic():  # no such movie
        statements.insert(Interaction, **{**values, "movie_id": 32, "event_id": str(uuid.uuid4())})
    assert list(Interaction.objects.values_list("visitor", flat=True)) == ["v:" + "f" * 32]
