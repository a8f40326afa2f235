"""Shared timing and peak-memory helpers for the benchmark scripts."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import psutil


@dataclass
class Measurement:
    name: str
    seconds: float
    # Resident memory above the level before the run (measure), or bytes allocated
    # (measure_rounds); None where neither can see the allocations.
    peak_bytes: int | None


class _PeakSampler:
    """Samples the process's RSS every few milliseconds in a background thread."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def measure(name: str, fn: Callable[[], object], repeat: int = 3) -> Measurement:
    """Best wall time of ``repeat`` runs and the peak memory of the first run."""
    best = float("inf")
    peak = 0
    for i in range(repeat):
        gc.collect()
        with _PeakSampler() as sampler:
            t0 = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - t0
        del result
        best = min(best, elapsed)
        if i == 0:
            peak = sampler.peak - sampler.base
    return Measurement(name, best, peak)


def peak_allocated(fn: Callable[[], object]) -> int:
    """Peak bytes allocated while ``fn`` runs (result included), by ``tracemalloc``.

    numpy and dask's buffers are traced from every thread. Unlike resident memory, this does
    not depend on what the allocator kept from earlier runs. Untimed: tracing slows Python.
    """
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak


def measure_rounds(
    contenders: dict[str, Callable[[], object]], repeat: int = 3
) -> list[Measurement]:
    """Best wall time of each contender over ``repeat`` rounds, and its allocation peak.

    Every round runs all contenders, each round in a rotated order, so none always follows
    the same neighbour (page cache, allocator state and CPU frequency drift are shared).
    """
    names = list(contenders)
    best = dict.fromkeys(names, float("inf"))
    for rep in range(repeat):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            gc.collect()
            t0 = time.perf_counter()
            result = contenders[name]()
            best[name] = min(best[name], time.perf_counter() - t0)
            del result
    return [Measurement(name, best[name], peak_allocated(contenders[name])) for name in names]


def print_table(
    rows: list[Measurement], reference: str, title: str, memory: str = "peak memory"
) -> str:
    ref = next(r for r in rows if r.name == reference)
    lines = [title, ""] if title else []
    lines += [
        f"| contender | time (s) | {memory} (MiB) | time / daskgrad |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        mib = "n/a" if r.peak_bytes is None else f"{r.peak_bytes / 2**20:.0f}"
        lines.append(f"| {r.name} | {r.seconds:.3f} | {mib} | {r.seconds / ref.seconds:.2f} |")
    text = "\n".join(lines)
    print(text)
    return text


def same_allocator_for_everyone(argv: list[str]) -> None:
    """Re-run this script once with daskgrad's batch malloc settings in the environment.

    ``daskgrad run`` keeps block buffers in the heap (``daskgrad.batch._malloc``); every contender of
    a benchmark runs under the same settings so the comparison is about the computation.
    ``--system-malloc`` skips this.
    """
    import os
    import sys

    from daskgrad.batch._malloc import MALLOC_ENV

    if "--system-malloc" in argv or all(os.environ.get(k) == v for k, v in MALLOC_ENV.items()):
        return
    env = {**os.environ, **MALLOC_ENV}
    os.execve(sys.executable, [sys.executable, *argv], env)
