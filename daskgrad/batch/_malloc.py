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

__all__ = ["MALLOC_ENV", "malloc_env", "threshold_for", "tune_this_process"]

log = logging.getLogger("daskgrad")

_THRESHOLD = 1 << 30  # blocks up to 1 GiB stay in the heap

# For processes started after this (worker processes): glibc reads these at start.
MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(_THRESHOLD),
    "MALLOC_TRIM_THRESHOLD_": str(_THRESHOLD),
    "MALLOC_ARENA_MAX": "1",
}


def threshold_for(memory_limit: int | None) -> int:
    """The thresholds for a process that must keep below ``memory_limit`` bytes.

    Memory kept in the heap still counts as resident: under a tight limit (a distributed
    worker pauses at 80 % of it, whatever the memory is used for) the heap may keep at most a
    sixteenth of the limit unreturned.

    Examples
    --------
    >>> threshold_for(None) == threshold_for(64 * 2**30) == 2**30
    True
    >>> threshold_for(320 * 2**20) // 2**20
    20
    """
    if not memory_limit:
        return _THRESHOLD
    return int(min(_THRESHOLD, memory_limit // 16))


def malloc_env(memory_limit: int | None = None) -> dict[str, str]:
    """:data:`MALLOC_ENV` with thresholds for a process limited to ``memory_limit`` bytes."""
    threshold = str(threshold_for(memory_limit))
    return {**MALLOC_ENV, "MALLOC_MMAP_THRESHOLD_": threshold, "MALLOC_TRIM_THRESHOLD_": threshold}


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_this_process(memory_limit: int | None = None) -> bool:
    """Apply the settings of :func:`malloc_env` to the running process (glibc only).

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
    threshold = threshold_for(memory_limit)
    ok = mallopt(_M_MMAP_THRESHOLD, threshold) == 1 and mallopt(_M_TRIM_THRESHOLD, threshold) == 1
    ok = ok and mallopt(_M_ARENA_MAX, 1) == 1
    log.debug("malloc thresholds for block buffers %s", "set" if ok else "not set")
    return ok
