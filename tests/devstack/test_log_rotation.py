"""The demo's logs are rotated by size while their processes write to them: a few generations
kept, the writer carrying on at the start of the emptied file (no hole of NULs, no restart)."""

from __future__ import annotations

import sys
import time

from devstack.process import Process, log_rotate
from devstack.supervisor import Stack

# Writes numbered 100-byte lines as fast as it can, through the file it was given.
WRITER = ("import itertools, sys\n"
          "for n in itertools.count():\n"
          "    sys.stdout.write(f'{n:099d}\\n'); sys.stdout.flush()\n")


def test_a_log_past_its_size_is_rotated_under_a_writing_process_keeping_a_few(tmp_path):
    with Stack() as stack:
        stack.log_max_bytes, stack.log_keep = 20_000, 2
        writer = stack.start(Process("writer", [sys.executable, "-c", WRITER], log_dir=tmp_path))
        rotations, deadline = 0, time.monotonic() + 30
        while rotations < 4:
            assert time.monotonic() < deadline, "the log never grew past its bound"
            rotations += stack.rotate_logs()  # what the watch loop does every half second
            time.sleep(0.02)
        writer.stop()

    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["writer.log", "writer.log.1", "writer.log.2"]  # two generations kept, older ones dropped
    current = (tmp_path / "writer.log").read_bytes()
    assert b"\0" not in current  # the writer went on at offset 0, not where it stood before
    # Whole lines but the last: stop() kills the writer, which can cut the write it was in at a
    # page boundary (the kernel checks for a fatal signal between pages), leaving a line unended.
    lines = current[:current.rfind(b"\n") + 1].splitlines()
    numbers = [int(line) for line in lines if line.isdigit()]
    assert numbers and numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # whole lines, in order
    previous = [int(line) for line in (tmp_path / "writer.log.1").read_bytes().splitlines() if line.isdigit()]
    assert previous[-1] < numbers[0]  # .1 holds what came just before


def test_a_small_or_missing_log_is_left_alone(tmp_path):
    log = tmp_path / "quiet.log"
    assert log_rotate(log, max_bytes=10, keep=3) is False
    log.write_text("short\n")
    assert log_rotate(log, max_bytes=10, keep=3) is False and log.read_text() == "short\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quiet.log"]
