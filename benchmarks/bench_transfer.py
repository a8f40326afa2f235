"""Bytes moved between workers for the halo, from distributed's own transfer log.

The library path on a user's own cluster: ``daskgrad.gradient`` (and ``dask.array.gradient``)
of a float64 zarr input along every dim, results reduced to sums, on a
``distributed.LocalCluster`` of 2 worker processes with default settings (no scheduler
tweaks), a fresh cluster for every run. Sums every transfer recorded in the workers'
``transfer_incoming_log``, by kind of task, against the halo faces the computation needs
(one face of thickness 1 per neighbour, per block, per differentiated dim). Three cases: the
3-D input of the issue (256^3 in (64, 128, 128) chunks), a 2-D and a 1-D one. ``--runner``
measures the batch runner's zarr-to-zarr write graph instead (its scheduler settings
included). Prints the tables that go into docs/benchmarks.md. Run::

    python benchmarks/bench_transfer.py [--repeat 3] [--runner]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import dask
import numpy as np

CASES = {
    "3-D": ((256, 256, 256), (64, 128, 128)),
    "2-D": ((2048, 2048), (512, 512)),
    "1-D": ((2**22,), (2**19,)),
}
# What the user's own reduction and the store handle move: not the gradient's traffic.
NOT_GRADIENT = ("sum", "original")


def needed_face_bytes(shape, chunks, itemsize=8) -> int:
    """Bytes of the faces the kernels need: each interior block boundary, both ways."""
    grid = [s // c for s, c in zip(shape, chunks)]
    total = 0
    for axis in range(len(shape)):
        face = itemsize * int(np.prod([c for i, c in enumerate(chunks) if i != axis]))
        boundaries = (grid[axis] - 1) * int(np.prod([g for i, g in enumerate(grid) if i != axis]))
        total += 2 * boundaries * face  # one face each way across every boundary
    return total


def moved_by_kind(logs: dict) -> dict[str, int]:
    """Bytes received by every worker, by kind of task (the key's name without its token)."""
    from dask.utils import key_split

    moved: dict[str, int] = {}
    for entry in itertools.chain.from_iterable(logs.values()):
        for key, nbytes in entry["keys"].items():
            kind = key_split(key)
            moved[kind] = moved.get(kind, 0) + int(nbytes)
    return moved


def library_run(contender: str, path: str) -> tuple[dict[str, int], float]:
    """One run on a fresh 2-process LocalCluster; bytes moved by kind and seconds."""
    import dask.array as da
    from distributed import Client, LocalCluster

    import daskgrad

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        x = da.from_zarr(path)
        grads = daskgrad.gradient(x) if contender == "daskgrad.gradient" else da.gradient(x)
        grads = grads if isinstance(grads, (list, tuple)) else [grads]
        t0 = time.perf_counter()
        dask.compute(*[g.sum() for g in grads])
        seconds = time.perf_counter() - t0
        logs = client.run(lambda dask_worker: list(dask_worker.transfer_incoming_log))
    return moved_by_kind(logs), seconds


def library(repeat: int) -> None:
    import zarr

    print(
        "daskgrad.gradient and dask.array.gradient of a float64 zarr input along every dim, "
        "results reduced to sums, LocalCluster(n_workers=2, threads_per_worker=1) with default "
        f"settings, a fresh cluster per run, {repeat} runs\n"
    )
    rows = []
    kinds_seen: dict[tuple[str, str], dict[str, list[int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for case, (shape, chunks) in CASES.items():
            path = str(Path(tmp) / f"{case}.zarr")
            z = zarr.create_array(path, shape=shape, chunks=chunks, dtype="f8")
            z[...] = np.random.default_rng(0).standard_normal(shape)
            needed = needed_face_bytes(shape, chunks)
            for contender in ("daskgrad.gradient", "dask.array.gradient"):
                grad_bytes, all_bytes, times = [], [], []
                kinds = kinds_seen.setdefault((case, contender), {})
                for _ in range(repeat):
                    moved, seconds = library_run(contender, path)
                    for kind, nbytes in moved.items():
                        kinds.setdefault(kind, []).append(nbytes)
                    grad_bytes.append(
                        sum(n for k, n in moved.items() if not k.startswith(NOT_GRADIENT))
                    )
                    all_bytes.append(sum(moved.values()))
                    times.append(seconds)
                rows.append((case, shape, chunks, contender, needed, grad_bytes, all_bytes, times))
    print(
        "| case | contender | faces needed (bytes) | moved by the gradient, per run (bytes) "
        "| / faces (min-max) | moved in all, sums and store handle included (bytes, max) "
        "| time (s, min-max) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for case, shape, chunks, contender, needed, grad, total, times in rows:
        ratios = [g / needed for g in grad]
        print(
            f"| {case} {shape} in {chunks} | {contender} | {needed:,} | "
            f"{', '.join(f'{g:,}' for g in grad)} | {min(ratios):.2f}-{max(ratios):.2f}x | "
            f"{max(total):,} | {min(times):.2f}-{max(times):.2f} |"
        )
    print("\nBytes moved by kind of task (median over the runs):\n")
    print("| case | contender | kind | bytes |")
    print("|---|---|---|---:|")
    for (case, contender), kinds in kinds_seen.items():
        for kind, values in sorted(kinds.items(), key=lambda kv: -statistics.median(kv[1])):
            print(f"| {case} | {contender} | {kind} | {int(statistics.median(values)):,} |")


def runner_case() -> None:
    """``daskgrad run`` zarr to zarr on an existing 2-worker cluster (``kind: address``, the
    scheduler's default settings): each tile's tasks pinned to one worker."""
    import xarray as xr
    import yaml

    from daskgrad.batch import runner
    from daskgrad.batch.config import load_config_text

    shape, chunks = (128, 512, 512), (32, 128, 128)
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.zarr"
        rng = np.random.default_rng(0)
        xr.Dataset({"f": (("z", "y", "x"), rng.standard_normal(shape))}).chunk(
            dict(zip("zyx", chunks))
        ).to_zarr(inp, zarr_format=3, consolidated=False)
        from distributed import Client, LocalCluster

        with (
            LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="2GiB",
                         host="127.0.0.1", dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            cfg = load_config_text(
                yaml.safe_dump(
                    {
                        "input": {"path": str(inp)},
                        "output": {"path": str(Path(tmp) / "out.zarr")},
                        "cluster": {"kind": "address", "address": cluster.scheduler_address},
                    }
                )
            )
            runner.run(cfg, progress=False, echo=lambda line: None)
            logs = client.run(lambda dask_worker: list(dask_worker.transfer_incoming_log))
    moved = moved_by_kind(logs)
    needed = needed_face_bytes(shape, chunks)
    total = sum(moved.values())
    print(f"daskgrad run: input {shape} float64, chunks {chunks}, 2 worker processes\n")
    print("| task kind | bytes moved between workers |")
    print("|---|---:|")
    for kind, nbytes in sorted(moved.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {nbytes:,} |")
    print(
        f"\nhalo faces needed: {needed:,} bytes; moved in total: {total:,} bytes "
        f"({total / needed:.2f}x the faces needed)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runner", action="store_true", help="the batch runner's graph")
    args = parser.parse_args()
    if args.runner:
        runner_case()
    else:
        library(args.repeat)


if __name__ == "__main__":
    main()
