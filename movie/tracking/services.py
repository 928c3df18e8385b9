"""Writes about visitors that are not events: creating accounts, and expiring old history
and impressions. Clicks, ratings and history moves are `movie.tracking.events`' and
`movie.tracking.moves`', impressions `movie.tracking.impressions`'."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count
from django.utils import timezone

from movie.tracking.models import Impression, Interaction
from movie.tracking.selectors import visitor_latest_movie_ids

log = logging.getLogger(__name__)


def user_signup(*, username: str, password: str) -> AbstractBaseUser:
    """Create an account; the form has already validated the username and password."""
    return get_user_model().objects.create_user(username=username, password=password)


# Rows deleted per statement and per run of the expiry task (beat, every EXPIRY_SWEEP_S): a run
# deletes at most EXPIRE_RUN_ROWS of each table, which at the default 300 s is 2.9 million rows
# a day, above the 4.3 million clicks a day of 50 clicks/s only with two runs' slack; a backlog
# (after the retention was shortened) drains over the following runs.
EXPIRE_BATCH_ROWS = 1_000
EXPIRE_RUN_ROWS = 10_000
# Visitors past the history cap trimmed per run: each costs one read of its capped history.
EXPIRE_CROWDED_VISITORS = 100


def _delete_in_batches(queryset, budget: int) -> int:
    deleted = 0
    while deleted < budget:
        ids = list(queryset.values_list("pk", flat=True)[:min(EXPIRE_BATCH_ROWS, budget - deleted)])
        if not ids:
            break
        deleted += queryset.model.objects.filter(pk__in=ids).delete()[0]
    return deleted


def history_expire(*, retention_days: float, per_visitor: int, budget: int = EXPIRE_RUN_ROWS) -> int:
    """Bound the history mirror: delete rows older than `retention_days` (the click log's own
    retention, so the mirror holds what the log holds) and, for visitors with more than
    `per_visitor` movies, the rows of their older movies, which no page, live model or retrain
    reads any more (settings.VISITOR_HISTORY_MAX). At most `budget` rows of each kind a call;
    returns how many rows went."""
    cutoff = timezone.now() - timedelta(days=retention_days)
    deleted = _delete_in_batches(Interaction.objects.filter(created_at__lt=cutoff).order_by("created_at"),
                                 budget)
    crowded = (Interaction.objects.values("visitor").annotate(rows=Count("id")).filter(rows__gt=per_visitor)
               .values_list("visitor", flat=True)[:EXPIRE_CROWDED_VISITORS])
    trimmed = 0
    for visitor in crowded:
        kept = visitor_latest_movie_ids(visitor)[:per_visitor]
        trimmed += _delete_in_batches(Interaction.objects.filter(visitor=visitor).exclude(movie_id__in=kept),
                                      budget - trimmed)
        if trimmed >= budget:
            break
    if deleted or trimmed:
        log.info("history expired: %d rows past %s days, %d past the %d-movie cap", deleted, retention_days,
                 trimmed, per_visitor)
    return deleted + trimmed


def impressions_expire(*, retention_days: float, budget: int = EXPIRE_RUN_ROWS) -> int:
    """Delete impression rows older than `retention_days` (the impressions log's retention): the
    experiment reports count the impressions that remain. Clicks keep their row, without the list."""
    cutoff = timezone.now() - timedelta(days=retention_days)
    return _delete_in_batches(Impression.objects.filter(created_at__lt=cutoff).order_by("created_at"), budget)
