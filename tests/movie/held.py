"""A request held at one of `movie.tracking.faults.stall_point`'s points, in a thread of its own, as a
stalled database or network would hold it, until the test lets it go on. Tests that use it
need a transactional database (`django_db(transaction=True, serialized_rollback=True)`: the
thread writes through its own connection; the rollback puts back the rows migrations wrote)."""

from __future__ import annotations

import threading

from django.db import connections

ARRIVE_S = 30  # a request reaches its point in milliseconds; this only bounds a broken test


class Held:
    def __init__(self, settings, point: str, call, **kwargs):
        self._arrived, self._released = threading.Event(), threading.Event()
        self.result, self.error = None, None
        settings.FAULT_STALL = (point, self._hold)
        self._thread = threading.Thread(target=self._run, args=(call, kwargs), daemon=True)
        self._thread.start()
        if not self._arrived.wait(ARRIVE_S):
            self._released.set()
            raise AssertionError(f"the request never reached {point} (it ended with {self.error!r})")

    def _hold(self) -> None:
        self._arrived.set()
        self._released.wait(2 * ARRIVE_S)

    def _run(self, call, kwargs) -> None:
        try:
            self.result = call(**kwargs)
        except BaseException as exc:  # handed to the test by release()
            self.error = exc
        finally:
            connections.close_all()  # this thread's own connections

    def release(self):
        """Let the request go on; its return value, or what it raised, once it ends."""
        self._released.set()
        self._thread.join(2 * ARRIVE_S)
        assert not self._thread.is_alive(), "the held request did not end"
        return self.error if self.error is not None else self.result
