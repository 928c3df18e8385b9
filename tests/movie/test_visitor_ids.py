"""Visitor ids: the migration that replaces session keys and user ids, and the live sweep's
view of which visitors are behind their history (real DynamoDB, Redis and database)."""

from __future__ import annotations

import importlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from eventstore import clicklog
from eventstore.clicklog import Event
from livepath import state as live_state
from livepath.store import client
from movie.catalogue.models import Movie
from movie.tracking import events
from movie.tracking.models import AccountVisitor, Interaction
from movie.tracking.selectors import visitors_recent

migration = importlib.import_module("movie.migrations.0003_visitor_ids")
pytestmark = pytest.mark.django_db


def _session_store():
    return importlib.import_module(settings.SESSION_ENGINE).SessionStore


def _old_click(visitor: str, movie_id: int) -> Event:
    event = Event(event_id=str(uuid.uuid4()), visitor=visitor, movie_id=movie_id, kind="click",
                  ts=events._now())
    clicklog.event_put(event)
    Interaction.objects.create(visitor=visitor, movie_id=movie_id, kind="click", event_id=event.event_id,
                               created_at=events._at(event.ts))
    return event


def test_the_migration_moves_old_keys_everywhere_and_can_run_again(clicklog_table):
    for movie_id in (1, 2):
        Movie.objects.create(id=movie_id, title=f"Movie {movie_id}")
    user = get_user_model().objects.create_user(username="old-timer", password="correct-horse-battery")
    session = _session_store()()
    session["something"] = 1
    session.create()
    old_account, old_session = f"u:{user.pk}", f"s:{session.session_key}"
    _old_click(old_account, 1)
    _old_click(old_session, 2)
    client().hset(live_state.key(old_session), "watermark", "x")

    # The models as the migration sees them: it runs before the split moved them out of `movie`.
    apps = MigrationLoader(connection).project_state(("movie", "0003_visitor_ids")).apps
    for _run in range(2):  # a second run finds nothing left to move
        migration.visitor_ids_move(apps, None)

        account = AccountVisitor.objects.get(user=user).visitor
        anonymous = _session_store()(session_key=session.session_key)["visitor"]
        assert migration_ids_ok(account, anonymous)
        assert dict(Interaction.objects.values_list("visitor", "movie_id")) == {account: 1, anonymous: 2}
        assert [e.movie_id for e in clicklog.events_for(account)] == [1]
        assert [e.movie_id for e in clicklog.events_for(anonymous)] == [2]
        assert (clicklog.events_for(old_account, pending=True)
                == clicklog.events_for(old_session, pending=True) == [])
        assert not client().exists(live_state.key(old_session))


def migration_ids_ok(*ids: str) -> bool:
    return len(set(ids)) == len(ids) and all(v.startswith("v:") and len(v) == 34 for v in ids)


def test_visitors_behind_their_history_are_found(db):
    Movie.objects.create(id=1, title="Movie 1")
    now = datetime.now(UTC)
    visitors = {name: f"v:{uuid.uuid4().hex}" for name in ("lost", "behind", "current", "old")}
    for name, minutes_ago in (("lost", 1), ("behind", 1), ("current", 1), ("old", 60)):
        Interaction.objects.create(visitor=visitors[name], movie_id=1, kind="click", event_id=uuid.uuid4(),
                                   created_at=now - timedelta(minutes=minutes_ago))
    recent = visitors_recent(now - timedelta(minutes=15))
    assert set(recent) == {visitors[n] for n in ("lost", "behind", "current")}
    redis = client()
    redis.hset(live_state.key(visitors["behind"]), "watermark",
               events._ts(now - timedelta(minutes=2)) + "#a")
    redis.hset(live_state.key(visitors["current"]), "watermark", recent[visitors["current"]] + "#b")

    assert sorted(live_state.visitors_behind(recent)) == sorted([visitors["lost"], visitors["behind"]])
