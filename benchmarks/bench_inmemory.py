"""In-memory benchmark: daskgrad.gradient against dask.array.gradient, numpy and torch.

3-D float64 array of 0.5 GiB, chunked (64, 256, 256), gradient along all dims, dask's threaded
scheduler with every core. The dask contenders keep their results as chunks in memory
(``dask.persist``), as dask users hold arrays. Two inputs: chunks held as arrays of their own
(what a persisted dask array or a zarr read holds), and chunks that are strided views into one
numpy array (``da.from_array``), which every contender reads more slowly. One more row shows
daskgrad with the chunks concatenated into numpy arrays (``dask.compute``), which adds the same
copy to any dask code. Also times the write bound, allocating and filling one output per dim
(the least any implementation must do), twice: as three numpy arrays filled by one thread, and
chunk by chunk on every core through the same scheduler as daskgrad (the tighter bound on a
machine whose page faults run in parallel). Contenders run in rounds, each round in a rotated
order, best time of ``--repeat`` rounds; memory is the peak allocated (``tracemalloc``) in one
more, untimed, run. Run::

    python benchmarks/bench_inmemory.py [--size-gib 0.5] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys

import dask
import dask.array as da
import numpy as np
from _measure import measure_rounds, print_table, same_allocator_for_everyone

import daskgrad
import daskgrad.core.compiled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=0.5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="keep glibc's default malloc thresholds for every contender",
    )
    args = parser.parse_args()
    same_allocator_for_everyone(sys.argv)

    nz = max(64, round(args.size_gib * 2**30 / (512 * 512 * 8) / 64) * 64)
    shape = (nz, 512, 512)
    chunks = (64, 256, 256)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    dx = da.from_array(x, chunks=chunks)
    # Chunks as arrays of their own, as dask holds them after persist() or a zarr read.
    (owned,) = dask.persist(dx.map_blocks(np.copy), scheduler="threads")
    cores = os.cpu_count()
    print(f"array {shape} float64 = {x.nbytes / 2**30:.2f} GiB, chunks {chunks}, {cores} cores\n")

    def run_daskgrad(arr=owned):
        return dask.persist(*daskgrad.gradient(arr), scheduler="threads")

    def run_daskgrad_numpy():
        return dask.compute(*daskgrad.gradient(owned), scheduler="threads")

    def run_dask(arr=owned):
        return dask.persist(*da.gradient(arr), scheduler="threads")

    def run_numpy():
        return np.gradient(x)

    def run_daskgrad_numpy_kernel():
        # The same graph with the array-module kernel (what runs without numba).
        os.environ["DASKGRAD_KERNEL"] = "numpy"
        try:
            return dask.persist(*daskgrad.gradient(owned), scheduler="threads")
        finally:
            del os.environ["DASKGRAD_KERNEL"]

    def copy_bound():
        # The gradient's memory traffic without its arithmetic: the input read and three new
        # outputs written, by one thread.
        outs = [np.empty_like(x) for _ in range(x.ndim)]
        for o in outs:
            np.copyto(o, x)
        return outs

    def write_bound():
        outs = [np.empty_like(x) for _ in range(x.ndim)]
        for o in outs:
            o.fill(1.0)
        return outs

    def filled_like(block):
        out = np.empty_like(block)
        out.fill(1.0)
        return out

    def write_bound_chunks():
        # The same outputs as daskgrad's, chunk by chunk on both cores through the same scheduler.
        outs = [owned.map_blocks(filled_like, name=f"write-bound-{d}") for d in range(owned.ndim)]
        return dask.persist(*outs, scheduler="threads")

    # Correctness first: the contenders must agree bit for bit.
    ours = run_daskgrad_numpy()
    ref = run_numpy()
    assert all(np.array_equal(a, b) for a, b in zip(ours, ref)), "daskgrad != numpy.gradient"
    del ours, ref

    ours_name, dask_name = "daskgrad.gradient (threads)", "dask.array.gradient (threads)"
    numpy_kernel_name = "daskgrad.gradient (threads), numpy kernel (no numba)"
    copy_name = "one-thread copy (input into three new outputs)"
    if not daskgrad.core.compiled.enabled():
        print("numba is not installed: the first daskgrad row runs the numpy kernel too\n")
    view_ours, view_dask = f"{ours_name}, view chunks", f"{dask_name}, view chunks"
    contenders = {
        ours_name: run_daskgrad,
        numpy_kernel_name: run_daskgrad_numpy_kernel,
        dask_name: run_dask,
        view_ours: lambda: run_daskgrad(dx),
        view_dask: lambda: run_dask(dx),
        "daskgrad.gradient, concatenated to numpy": run_daskgrad_numpy,
        "numpy.gradient": run_numpy,
        copy_name: copy_bound,
        "write bound (fill one output per dim)": write_bound,
        "write bound, chunked on both cores": write_bound_chunks,
    }
    if not args.no_torch:
        try:
            import torch

            tx = torch.from_numpy(x)
            contenders["torch.gradient"] = lambda: torch.gradient(tx)
        except ImportError:
            print("torch not installed: skipping torch.gradient\n")
    rows = measure_rounds(contenders, args.repeat)
    for row in rows:
        if row.name == "torch.gradient":
            row.peak_bytes = None  # torch's own allocator is invisible to tracemalloc
    print_table(rows, ours_name, "", memory="peak allocated, results included")
    t = {r.name: r.seconds for r in rows}
    copy = t[copy_name]
    print()
    for label, ours, theirs in [
        ("own chunks", ours_name, dask_name),
        ("numpy kernel", numpy_kernel_name, dask_name),
        ("view chunks", view_ours, view_dask),
    ]:
        print(
            f"{label:>12}: dask.array.gradient / daskgrad = {t[theirs] / t[ours]:.2f}x, "
            f"numpy.gradient / daskgrad = {t['numpy.gradient'] / t[ours]:.2f}x, "
            f"daskgrad / one-thread copy = {t[ours] / copy:.2f}x"
        )
    # Bytes per element: the input read once (8) and three outputs written (24); plain stores
    # also read each output line before writing it (write-allocate: 24 more).
    elements = x.size
    for name in (ours_name, copy_name, "write bound, chunked on both cores"):
        rate = 32 * elements / t[name] / 2**30
        print(
            f"{name}: {t[name] / elements * 1e9:.2f} ns per element, {rate:.1f} GiB/s of "
            "the 32 bytes per element that must move"
        )


if __name__ == "__main__":
    main()
