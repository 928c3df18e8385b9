"""The session store reads what Django's database store writes, and nothing expired."""

from datetime import timedelta

from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from movie.tracking.sessions import SessionStore


def test_a_saved_session_reads_back_as_djangos_store_reads_it(db):
    written = SessionStore()
    written["visitor"] = "v:" + "a" * 32
    written["n"] = 3
    written.save()

    ours, theirs = SessionStore(written.session_key), DjangoStore(written.session_key)
    assert ours.load() == theirs.load() == {"visitor": "v:" + "a" * 32, "n": 3}
    assert ours.session_key == written.session_key


def test_an_expired_unknown_or_malformed_key_reads_as_a_new_session(db):
    expired = SessionStore()
    expired["visitor"] = "v:" + "b" * 32
    expired.save()
    Session.objects.filter(pk=expired.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))

    for key in (expired.session_key, "nosuchsessionkey00000000000000ab", "short", None):
        store = SessionStore(key)
        assert store.load() == {} and store.session_key is None
