"""One child process of the local stack as a mirakuru executor, and the helpers around it."""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import mirakuru.base
from dotenv import dotenv_values
from mirakuru import Executor
from mirakuru.exceptions import ProcessExitedWithError, ProcessFinishedWithError, TimeoutExpired

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LOG_DIR = VAR / "log"
STOP_S = 15.0  # after SIGTERM, how long a process group has before SIGKILL

log = logging.getLogger("stack")

# mirakuru's exit hook SIGKILLs every process whose marker *contains* this process's PID as a
# substring, so on a shared machine it can reach another session's children (PID 812 matches
# 18120). Our stacks stop their own processes, each by its executor's unique marker.
atexit.unregister(mirakuru.base.cleanup_subprocesses)


class StackError(RuntimeError):
    """A service could not start; the message says what to do."""


class Process(Executor):
    """One child process: its own session (mirakuru's setsid), PID kept, output appended to
    `<log_dir>/<name>.log`, ready once `check()` is true (no `check`: once it runs).

    `launch` starts it without waiting, so several can start together; `wait_ready` waits
    up to `ready_s` from the call; `start` does both, as mirakuru's executors do. `stop`
    sends SIGTERM to the process group and SIGKILL after `STOP_S`."""

    def __init__(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 port: int | None = None, check: Callable[[], bool] | None = None, ready_s: float = 30.0,
                 log_dir: Path = LOG_DIR):
        super().__init__(list(argv), cwd=str(ROOT), timeout=STOP_S, envvars=dict(env or {}),
                         stdin=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.name, self.port, self.check, self.ready_s = name, port, check, ready_s
        self.log_path = Path(log_dir) / f"{name}.log"
        self.read_upto = 0  # how far `new_output` has read the log

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}" if self.port else "-"

    def poll(self) -> int | None:
        return self.process.poll() if self.process else None

    def pre_start_check(self) -> bool:
        return self.port is not None and not port_is_free(self.port)

    def after_start_check(self) -> bool:
        if self.check is None:
            return True
        if self.process.poll() is not None:  # mirakuru itself stops waiting only on a non-zero exit
            raise ProcessExitedWithError(self, 0)
        return quietly(self.check)

    def launch(self) -> Process:
        """Start without waiting; one that ran before is reaped first, with what it left."""
        if self.process is not None:
            self.stop()
        if self.pre_start_check():
            raise StackError(f"{self.name}: port {self.port} is already in use")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            out.write(f"\n=== {time.strftime('%F %T')} {self.command}\n".encode())
            out.flush()
            self.read_upto = out.tell()
            self._stdout = out  # the constructor's `stdout`, a fresh handle per run; Popen dups it
            super(Executor, self).start()  # SimpleExecutor.start: Popen only, no checks
        log.info("started %s pid %s %s", self.name, self.pid, self.address)
        return self

    def wait_ready(self) -> Process:
        self._endtime = time.time() + self.ready_s  # mirakuru's deadline, counted from now
        try:
            self.wait_for(self.check_subprocess)  # on timeout mirakuru kills the process
        except ProcessExitedWithError as exc:
            raise StackError(f"{self.name}: exited with code {exc.exit_code}\n{self.log_tail()}") from None
        except TimeoutExpired:
            raise StackError(f"{self.name}: not ready after {self.ready_s:.0f} s\n"
                             f"{self.log_tail()}") from None
        self.on_ready()
        return self

    def start(self) -> Process:
        return self.launch().wait_ready()

    def on_ready(self) -> None:
        """What each launch needs once the process answers (`wait_ready`, and the supervisor
        after a restart): nothing here; a broker that forgets its topics makes them again."""

    def rss(self) -> int:
        """Resident memory of the process and its children, in bytes (0 when it is not running)."""
        import psutil

        if self.pid is None:  # psutil.Process(None) would be this process, the supervisor
            return 0
        try:
            root = psutil.Process(self.pid)
            return sum(p.memory_info().rss for p in (root, *root.children(recursive=True)))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return 0

    def stop(self, *args, **kwargs) -> Process:
        """Stop it if it runs, and reap it if it died; an unusual exit code is logged, not raised."""
        pid, running, code = self.pid, self.running(), None
        try:
            super().stop(*args, **kwargs)
        except ProcessFinishedWithError as exc:  # mirakuru raises on any exit but 0 and -SIGTERM
            code = exc.exit_code
        if running:
            log.info("stopped %s pid %s%s", self.name, pid, f" (exit {code})" if code else "")
        return self

    def rotate_log(self, *, max_bytes: int, keep: int) -> bool:
        """`log_rotate` on this process's log, which it may be writing to as we copy."""
        return log_rotate(self.log_path, max_bytes=max_bytes, keep=keep)

    def env_update(self, values: Mapping[str, str]) -> None:
        """Change the environment its next launch gets."""
        self._envvars.update(values)  # mirakuru's: what `launch` passes to Popen, over os.environ

    def new_output(self, limit: int = 2**20) -> bytes:
        """What it wrote to its log since the last call (since its launch at first), at most
        `limit` bytes; from the start of the log again after a rotation truncated it."""
        try:
            with open(self.log_path, "rb") as log_file:
                if os.fstat(log_file.fileno()).st_size < self.read_upto:
                    self.read_upto = 0
                log_file.seek(self.read_upto)
                chunk = log_file.read(limit)
        except FileNotFoundError:
            return b""
        self.read_upto += len(chunk)
        return chunk

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"--- last lines of {self.log_path}:\n" + "\n".join(text)


def log_rotate(path: Path, *, max_bytes: int, keep: int) -> bool:
    """Once `path` is over `max_bytes`: `path`.1 becomes .2 and so on, the oldest past `keep`
    dropped; `path` is copied to `path`.1 and truncated in place. Copy-truncate, because the
    writer keeps its file open: it was opened with O_APPEND (`launch`), so its next write lands
    at the new end, offset 0, not where it stood (which would leave a hole of NULs). A line
    written between the copy and the truncation is lost; that is the price of not restarting
    the writer. True when it rotated."""
    path = Path(path)
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for n in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    os.truncate(path, 0)
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just gave out: bind to 0 and read it back."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def dev_env() -> dict[str, str]:
    """`.env.dev` (what settings.py loads), the environment winning."""
    return {**{k: v or "" for k, v in dotenv_values(ROOT / ".env.dev").items()}, **os.environ}


def quietly(check: Callable[..., bool], *args) -> bool:
    """A readiness check that counts any exception as "not ready"."""
    try:
        return check(*args)
    except Exception as exc:  # not up yet: connection refused, timeouts, ...
        log.debug("not ready: %s", exc)
        return False


def wait_until(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll `check` for something that is not our process (a service elsewhere, a lock)."""
    deadline = time.monotonic() + timeout
    while not quietly(check):
        if time.monotonic() > deadline:
            raise StackError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(0.1)
