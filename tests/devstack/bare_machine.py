"""Run by tests/devstack/test_mariadb.py in a pytest session of its own whose DATABASE_URL
names a port where nothing listens (the file name keeps it out of the normal collection)."""

import os

from django.contrib.auth.models import User
from django.db import connection


def test_the_database_is_a_mariadb_of_the_sessions_own(db):
    assert connection.vendor == "mysql"
    assert int(connection.settings_dict["PORT"]) != int(os.environ["SILENT_DB_PORT"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        assert "MariaDB" in cursor.fetchone()[0]
    User.objects.create(username="bare")
    assert list(User.objects.values_list("username", flat=True)) == ["bare"]
