"""The local stack heals: an app process that dies is restarted after a backoff, one that
keeps dying at once makes the stack give up, and a dead service still stops it."""

from __future__ import annotations

import sys
import time

import pytest

from devstack.process import Process, StackError
from devstack.supervisor import Stack


def _sleeper(tmp_path, seconds: float) -> Process:
    return Process("sleeper", [sys.executable, "-c", f"import time; time.sleep({seconds})"], log_dir=tmp_path)


def _until_dead(proc, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        assert time.monotonic() < deadline, "the process did not exit"
        time.sleep(0.02)


def test_a_dead_app_process_is_restarted_after_its_backoff(tmp_path):
    with Stack() as running:
        running.backoff_s = 0.3
        proc = running.start(_sleeper(tmp_path, 0.5), restart=True)
        first = proc.pid
        _until_dead(proc)

        running.check()  # found dead: the restart is scheduled, not done
        assert proc.pid == first
        time.sleep(0.35)
        running.check()

        assert proc.pid != first and proc.poll() is None
        assert (tmp_path / "sleeper.log").read_text().count("\n=== ") == 2  # both runs logged


def test_a_process_that_keeps_dying_at_once_makes_the_stack_give_up(tmp_path):
    with Stack() as running:
        running.backoff_s, running.max_fast_failures = 0.01, 3
        running.start(_sleeper(tmp_path, 0), restart=True)
        deadline = time.monotonic() + 10
        with pytest.raises(StackError, match="3 times .* giving up"):
            while time.monotonic() < deadline:
                running.check()
                time.sleep(0.02)


def test_a_dead_service_still_stops_the_stack(tmp_path):
    with Stack() as running:
        proc = running.start(_sleeper(tmp_path, 0))
        _until_dead(proc)
        with pytest.raises(StackError, match="exited with code 0"):
            running.check()
