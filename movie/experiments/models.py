"""A/B experiments between the recommenders. The table keeps its name from when the web app was
one Django app, `movie` (`db_table`; migration `movie.0010_split_into_apps`)."""

from django.db import models
from django.utils import timezone


class Experiment(models.Model):
    """An A/B split of visitors between recommenders; `movie.experiments.arms` assigns,
    `movie.experiments.selectors` measures.

    `arms`: [{"model": one of settings.RECOMMENDATION_MODELS, "weight": a positive number}, ...].
    Running from `started_at` until `stopped_at` (open-ended when empty).
    """

    name = models.CharField(max_length=64, unique=True)
    arms = models.JSONField()
    started_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "movie_experiment"
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return self.name
