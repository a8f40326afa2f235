"""Planning at terabyte scale: build and optimize the graph of a virtual 1 TiB array.

The input is a zarr store holding metadata only: float32, shape (4096, 8192, 8192) = 1 TiB,
chunks (64, 512, 512) = 16384 chunks. Times building the three gradient components and
optimizing their graph together (what ``dask.compute`` does before running anything), and
counts tasks per input chunk, for daskgrad and ``dask.array.gradient``. Run::

    python benchmarks/bench_planning.py [--skip-dask]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import dask.array as da
import zarr
from dask.base import collections_to_expr

import daskgrad


def plan(build, x) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    grads = build(x)
    t1 = time.perf_counter()
    graph = collections_to_expr(list(grads), optimize_graph=True).optimize().__dask_graph__()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, len(graph)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-dask", action="store_true", help="time daskgrad only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "virtual.zarr"
        zarr.create_array(str(path), shape=(4096, 8192, 8192), chunks=(64, 512, 512), dtype="f4")
        x = da.from_zarr(str(path))
        print(
            f"virtual input: {x.shape} float32 = {x.nbytes / 2**40:.2f} TiB, {x.npartitions} chunks\n"
        )
        rows = [("daskgrad.gradient", *plan(daskgrad.gradient, x))]
        if not args.skip_dask:
            rows.append(("dask.array.gradient", *plan(lambda a: da.gradient(a), x)))
    print("| contender | build (s) | optimize (s) | total (s) | tasks | tasks per chunk |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, build, optimize, tasks in rows:
        print(
            f"| {name} | {build:.2f} | {optimize:.2f} | {build + optimize:.2f} | {tasks} | "
            f"{tasks / x.npartitions:.2f} |"
        )


if __name__ == "__main__":
    main()
