"""Bounded memory: tiles of blocks, runs that keep to their memory, refusals, and no hang.

The figures (peak memory against size, extra reads, time) are in
``benchmarks/bench_memory.py``; these tests check the behaviour on small arrays with small
limits, in real processes: a ``daskgrad run`` on threads whose peak resident memory stays within
``cluster.memory_limit``, a LocalCluster with spilling off whose workers are never paused, a
refusal at plan time, and a run whose workers are paused that ends by itself and resumes.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import subprocess
import sys

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from runner_helpers import assert_store_equals, make_config, reference, write_config, write_input

from daskgrad.batch import faces as face_store
from daskgrad.batch import store as zstore
from daskgrad.batch.budget import BlockCost, WorkerMemory
from daskgrad.batch.graph_tasks import tasks_for
from daskgrad.batch.runner import plan
from daskgrad.batch.schedule import iter_tiles, planned_reads, tile_plans
from daskgrad.batch.tile_tasks import make_programs
from daskgrad.batch.tiles import TilePlan, choose_box, extra_reads
from daskgrad.batch.writer import TileWriter

# -- the tiling, exactly ---------------------------------------------------------------------

grids = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)


@settings(max_examples=60, deadline=None)
@given(grid=grids, data=st.data())
def test_extra_reads_formula_counts_the_bordering_blocks_of_every_tile(grid, data):
    box = tuple(data.draw(st.integers(1, n)) for n in grid)
    axes = tuple(data.draw(st.sets(st.integers(0, len(grid) - 1))))
    periodic = tuple(data.draw(st.sets(st.sampled_from(axes)))) if axes else ()
    tp = TilePlan(grid, box, axes, periodic)
    every = list(itertools.product(*map(range, grid)))
    tiles = tp.split(every)
    assert sorted(itertools.chain(*tiles)) == sorted(every)  # a partition of the blocks
    assert all(len(t) <= math.prod(box) for t in tiles)
    counted = sum(tp.reads(t) for t in tiles) - len(every)
    # A periodic axis cut into tiles one block long reads the same bordering plane from both
    # sides; the formula counts it twice: an upper bound there, exact everywhere else.
    thin = any(a in periodic and (grid[a] % box[a] == 1 or box[a] == 1) for a in axes)
    if thin:
        assert counted <= extra_reads(grid, box, axes, periodic)
    else:
        assert counted == extra_reads(grid, box, axes, periodic)


@settings(max_examples=60, deadline=None)
@given(grid=grids, data=st.data())
def test_the_chosen_tile_reads_least_among_all_tiles_that_fit(grid, data):
    capacity = data.draw(st.integers(1, math.prod(grid) + 1))
    axes = tuple(data.draw(st.sets(st.integers(0, len(grid) - 1))))
    min_tiles = data.draw(st.integers(1, 4))
    box = choose_box(grid, axes, capacity, min_tiles=min_tiles)
    assert math.prod(box) <= capacity
    fits = [
        b
        for b in itertools.product(*(range(1, n + 1) for n in grid))
        if math.prod(b) <= capacity
        and math.prod(-(-n // k) for n, k in zip(grid, b)) >= min(min_tiles, math.prod(grid))
    ]
    assert extra_reads(grid, box, axes) == min(extra_reads(grid, b, axes) for b in fits)


def test_a_grid_that_fits_is_one_tile_read_once():
    assert choose_box((4, 8, 8), (0, 1, 2), capacity=256) == (4, 8, 8)
    # Only the non-differentiated axis is cut when that is enough: no extra reads at all.
    box = choose_box((16, 8, 8), (1, 2), capacity=64)
    assert box == (1, 8, 8) and extra_reads((16, 8, 8), box, (1, 2)) == 0


def test_subgraph_walks_only_what_the_keys_need():
    x = da.arange(64.0, chunks=4).reshape(8, 8).rechunk(4) + 1
    import daskgrad

    (g,) = daskgrad.gradient(x, dim=0)
    graph = g.__dask_graph__()
    part, _ = tasks_for(graph, [(g.name, 0, 0)])
    assert len(part) < len(graph) / 2
    import dask

    assert np.array_equal(dask.get(part, (g.name, 0, 0)), np.gradient(x.compute(), axis=0)[:4, :4])


def test_three_tasks_per_block(tmp_path):
    """A tile's tasks from the plan: per block its read, its faces and one kernel that writes
    every output; per tile the recipe and the input's handle (pinned: a count, not a time)."""
    inp = tmp_path / "in.zarr"
    write_input(inp, chunks={"time": 2, "level": 3, "lat": 5, "lon": 6})
    p = plan(make_config(inp, tmp_path / "out.zarr"))
    missing = p.expected()
    programs = make_programs(
        p.groups, p.recipes, p.values, {}, p.chunk_shapes, {}, missing, "unused", None
    )
    g = p.groups[0]
    whole = TilePlan(g.grid, g.grid, g.axes)  # one tile: nothing borders it
    (tile,) = iter_tiles([g], {g.source: whole}, missing)
    blocks = int(np.prod(g.grid))
    tasks = programs[g.source].tasks(tile, set(), None)
    assert len(tasks.graph) == 3 * blocks + 2, sorted({str(k[0])[:12] for k in tasks.graph})
    assert len(tasks.waits) == blocks


def test_tasks_for_finds_keys_named_unlike_their_layer():
    """dask's overlap keeps getitem keys with fractional indices in its own layer, referenced
    from legacy tuple tasks: every one must be found, or dask.get takes it for a literal."""
    import dask

    x = da.arange(64.0, chunks=8).reshape(8, 8).rechunk(4)
    y = x.map_overlap(lambda b: b * 2, depth=1, boundary="none")
    key = (y.name, 1, 1)
    part, _ = tasks_for(y.__dask_graph__(), [key])
    assert len(part) < len(dict(y.__dask_graph__()))
    np.testing.assert_array_equal(dask.get(part, key), y.compute()[4:8, 4:8])


def test_tiny_tiles_write_the_same_bits_as_one_graph(tmp_path):
    """Tiles of two blocks, each reading its bordering blocks again: the same store."""
    inp = tmp_path / "in.zarr"
    write_input(inp, chunks={"time": 2, "level": 3, "lat": 5, "lon": 6})
    cfg = make_config(inp, tmp_path / "out.zarr")
    p = plan(cfg)
    from daskgrad.batch.prepare import create_store

    create_store(p)
    cost = max((g.cost for g in p.groups), key=lambda c: c.in_bytes)
    worker = WorkerMemory(
        limit=cost.per_thread + 2 * cost.in_bytes, threads=1, baseline=0, fraction=1.0
    )
    plans = tile_plans(p.groups, worker, 1)
    missing = p.expected()
    tiles = list(iter_tiles(p.groups, plans, missing))
    assert len(tiles) > 10
    group_of_output = {o: g for g in p.groups for o in g.outputs}
    for t in tiles:  # each tile owns at most what its variable's blocks leave room for
        positions = {idx for blocks in t.blocks.values() for idx in blocks}
        g = group_of_output[next(iter(t.blocks))]
        held = len(positions) + (
            len(positions) // plans[g.source].box[plans[g.source].stream]
            if plans[g.source].stream is not None
            else 0
        )
        assert held <= worker.capacity(g.cost)
    programs = make_programs(
        p.groups,
        p.recipes,
        p.values,
        {v: p.result[v].data for v in p.variables},
        p.chunk_shapes,
        {},
        missing,
        str(tmp_path / "out.zarr"),
        p.fingerprint,
    )
    specs = [s for prog in set(programs.values()) for s in prog.face_specs()]
    face_store.create(str(tmp_path / "out.zarr"), specs)
    report = TileWriter(programs).run(tiles)
    face_store.remove(str(tmp_path / "out.zarr"))
    # Each cut between tiles is read from one side only: the later tile reads faces.
    assert report.read_bytes < planned_reads(p.groups, plans, p.input, faces=False)
    zstore.finalize(str(tmp_path / "out.zarr"), p.variables, p.expected())
    assert_store_equals(tmp_path / "out.zarr", reference(inp, cfg))


def test_worker_memory_arithmetic():
    cost = BlockCost(in_bytes=2**20, out_bytes=2**20, outputs=3)
    w = WorkerMemory(limit=100 * 2**20, threads=2, baseline=50 * 2**20, fraction=0.8)
    assert cost.per_thread == 5 * 2**20
    assert w.capacity(cost) == 20  # 80 - 50 - 10 MiB
    assert WorkerMemory(w.least(cost), 2, 50 * 2**20, 0.8).capacity(cost) == 1
    assert WorkerMemory(w.least(cost) - 2**20, 2, 50 * 2**20, 0.8).capacity(cost) == 0


# -- real runs with real limits ----------------------------------------------------------------

MiB = 2**20


def _big_input(path, shape=(64, 512, 512), chunks=(16, 128, 128)):
    """float32 noise in zarr, 1 MiB chunks: 64 MiB for the default shape."""
    rng = np.random.default_rng(5)
    data = da.from_array(rng.standard_normal(shape, dtype=np.float32), chunks=chunks)
    xr.Dataset({"f": (("z", "y", "x"), data)}).to_zarr(path, zarr_format=3, consolidated=False)


# The budgets below are sized for the array-module kernel: numba's compiled kernel (the
# ``fast`` extra) adds 100-125 MiB of code to every process, which the budget counts
# (``budget.resident_here`` loads it) and which these small budgets do not hold.
NUMPY_KERNEL = {"DASKGRAD_KERNEL": "numpy"}


def _cli(args, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "daskgrad.batch.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**(os.environ if env is None else env), **NUMPY_KERNEL},
    )


def _peaks(stdout: str) -> dict[str, float]:
    units = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    return {
        who: float(value) * units[unit]
        for who, value, unit in re.findall(
            r"^peak memory (.+?): ([0-9.]+) (\w+)$", stdout, re.MULTILINE
        )
    }


def _check_against_numpy(out, inp):
    got = xr.open_zarr(out, consolidated=None)
    src = xr.open_zarr(inp, consolidated=False)["f"].values
    for name, axis in (("df_dz", 0), ("df_dy", 1), ("df_dx", 2)):
        want = np.gradient(src, axis=axis)
        assert got[name].dtype == want.dtype
        assert got[name].values.tobytes() == want.tobytes(), name


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    path = tmp_path_factory.mktemp("bounded") / "in.zarr"
    _big_input(path, shape=(128, 1024, 1024))  # 512 MiB: 8 x 8 x 8 blocks of 1 MiB
    return path


def test_a_threads_run_keeps_to_its_memory_limit(big_input, tmp_path):
    """512 MiB in, 1.5 GiB out, a budget of 220 MiB for the whole process, imports included.

    Read once in one graph, the same run peaks at about 250 MiB here.
    """
    limit = 220 * MiB
    cfg = write_config(
        tmp_path / "run.yaml",
        big_input,
        tmp_path / "out.zarr",
        gradient={"dims": None, "periodic": {}, "edge_order": 1},
        cluster={"kind": "threads", "n_workers": 2, "memory_limit": "220MiB"},
    )
    proc = _cli(["run", str(cfg), "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    tiles = re.search(r"(\d+) tile\(s\)", proc.stdout)
    assert tiles and int(tiles.group(1)) > 1, proc.stdout  # the budget forced tiles
    peak = _peaks(proc.stdout)["driver"]
    assert peak <= limit, (peak / MiB, proc.stdout)
    _check_against_numpy(tmp_path / "out.zarr", big_input)


@pytest.mark.cluster
def test_workers_without_spilling_finish_within_their_limit_and_are_never_paused(
    big_input, tmp_path
):
    """Two workers of 320 MiB, spilling off: the read-once working set would not fit.

    A worker rests at about 230 MiB here once it has imported what a block task imports, so
    the limit leaves room for a few blocks in flight; 300 MiB left a fraction of a MiB.
    """
    cfg = write_config(
        tmp_path / "run.yaml",
        big_input,
        tmp_path / "out.zarr",
        gradient={"dims": None, "periodic": {}, "edge_order": 1},
        cluster={"kind": "local", "n_workers": 2, "memory_limit": "320MiB", "stall_timeout": 60},
    )
    env = dict(
        os.environ,
        DASK_DISTRIBUTED__WORKER__MEMORY__SPILL="false",
        DASK_DISTRIBUTED__WORKER__MEMORY__TARGET="false",
    )
    proc = _cli(["run", str(cfg), "--no-progress"], env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Pausing worker" not in proc.stdout + proc.stderr
    peaks = _peaks(proc.stdout)
    workers = [v for k, v in peaks.items() if k != "driver"]
    assert len(workers) == 2 and max(workers) < 0.8 * 320 * MiB, proc.stdout + proc.stderr
    _check_against_numpy(tmp_path / "out.zarr", big_input)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_memory_limit_too_small_for_any_tile_is_refused_with_the_least_that_works(
    big_input, tmp_path, command
):
    out = tmp_path / "out.zarr"
    cfg = write_config(
        tmp_path / "run.yaml",
        big_input,
        out,
        gradient={"dims": None, "periodic": {}, "edge_order": 1},
        cluster={"kind": "local", "n_workers": 2, "memory_limit": "200MiB"},
    )
    proc = _cli([command, str(cfg)])
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "cluster.memory_limit: 200.0 MiB per worker is too small" in lines[0]
    least = re.search(r"needs at least ([0-9.]+) MiB", lines[0])
    assert least and 200 < float(least.group(1)) < 300
    assert not out.exists()


@pytest.mark.cluster
def test_paused_workers_end_the_run_with_one_line_and_resume_finishes_it(tmp_path):
    """Workers paused from the start (pause threshold below their resting memory): exit 1
    after stall_timeout, naming the pause; then a resume with normal workers completes."""
    inp = tmp_path / "in.zarr"
    write_input(inp)
    out = tmp_path / "out.zarr"
    cfg = write_config(
        tmp_path / "run.yaml",
        inp,
        out,
        cluster={"kind": "local", "n_workers": 1, "memory_limit": "1GiB", "stall_timeout": 4},
    )
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE="0.01")
    proc = _cli(["run", str(cfg), "--no-progress"], env=env, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()
    assert any("no block written for" in line and "paused" in line for line in last), proc.stderr
    resumed = _cli(["run", str(cfg), "--no-progress", "--set", "output.mode=resume"])
    assert resumed.returncode == 0, resumed.stderr
    assert_store_equals(out, reference(inp, make_config(inp, out)))


def test_accessor_to_zarr_keeps_to_the_budget_too(big_input, tmp_path):
    """``ds.grad.to_zarr`` on threads with ``daskgrad.memory-limit``, in a fresh process."""
    out = tmp_path / "out.zarr"
    script = (
        "import dask, xarray as xr, daskgrad\n"
        "with dask.config.set({'daskgrad.memory-limit': '240MiB'}):\n"
        f"    xr.open_zarr({str(big_input)!r}, consolidated=False).grad.to_zarr({str(out)!r})\n"
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **NUMPY_KERNEL},
    )
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) * 1024 <= 240 * MiB
    _check_against_numpy(out, big_input)
