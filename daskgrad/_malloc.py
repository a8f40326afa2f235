"""glibc malloc settings for batch runs: keep freed block buffers for the next block.

Every block of a run allocates buffers of the same few sizes (the block read, one output per
dim, the compressed chunk). glibc serves allocations that large with ``mmap`` and returns them
with ``munmap`` on free, so every block pays page faults on fresh memory again. Raising the mmap
and trim thresholds keeps those buffers in the heap, where the next block reuses them. One arena
(``MALLOC_ARENA_MAX=1``) makes that heap the main one for every thread: a thread's own arena
grows in 64 MiB heaps that a 32 MiB block barely fits, and measured, kernels running on worker
threads still paid the page faults (33-40 ms per 32 MiB block against 18-21 ms with one arena;
the 1 GiB batch run 5% faster). The lock is taken per allocation, and the buffers here are few
and large. Resident memory then stays at the run's working set (it is not released between blocks); results are
unchanged. Only the ``daskgrad run`` process and the workers it starts are tuned; importing
daskgrad changes nothing.

Examples
--------
>>> sorted(MALLOC_ENV)
['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_']
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["MALLOC_ENV", "tune_this_process"]

log = logging.getLogger("daskgrad")

_THRESHOLD = 1 << 30  # blocks up to 1 GiB stay in the heap

# For processes started after this (worker processes): glibc reads these at start.
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(_THRESHOLD),
    "MALLOC_TRIM_THRESHOLD_": str(_THRESHOLD),
    "MALLOC_ARENA_MAX": "1",
}

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_this_process() -> bool:
    """Apply the settings of :data:`MALLOC_ENV` to the running process (glibc only).

    Returns True when applied, False where the C library is not glibc.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, _THRESHOLD) == 1
    ok = ok and mallopt(_M_ARENA_MAX, 1) == 1
    log.debug("malloc thresholds for block buffers %s", "set" if ok else "not set")
    return ok
