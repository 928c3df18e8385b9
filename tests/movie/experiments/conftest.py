"""What the experiments' tests share: experiments, lists shown and clicked, visitor ids."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from movie.catalogue.models import Movie
from movie.experiments.models import Experiment
from movie.tracking.models import Impression, Interaction

ROOT = Path(__file__).resolve().parents[3]
WEIGHTS = {"pinsage": 1, "ngcf": 2, "lightgcn": 3}


def visitor_ids(n: int, seed: int = 9) -> list[str]:
    """Synthetic visitor ids shaped like movie.tracking.visitors makes them; seeded, so the test is fixed."""
    rng = random.Random(seed)
    return [f"v:{rng.getrandbits(128):032x}" for _ in range(n)]


def experiment_new(name: str = "home-row", weights: dict = WEIGHTS, **fields) -> Experiment:
    arms = [{"model": model, "weight": weight} for model, weight in weights.items()]
    return Experiment(name=name, arms=arms,
                      started_at=fields.pop("started_at", timezone.now() - timedelta(hours=1)), **fields)


@pytest.fixture
def movies(db):
    return [Movie.objects.create(id=i, title=f"Movie {i}") for i in range(1, 6)]


def lists_shown(experiment: Experiment, model: str, n: int, *, clicked_at: list[int | None] = (),
                page: str = "home", version: str = "v1", size: int = 5,
                visitor: str = "v:" + "a" * 32) -> None:
    """`n` lists shown (as the mirror holds them); the i-th clicked at position clicked_at[i]."""
    at = experiment.started_at + timedelta(minutes=1)
    shown = Impression.objects.bulk_create(
        Impression(id=uuid.uuid4(), visitor=visitor, model=model, model_version=version, page=page,
                   movie_ids=list(range(1, size + 1)), size=size, created_at=at) for _ in range(n))
    Interaction.objects.bulk_create(
        Interaction(visitor=visitor, movie_id=position, kind="click", event_id=uuid.uuid4(), created_at=at,
                    impression=impression, position=position)
        for impression, position in zip(shown, clicked_at, strict=False) if position is not None)


