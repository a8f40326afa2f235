"""Bytes moved between workers for the halo, from distributed's own transfer log.

Runs the batch runner's zarr-to-zarr write graph on a LocalCluster of 2 worker processes and
sums every transfer recorded in the workers' ``transfer_incoming_log``, by kind of task, against
the halo faces the computation needs (one face of thickness 1 per neighbour relation per
differentiated dim). Run::

    python benchmarks/bench_transfer.py
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import dask
import numpy as np
import xarray as xr
import yaml

from daskgrad.batch import runner
from daskgrad.batch.cluster import open_client
from daskgrad.batch.config import load_config_text

SHAPE = (128, 512, 512)
CHUNKS = (32, 128, 128)


def needed_face_bytes(shape, chunks, itemsize=8) -> int:
    """Bytes of the faces the kernels need: each interior block boundary, both ways."""
    grid = [s // c for s, c in zip(shape, chunks)]
    total = 0
    for axis in range(len(shape)):
        face = itemsize * int(np.prod([c for i, c in enumerate(chunks) if i != axis]))
        boundaries = (grid[axis] - 1) * int(np.prod([g for i, g in enumerate(grid) if i != axis]))
        total += 2 * boundaries * face  # one face each way across every boundary
    return total


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in.zarr"
        rng = np.random.default_rng(0)
        xr.Dataset({"f": (("z", "y", "x"), rng.standard_normal(SHAPE))}).chunk(
            dict(zip("zyx", CHUNKS))
        ).to_zarr(inp, zarr_format=3, consolidated=False)
        cfg = load_config_text(
            yaml.safe_dump(
                {
                    "input": {"path": str(inp)},
                    "output": {"path": str(Path(tmp) / "out.zarr")},
                    "cluster": {"kind": "local", "n_workers": 2, "memory_limit": "2GiB"},
                }
            )
        )
        with (
            dask.config.set({"distributed.admin.low-level-log-length": 10**6}),
            open_client(cfg.cluster) as client,
        ):
            p = runner.plan(cfg)
            missing, _ = runner.prepare_store(p)
            runner.execute(runner.write_graph(p, missing), client, progress=False)
            logs = client.run(lambda dask_worker: list(dask_worker.transfer_incoming_log))
    moved: dict[str, int] = {}
    for entry in itertools.chain.from_iterable(logs.values()):
        for key, nbytes in entry["keys"].items():
            name = key[0] if isinstance(key, tuple) else str(key)
            kind = name.split("-")[0] + "-" + name.split("-")[1] if "-" in name else name
            moved[kind] = moved.get(kind, 0) + int(nbytes)
    needed = needed_face_bytes(SHAPE, CHUNKS)
    total = sum(moved.values())
    print(f"input {SHAPE} float64, chunks {CHUNKS}, 2 worker processes\n")
    print("| task kind | bytes moved between workers |")
    print("|---|---:|")
    for kind, nbytes in sorted(moved.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {nbytes:,} |")
    print(
        f"\nhalo faces needed: {needed:,} bytes; moved in total: {total:,} bytes "
        f"({total / needed:.2f}x the faces needed)"
    )


if __name__ == "__main__":
    main()
