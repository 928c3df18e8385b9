"""While a model trains, freed memory stays in the process for the next step.

A step allocates and frees the same large tensors every time (a neighbourhood's rows, their
gradients, the tables' gradients: 30-70 MB each at dim 256 on Gowalla). glibc's malloc serves
anything over 32 MB, and by default anything over its adaptive threshold, with a fresh mmap
and returns it with munmap on free, so every step faults its memory in again, page by page,
and the kernel zeroes each page: on Gowalla at dim 256 that was 430 of a step's 1,290 ms of
CPU, as system time (docs/benchmarks.md, "A sampled step, profiled").

`freed_memory_kept()` turns mmap off for the block (M_MMAP_MAX = 0: every allocation comes from
the heap) and lets the heap keep up to TRIM_ABOVE bytes of free memory at its top, so a step
reuses the pages the step before freed (on Gowalla at dim 256: 4 ms of system time a step
instead of 430, and a resident set steady at about 0.7 GB above the default's). On the way out
it returns the free pages to the system (`malloc_trim`) and leaves glibc where its adaptive
rule settles in a process that has freed a large block (mmap above 32 MB, the heap trimmed
above 64 MB). The heap's address space stays: later allocations may reuse, and keep, up to the
block's peak, which a long-lived process (the Celery retrain worker) reaches at every retrain
anyway. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)

# mallopt's parameters (malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4
# After the block: where glibc's adaptive thresholds settle (DEFAULT_MMAP_THRESHOLD_MAX on
# 64-bit, the trim threshold twice it), and its default number of mmaps.
AFTER_MMAP_ABOVE, AFTER_TRIM_ABOVE, AFTER_MMAP_MAX = 32 * 2**20, 64 * 2**20, 65536
# The most free memory the heap keeps at its top inside the block: mallopt takes an int.
TRIM_ABOVE = 2**31 - 1

_lock = threading.Lock()
_depth = 0


def _glibc():
    """glibc's handle, or None where malloc is another's (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018  (raises AttributeError outside glibc)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def _set(values: dict[int, int]) -> None:
    for parameter, value in values.items():
        if not _LIBC.mallopt(parameter, value):
            log.warning("mallopt(%d, %d) refused", parameter, value)


@contextlib.contextmanager
def freed_memory_kept():
    """The block's freed memory is kept for its next allocations; given back at its end.
    Nested or concurrent blocks share one setting, undone when the last one ends."""
    global _depth
    if _LIBC is None:
        yield
        return
    with _lock:
        _depth += 1
        if _depth == 1:
            _set({M_TRIM_THRESHOLD: TRIM_ABOVE, M_MMAP_MAX: 0})
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _set({M_MMAP_THRESHOLD: AFTER_MMAP_ABOVE, M_TRIM_THRESHOLD: AFTER_TRIM_ABOVE,
                      M_MMAP_MAX: AFTER_MMAP_MAX})
                _LIBC.malloc_trim(0)
