"""`Stack`: the started processes, restarted when they die, stopped in reverse order."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import time
from collections.abc import Callable
from typing import BinaryIO

from devstack.process import ROOT, Process, StackError, quietly

log = logging.getLogger("stack")


@dataclasses.dataclass
class _Restarts:
    started_at: float
    fast_failures: int = 0
    due_at: float | None = None  # when a dead process is to be launched again
    awaiting_ready: bool = False  # launched again; `on_ready` once it answers


class Stack:
    """Started processes, stopped in reverse order (an ExitStack) on exit, Ctrl-C or SIGTERM."""

    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    # Restarts of a process that died on its own: after `backoff_s` doubling per fast failure
    # (one within `fast_failure_s` of its start), up to `max_backoff_s`; after
    # `max_fast_failures` in a row the stack gives up, since something is broken, not flaky.
    backoff_s, max_backoff_s, fast_failure_s, max_fast_failures = 1.0, 30.0, 10.0, 5

    def __init__(self):
        self.processes: list[Process] = []
        self.restarts: dict[Process, _Restarts] = {}
        self.bounds: dict[Process, int] = {}  # RSS in bytes past which a process is restarted
        self.bounds_checked_at = 0.0
        self.external: list[tuple[str, str]] = []  # (name, address) used but not started
        # done at exit 0, then this (`start(once=True)`)
        self.jobs: dict[Process, Callable[[], None] | None] = {}
        self.echoes: dict[Process, BinaryIO] = {}  # whose output is copied where (`start(echo=...)`)
        self.exits = contextlib.ExitStack()

    def __enter__(self) -> Stack:
        for signum in self.signals:  # restored last, after every process has stopped
            self.exits.callback(signal.signal, signum, signal.signal(signum, _raise_interrupt))
        return self

    def __exit__(self, *exc) -> None:
        # A second Ctrl-C must not cut the shutdown short and leave orphans behind.
        for signum in self.signals:
            signal.signal(signum, signal.SIG_IGN)
        for out in set(self.echoes.values()):  # end a progress bar's line before the shutdown's
            out.write(b"\n")
            out.flush()
        self.exits.close()

    def start(self, proc: Process, *, restart: bool = False, wait: bool = True, once: bool = False,
              then: Callable[[], None] | None = None, echo: BinaryIO | None = None,
              max_rss: int | None = None) -> Process:
        """Launch `proc` and, unless `wait` is false, wait until it is ready; with `restart`,
        `check` launches it again whenever it dies, and also, with `max_rss`, whenever its
        memory passes that many bytes. With `once` it is a job: an exit with code 0 means its
        work is done, it leaves the stack and `then` is called. With `echo`, `check` copies what
        it writes to its log there too (the terminal, for a job a person waits on)."""
        if max_rss is not None and not restart:
            raise ValueError("max_rss restarts the process: it needs restart=True")
        self.processes.append(proc)
        self.exits.callback(proc.stop)
        proc.launch()
        if restart:
            self.restarts[proc] = _Restarts(started_at=time.monotonic())
        if max_rss is not None:
            self.bounds[proc] = max_rss
        if once:
            self.jobs[proc] = then
        if echo is not None:
            self.echoes[proc] = echo
        return proc.wait_ready() if wait else proc

    # Each process's log (var/log/<name>.log) is rotated once over `log_max_bytes`, keeping
    # `log_keep` older generations: at most 40 MB a process, whatever it logs.
    log_max_bytes, log_keep = 10 * 2**20, 3

    def watch(self) -> None:
        """Block until we are interrupted, restarting what may restart (see `check`) and
        rotating logs (`rotate_logs`)."""
        while True:
            self.check()
            self.rotate_logs()
            time.sleep(0.5)

    def rotate_logs(self) -> int:
        """Rotate every log past its size (`Process.rotate_log`); how many were."""
        rotated = [p for p in self.processes
                   if p.rotate_log(max_bytes=self.log_max_bytes, keep=self.log_keep)]
        for proc in rotated:
            log.info("rotated %s", proc.log_path)
        return len(rotated)

    # How often `check` reads the memory of the processes that have a bound.
    bounds_check_s = 5.0

    def check(self) -> None:
        """Restart a restartable child that died, once its backoff has passed, or that holds
        more memory than its bound; raise if any other child died, or a restartable one keeps
        failing fast."""
        now = time.monotonic()
        self.echo_output()
        if now - self.bounds_checked_at >= self.bounds_check_s:
            self.bounds_checked_at = now
            self.enforce_bounds()
        for proc in list(self.processes):
            code = proc.poll()
            if code is None:
                self._ready_again(proc)
                continue
            if code == 0 and proc in self.jobs:
                self._done(proc)
                continue
            restarts = self.restarts.get(proc)
            if restarts is None:
                raise StackError(f"{proc.name} (pid {proc.pid}) exited with code {code}\n{proc.log_tail()}")
            if restarts.due_at is None:  # just found dead: schedule the restart
                fast = now - restarts.started_at < self.fast_failure_s
                restarts.fast_failures = restarts.fast_failures + 1 if fast else 0
                if restarts.fast_failures >= self.max_fast_failures:
                    raise StackError(f"{proc.name} died {restarts.fast_failures} times within "
                                     f"{self.fast_failure_s:.0f} s of starting; giving up\n{proc.log_tail()}")
                delay = min(self.backoff_s * 2 ** max(restarts.fast_failures - 1, 0), self.max_backoff_s)
                restarts.due_at = now + delay
                log.warning("%s (pid %s) exited with code %s; restarting in %.0f s", proc.name, proc.pid,
                            code, delay)
            elif now >= restarts.due_at:
                self._launch_again(proc)

    def enforce_bounds(self) -> list[Process]:
        """Restart each running process that holds more memory than its bound (`start`'s
        `max_rss`): for a service with no retention of its own, the demo's in-memory Kafka.
        Returns those restarted."""
        over = [(proc, rss) for proc, bound in self.bounds.items()
                if proc.poll() is None and (rss := proc.rss()) > bound]
        for proc, rss in over:
            log.warning("%s (pid %s) holds %.0f MB, over its bound of %.0f MB: restarting it", proc.name,
                        proc.pid, rss / 2**20, self.bounds[proc] / 2**20)
            self._launch_again(proc)
        return [proc for proc, _ in over]

    def _launch_again(self, proc: Process) -> None:
        proc.launch()  # stops a running one first
        restarts = self.restarts[proc]
        restarts.started_at, restarts.due_at, restarts.awaiting_ready = time.monotonic(), None, True

    def _ready_again(self, proc: Process) -> None:
        """A process launched again by `check` gets its `on_ready` once it answers."""
        restarts = self.restarts.get(proc)
        if restarts is None or not restarts.awaiting_ready or (proc.check and not quietly(proc.check)):
            return
        try:
            proc.on_ready()
        except Exception as exc:  # a broker still settling: again at the next check
            log.warning("%s (pid %s) is up again, but: %s", proc.name, proc.pid, exc)
            return
        restarts.awaiting_ready = False

    def echo_output(self) -> None:
        for proc, out in self.echoes.items():
            if chunk := proc.new_output():
                out.write(chunk)
                out.flush()

    def _done(self, proc: Process) -> None:
        """A job that finished its work: the rest of its output, then out of the stack."""
        self.echo_output()
        proc.stop()  # reaped now, so the stack's exit has nothing of it to stop
        self.processes.remove(proc)
        then = self.jobs.pop(proc)
        self.restarts.pop(proc, None)
        self.echoes.pop(proc, None)
        log.info("%s finished", proc.name)
        if then is not None:
            then()

    def relaunch(self, proc: Process) -> Process:
        """Stop a running process of the stack and launch it again (with what changed in it)."""
        proc.launch()  # stops the running one first
        if proc in self.restarts:
            self.restarts[proc] = _Restarts(started_at=time.monotonic(), awaiting_ready=True)
        return proc

    def table(self) -> str:
        rows = [("NAME", "PID", "ADDRESS", "LOG")]
        rows += [(name, "(running already)", address, "-") for name, address in self.external]
        rows += [(p.name, str(p.pid), p.address,
                  str(p.log_path.relative_to(ROOT) if p.log_path.is_relative_to(ROOT) else p.log_path))
                 for p in self.processes]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                         for row in rows)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)
