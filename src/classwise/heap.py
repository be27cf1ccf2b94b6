"""Keep freed memory in the process heap while a hot loop runs.

Every pass of a training or attack step allocates and frees the same large activation
buffers. With glibc's default thresholds the freed memory goes back to the kernel, and the
next pass faults every page in again: on the 2-core VM of benchmarks/ that was ~80,000 page
faults (~320 MB) per PGD-10 step of the MNIST CNN, and it made the first 5x5 convolution 4x
slower (12.4 ms -> 2.8 ms per batch of 128 once the faults were gone).

Inside `heap_kept()` large blocks come from the heap and up to 1 GiB of freed memory stays
there; on leaving, glibc's documented defaults come back and the extra memory is returned
(`malloc_trim`). glibc has no call that turns its dynamic mmap threshold back on, so after a
classwise loop the process keeps those fixed defaults (128 KiB). The setting is process-wide,
so it is scoped to classwise's own loops rather than made on import. It does nothing where the
C library is not glibc (macOS, Windows, musl) and nothing useful under an LD_PRELOADed jemalloc
or tcmalloc, which already keep memory.
"""

from __future__ import annotations

import ctypes
import os
import threading
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
DEFAULT_THRESHOLD = 128 * 1024  # glibc's documented default for both
KEPT_TRIM = 1 << 30
KEPT_MMAP = 32 << 20  # the largest mmap threshold glibc accepts on 64-bit

_lock = threading.Lock()
_depth = 0


def _glibc():
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return None
        return ctypes.CDLL("libc.so.6")
    except (AttributeError, ValueError, OSError):  # no confstr (Windows), not glibc, no libc.so.6
        return None


_libc = _glibc()


@contextmanager
def heap_kept():
    """Re-entrant: only the outermost exit restores the defaults."""
    global _depth
    with _lock:
        if _libc is not None and _depth == 0:
            _libc.mallopt(M_MMAP_THRESHOLD, KEPT_MMAP)
            _libc.mallopt(M_TRIM_THRESHOLD, KEPT_TRIM)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _libc is not None and _depth == 0:
                _libc.mallopt(M_TRIM_THRESHOLD, DEFAULT_THRESHOLD)
                _libc.mallopt(M_MMAP_THRESHOLD, DEFAULT_THRESHOLD)
                _libc.malloc_trim(0)
