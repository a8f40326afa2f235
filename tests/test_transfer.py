"""Bytes moved between workers by ``daskgrad.gradient`` on a user's own cluster.

A real ``distributed.LocalCluster`` of 2 worker processes with default settings (no scheduler
tweaks), zarr inputs on disk, every dim differentiated and the results reduced to sums, as in
``benchmarks/bench_transfer.py``. The count comes from the workers' own transfer logs: whatever
the scheduler decides, only faces may travel, never an input block or a kernel's output, and
never more bytes than the faces the kernels need.
"""

from __future__ import annotations

import itertools

import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from dask.utils import key_split

import daskgrad

# Small blocks make moving one look cheap to the scheduler: the graph alone must prevent it.
CASES = [
    ((32, 48, 40), (8, 16, 20)),
    ((96, 80), (24, 20)),
    ((4096,), (512,)),
]


def _faces_needed(shape, chunks, itemsize=8) -> int:
    grid = [s // c for s, c in zip(shape, chunks)]
    total = 0
    for axis in range(len(shape)):
        face = itemsize * int(np.prod([c for i, c in enumerate(chunks) if i != axis]))
        total += (
            2 * (grid[axis] - 1) * int(np.prod([g for i, g in enumerate(grid) if i != axis])) * face
        )
    return total


@pytest.mark.cluster
def test_only_faces_travel_between_workers(tmp_path):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        for n, (shape, chunks) in enumerate(CASES):
            values = np.random.default_rng(n).standard_normal(shape)
            z = zarr.create_array(
                str(tmp_path / f"{n}.zarr"), shape=shape, chunks=chunks, dtype="f8"
            )
            z[...] = values
            x = da.from_zarr(z)
            client.run(lambda dask_worker: dask_worker.transfer_incoming_log.clear())
            grads = daskgrad.gradient(x)
            dask.compute(*[g.sum() for g in grads])
            logs = client.run(lambda dask_worker: list(dask_worker.transfer_incoming_log))
            moved: dict[str, int] = {}
            for entry in itertools.chain.from_iterable(logs.values()):
                for key, nbytes in entry["keys"].items():
                    moved[key_split(key)] = moved.get(key_split(key), 0) + nbytes
            # Faces, the sums' scalars and the store handle: no block, no kernel output.
            assert set(moved) <= {
                "gradient-faces",
                "gradient-facepairs",
                "sum",
                "sum-partial",
                "original-from-zarr",
            }, (shape, moved)
            faces = moved.get("gradient-faces", 0) + moved.get("gradient-facepairs", 0)
            assert faces <= _faces_needed(shape, chunks), (shape, moved)
            # Workers share the work (a run on one worker would move nothing at all).
            assert all(logs.values()), (shape, logs)
            expected = np.gradient(values)
            expected = [expected] if values.ndim == 1 else expected
            for got, want in zip(dask.compute(*grads), expected):
                assert got.tobytes() == want.tobytes()


@pytest.mark.cluster
def test_a_batch_run_moves_no_block_between_workers(tmp_path):
    """``daskgrad run`` on an existing 2-worker cluster (scheduler defaults, ``kind: address``):
    each tile's tasks run on its worker, blocks bordering a tile are read there, faces of
    finished tiles come from the face store; nothing but handles and the recipe travels."""
    import xarray as xr
    from distributed import Client, LocalCluster

    from daskgrad.batch.config import load_config_text
    from daskgrad.batch.runner import run

    shape, chunks = (64, 96, 80), (16, 24, 20)
    values = np.random.default_rng(3).standard_normal(shape)
    inp, out = tmp_path / "in.zarr", tmp_path / "out.zarr"
    xr.Dataset({"f": (("z", "y", "x"), values)}).chunk(dict(zip("zyx", chunks))).to_zarr(inp)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            memory_limit="1GiB",
        ) as cluster,
        Client(cluster) as client,
        dask.config.set({"daskgrad.max-tile-blocks": 8}),  # many tiles, run side by side
    ):  # fmt: skip
        cfg = load_config_text(
            f"input: {{path: {inp}}}\noutput: {{path: {out}}}\n"
            f"cluster: {{kind: address, address: {cluster.scheduler_address}}}"
        )
        summary = run(cfg, progress=False, echo=lambda line: None)
        logs = client.run(lambda dask_worker: list(dask_worker.transfer_incoming_log))
    moved: dict[str, int] = {}
    for entry in itertools.chain.from_iterable(logs.values()):
        for key, nbytes in entry["keys"].items():
            moved[key_split(key)] = moved.get(key_split(key), 0) + nbytes
    # A handle and the recipe (152 bytes on a quiet machine). Tile tasks carry loose worker
    # restrictions (so a tile outlives its worker), which work stealing may use on a loaded
    # machine to run a task without inputs (a face read) on the other worker: a face or two
    # may then travel, never the blocks bordering every tile (50 MB before tile-own reads).
    block = values[:16, :24, :20].nbytes
    assert sum(moved.values()) < block, moved
    assert summary.blocks_written == 3 * 4 * 4 * 4
    ds = xr.open_zarr(out)
    for name, want in zip(("df_dz", "df_dy", "df_dx"), np.gradient(values)):
        assert ds[name].values.tobytes() == want.tobytes()
