"""The tests' own MariaDB: where no server lets DATABASE_URL's user in (a bare machine), the
session starts mariadbd on a free port with a temporary data folder and stops it at the end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.process import free_port, port_is_free
from devstack.services import MariaDB

ROOT = Path(__file__).resolve().parents[2]


def _query(port: int, sql: str) -> list[tuple]:
    import MySQLdb

    connection = MySQLdb.connect(host="127.0.0.1", port=port, user="root", connect_timeout=2)
    try:
        cursor = connection.cursor()
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        connection.close()


def test_a_private_mariadb_lets_root_in_on_loopback_and_keeps_its_data_across_restarts(tmp_path):
    server = MariaDB(path=tmp_path / "mariadb", log_dir=tmp_path)
    try:
        server.start()
        assert not port_is_free(server.port)
        assert _query(server.port, "SELECT @@bind_address, @@datadir") == [
            ("127.0.0.1", f"{tmp_path / 'mariadb' / 'data'}/")]
        _query(server.port, "CREATE DATABASE kept")
        server.stop()
        assert port_is_free(server.port)

        server.start()  # the data folder exists: not initialised a second time
        assert ("kept",) in _query(server.port, "SHOW DATABASES")
        assert (tmp_path / "mariadb.log").read_text().count("Installing MariaDB/MySQL system tables") == 1
    finally:
        server.stop()
    assert port_is_free(server.port)


@pytest.mark.timeout(240)
def test_the_suite_starts_its_own_mariadb_and_valkey_where_none_answers(tmp_path):
    """A pytest session pointed at loopback ports where nothing listens, as on a bare machine:
    its database test runs against a MariaDB of its own, which is stopped and removed after."""
    silent_db, silent_redis = free_port(), free_port()
    assert port_is_free(silent_db) and port_is_free(silent_redis)
    outer = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # not this session's options
    env = {**outer, "DATABASE_URL": f"mysql://root@127.0.0.1:{silent_db}/cinegraph",
           "TEST_REDIS_URL": f"redis://127.0.0.1:{silent_redis}/0", "SILENT_DB_PORT": str(silent_db)}

    inner = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:logging",
                              "-q", "--basetemp", str(tmp_path / "inner"), "tests/devstack/bare_machine.py"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        stdout, _ = inner.communicate(timeout=200)
    except subprocess.TimeoutExpired:
        inner.terminate()  # SIGTERM: its stack stops the servers it started (SIGKILL would orphan them)
        stdout, _ = inner.communicate(timeout=30)
        pytest.fail(f"the inner session took too long\n{stdout[-3000:]}")

    assert inner.returncode == 0 and "1 passed" in stdout, stdout[-3000:]
    assert f"redis: nothing answered at TEST_REDIS_URL redis://127.0.0.1:{silent_redis}/0" in stdout
    note = re.search(r"database: no MariaDB let root in at 127\.0\.0\.1:(\d+); the tests used their own on "
                     r"127\.0\.0\.1:(\d+) \((\S+), removed\)", stdout)
    assert note, stdout[-3000:]
    assert int(note[1]) == silent_db and int(note[2]) != silent_db
    assert port_is_free(int(note[2])) and not Path(note[3]).exists()  # stopped, and its data gone
