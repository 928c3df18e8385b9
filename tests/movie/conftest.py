from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture
def catalogue(db):
    """A small imported catalogue: the ml-latest-tiny fixture release."""
    from movie.catalogue.services import movielens_import

    movielens_import(path=FIXTURES / "ml-latest-tiny", progress=False)


@pytest.fixture
def interaction_add(db):
    """Write Interaction rows directly (what movie.tracking.events mirrors), with explicit times."""
    import uuid

    from movie.tracking.models import Interaction

    start = datetime(2024, 1, 1, tzinfo=UTC)

    def add(visitor: str, movie_id: int, *, kind: str = "click", value=None, minute: int = 0):
        return Interaction.objects.create(
            visitor=visitor, movie_id=movie_id, kind=kind, value=value,
            event_id=uuid.uuid4(), created_at=start + timedelta(minutes=minute),
        )

    return add


@pytest.fixture(autouse=True)
def model_dir_of_this_test(settings, tmp_path):
    """Each test here starts with no trained model, whatever the session trained before."""
    settings.MODEL_DIR = tmp_path / "models"
    return settings.MODEL_DIR
