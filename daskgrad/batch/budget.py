"""Memory budgets: what one block costs, what a worker holds, how many blocks a tile may own.

A worker (a distributed worker process, or this process under ``kind: threads``) holds, at its
peak:

* its resting memory: the interpreter with numpy, dask, zarr and xarray imported, measured on
  each worker once it has imported them (115-125 MiB here), plus :data:`SLACK` for allocator
  slack, codec buffers and the graph in flight; before a worker exists (``validate``), 150 MiB;
* per thread, the block it is working on: the input block, its outputs until they are written,
  and the compressed copy of one output (:attr:`BlockCost.per_thread`);
* the input blocks of the tile it is computing that are read but not yet finished: at most the
  tile's own blocks (blocks that only border the tile are read for their faces and freed at
  once, so they never add up), and in a streamed column the plane handed to the next tile.

Tiles are sized so that the sum stays below a fraction of the worker's limit: below
distributed's pause threshold (80 %) for a worker, below the budget itself for threads.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PROCESS_BASELINE",
    "SLACK",
    "THREADS_FRACTION",
    "WORKER_FRACTION",
    "BlockCost",
    "WorkerMemory",
    "configured_worker",
    "measured_worker",
    "resident_here",
    "size_text",
    "warmed_resident",
]

PROCESS_BASELINE = 150 * 2**20
"""Resident memory assumed for a worker process that has not been measured (see the module doc)."""

SLACK = 32 * 2**20
"""Added to a measured resting memory: allocator slack, codec buffers, the graph in flight."""

WORKER_FRACTION = 0.6
"""Share of a distributed worker's ``memory_limit`` a tile may fill: distributed pauses a worker
at 80 % (and restarts it at 95 %); the margin absorbs allocator slack and codec buffers.
Measured: workers of 300 MiB planned to 70 % peaked at 71 %, a thin margin below the pause."""

THREADS_FRACTION = 0.85
"""Share of a ``kind: threads`` budget a tile may fill: the budget caps the whole process."""


def size_text(n: float) -> str:
    """Bytes as a short human figure.

    Examples
    --------
    >>> size_text(3 * 2**20), size_text(1536 * 2**20), size_text(512)
    ('3.0 MiB', '1.5 GiB', '512 B')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns at TiB


@dataclass(frozen=True)
class BlockCost:
    """The memory of one block position of one input variable.

    Attributes
    ----------
    in_bytes
        One input block (decoded).
    out_bytes
        One output block (every output of this input has the block's shape).
    outputs
        Outputs per input block (the dims differentiated).

    Examples
    --------
    A float32 block of 16 MiB differentiated along three dims:

    >>> cost = BlockCost(in_bytes=16 * 2**20, out_bytes=16 * 2**20, outputs=3)
    >>> size_text(cost.per_thread)
    '80.0 MiB'
    """

    in_bytes: int
    out_bytes: int
    outputs: int

    @property
    def per_thread(self) -> int:
        """A thread's working set: the input block, its outputs and one compressed copy."""
        return self.in_bytes + (self.outputs + 1) * self.out_bytes


@dataclass(frozen=True)
class WorkerMemory:
    """The memory of one worker and how much of it tiles may use.

    Attributes
    ----------
    limit
        The worker's memory limit in bytes (for ``kind: threads``, the run's budget).
    threads
        Threads computing blocks at once in that worker.
    baseline
        Resident memory of the worker before it holds any block.
    fraction
        Share of ``limit`` the worker may fill.

    Examples
    --------
    A 768 MiB worker with one thread, on 16 MiB float32 blocks differentiated along 3 dims:

    >>> w = WorkerMemory(limit=768 * 2**20, threads=1, baseline=160 * 2**20, fraction=0.7)
    >>> cost = BlockCost(16 * 2**20, 16 * 2**20, 3)
    >>> w.capacity(cost)
    18
    >>> size_text(w.least(cost))
    '365.7 MiB'
    """

    limit: int
    threads: int
    baseline: int
    fraction: float

    def _fixed(self, cost: BlockCost) -> int:
        return self.baseline + self.threads * cost.per_thread

    def capacity(self, cost: BlockCost) -> int:
        """Input blocks one tile may own on this worker; below 1 nothing fits."""
        free = self.limit * self.fraction - self._fixed(cost)
        return int(free // max(1, cost.in_bytes))

    def least(self, cost: BlockCost) -> int:
        """The smallest ``limit`` that holds a tile of one block."""
        return math.ceil((self._fixed(cost) + cost.in_bytes) / self.fraction)

    def explain(self, cost: BlockCost) -> str:
        """What the least memory is made of, for error messages."""
        threads = f"{self.threads} thread{'s' if self.threads != 1 else ''}"
        return (
            f"{size_text(self.baseline)} for the process, {size_text(cost.per_thread)} for "
            f"each of its {threads} (an input block of {size_text(cost.in_bytes)}, its "
            f"{cost.outputs} output block(s) of {size_text(cost.out_bytes)} and a compressed "
            f"copy) and one block of a tile, below {self.fraction:.0%} of the limit"
        )


def _machine_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total)


def resident_here() -> int:
    """This process's resident memory in bytes, the block kernel's compiled code loaded."""
    import psutil

    from daskgrad.core import compiled

    compiled.load()  # numba's code (where installed) is resident memory the blocks do not free

    return int(psutil.Process().memory_info().rss)


def warmed_resident() -> int:
    """Resident memory of a worker once it has imported what a block task imports.

    Run on every worker (``client.run``) before sizing tiles: a fresh worker has not imported
    zarr, xarray and daskgrad yet, so its resting memory would read 50 MiB too low.
    """
    from daskgrad.batch.warm import warm_imports

    warm_imports()
    return resident_here()


def configured_worker(cluster: Any) -> WorkerMemory | None:
    """One worker's memory where the config fixes it, before anything starts; else None.

    ``threads``: the run's budget in this process (``auto``: half the machine's memory), with
    this process's present resident memory as its baseline. ``local`` with a size, and
    job-queue clusters (a job's memory and cores shared by its worker processes; one process
    per job when ``processes`` is unset). ``address`` and ``local`` with ``auto`` are known only
    once the cluster runs (:func:`measured_worker`).

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> w = configured_worker(NS(kind="local", memory_limit="2GiB", threads_per_worker=2, jobqueue=None))
    >>> (w.limit, w.threads, w.fraction)
    (2147483648, 2, 0.6)
    """
    from dask.utils import parse_bytes

    kind = cluster.kind
    if kind == "threads":
        limit = (
            _machine_memory() // 2
            if cluster.memory_limit == "auto"
            else int(parse_bytes(cluster.memory_limit))
        )
        threads = cluster.n_workers * cluster.threads_per_worker
        return WorkerMemory(limit, threads, resident_here() + SLACK, THREADS_FRACTION)
    if kind == "local" and cluster.memory_limit != "auto":
        limit = int(parse_bytes(cluster.memory_limit))
        return WorkerMemory(limit, cluster.threads_per_worker, PROCESS_BASELINE, WORKER_FRACTION)
    jq = getattr(cluster, "jobqueue", None)
    if jq is not None:
        processes = jq.processes or 1
        threads = max(1, jq.cores // processes)
        limit = int(parse_bytes(jq.memory)) // processes
        return WorkerMemory(limit, threads, PROCESS_BASELINE, WORKER_FRACTION)
    return None


def measured_worker(
    infos: Mapping[str, Mapping[str, Any]], resident: Mapping[str, int] | None = None
) -> WorkerMemory | None:
    """The tightest worker of a running cluster, from the scheduler's worker records.

    The smallest ``memory_limit`` (a worker without one counts its host's memory shared by the
    workers there), the most threads, and as resting memory the largest of ``resident``
    (:func:`warmed_resident` on each worker) plus :data:`SLACK`; without it, the scheduler's
    figure, at least :data:`PROCESS_BASELINE`. None when no worker has joined yet.

    Examples
    --------
    >>> infos = {
    ...     "tcp://a": {"memory_limit": 2**30, "nthreads": 2, "metrics": {"memory": 90 * 2**20}},
    ...     "tcp://b": {"memory_limit": 2**31, "nthreads": 1, "metrics": {"memory": 200 * 2**20}},
    ... }
    >>> w = measured_worker(infos)
    >>> (w.limit == 2**30, w.threads, w.baseline == 200 * 2**20)
    (True, 2, True)
    """
    if not infos:
        return None
    hosts = Counter(str(w.get("host", "")) for w in infos.values())
    limits = []
    for w in infos.values():
        limit = int(w.get("memory_limit") or 0)
        limits.append(limit or _machine_memory() // max(1, hosts[str(w.get("host", ""))]))
    threads = max(int(w.get("nthreads") or 1) for w in infos.values())
    if resident:
        baseline = max(resident.values()) + SLACK
    else:
        seen = max(int((w.get("metrics") or {}).get("memory") or 0) for w in infos.values())
        baseline = max(PROCESS_BASELINE, seen)
    return WorkerMemory(min(limits), threads, baseline, WORKER_FRACTION)
