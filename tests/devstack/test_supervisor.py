"""The local stack heals: an app process that dies is restarted after a backoff, one that
keeps dying at once makes the stack give up, and a dead service still stops it."""

from __future__ import annotations

import io
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


def _job(tmp_path, code: str) -> Process:
    return Process("job", [sys.executable, "-c", code], log_dir=tmp_path)


def _check_until(running: Stack, done, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        running.check()
        time.sleep(0.02)


def test_a_job_that_finishes_leaves_the_stack_and_its_output_reaches_the_echo(tmp_path):
    out, then = io.BytesIO(), []
    with Stack() as running:
        running.start(_sleeper(tmp_path, 30), restart=True)
        job = running.start(_job(tmp_path, "import sys, time\nfor i in range(3):\n"
                                           "    sys.stdout.write(f'step {i}\\r'); sys.stdout.flush(); "
                                           "time.sleep(0.1)\n"
                                           "print('published')"),
                            restart=True, wait=False, once=True, then=lambda: then.append(job.pid), echo=out)

        _check_until(running, lambda: job not in running.processes)

        assert out.getvalue() == b"step 0\rstep 1\rstep 2\rpublished\n"  # all of it, none of the header
        assert job.pid is None and job not in running.jobs and job not in running.restarts
        assert then == [None]  # called once, after the job was reaped
        running.check()  # nothing to restart, nothing to raise
        assert [p.name for p in running.processes] == ["sleeper"]


def test_a_job_that_fails_runs_again_until_it_finishes(tmp_path):
    marker = tmp_path / "tried"
    code = (f"import pathlib, sys\nm = pathlib.Path({str(marker)!r})\n"
            "print('try', 2 if m.exists() else 1)\nif not m.exists():\n    m.touch(); sys.exit(3)")
    out = io.BytesIO()
    with Stack() as running:
        running.backoff_s = 0.05
        job = running.start(_job(tmp_path, code), restart=True, wait=False, once=True, echo=out)
        _check_until(running, lambda: job not in running.processes)

    assert out.getvalue() == b"try 1\ntry 2\n"
    assert (tmp_path / "job.log").read_text().count("\n=== ") == 2


def test_new_output_starts_over_after_a_rotation_truncated_the_log(tmp_path):
    proc = _job(tmp_path, "print('a' * 10)")
    proc.launch().process.wait()
    assert proc.new_output() == b"a" * 10 + b"\n" and proc.new_output() == b""
    proc.log_path.write_bytes(b"")  # what log_rotate's truncation leaves
    with open(proc.log_path, "ab") as log_file:
        log_file.write(b"next\n")
    assert proc.new_output() == b"next\n"
    proc.stop()


def test_a_relaunched_process_runs_with_its_changed_environment_and_keeps_its_restart(tmp_path):
    code = "import os, time; print('X' + '=' + os.environ['X'], flush=True); time.sleep(30)"  # header: no X=
    log = tmp_path / "envy.log"
    with Stack() as running:
        proc = running.start(Process("envy", [sys.executable, "-c", code], env={"X": "before"},
                                     log_dir=tmp_path,
                                     check=lambda: "\nX=" in log.read_text().rsplit("\n=== ", 1)[-1]),
                             restart=True)
        first = proc.pid

        proc.env_update({"X": "after"})
        running.relaunch(proc).wait_ready()

        assert proc.pid != first and proc.poll() is None and proc in running.restarts
        runs = (tmp_path / "envy.log").read_text().split("\n=== ")[1:]
        assert ["\nX=before\n" in runs[0], "\nX=after\n" in runs[1]] == [True, True]


class _Hog(Process):
    """A child that takes `mb` MB and keeps it; counts the calls of `on_ready`."""

    def __init__(self, tmp_path, mb: int):
        code = f"import time; x = bytearray({mb} * 2**20); time.sleep(60)"
        super().__init__("hog", [sys.executable, "-c", code], log_dir=tmp_path)
        self.ready_calls = 0

    def on_ready(self) -> None:
        self.ready_calls += 1


def test_a_process_past_its_memory_bound_is_restarted_and_made_ready_again(tmp_path):
    with Stack() as running:
        hog = _Hog(tmp_path, mb=200)
        running.start(hog, restart=True, max_rss=100 * 2**20)
        first = hog.pid
        assert hog.ready_calls == 1  # `start` waited for it
        deadline = time.monotonic() + 10
        while hog.rss() < 150 * 2**20:  # the bytearray is touched as it is made
            assert time.monotonic() < deadline, "the child never took its memory"
            time.sleep(0.05)

        assert running.enforce_bounds() == [hog]
        assert hog.pid != first and hog.poll() is None
        running.check()  # answering again: its on_ready is called once
        running.check()
        assert hog.ready_calls == 2
        assert running.enforce_bounds() == []  # the new one is small yet


def test_a_process_within_its_bound_is_left_alone(tmp_path):
    with Stack() as running:
        hog = _Hog(tmp_path, mb=1)
        running.start(hog, restart=True, max_rss=500 * 2**20)
        first = hog.pid
        assert running.enforce_bounds() == [] and hog.pid == first
        with pytest.raises(ValueError, match="restart=True"):
            running.start(_Hog(tmp_path, mb=1), max_rss=2**20)
