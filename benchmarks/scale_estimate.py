"""A run at scale, on paper: tiles, memory, tasks, bytes read again and time, from daskgrad's
own planner.

Uses the functions a run uses (:func:`daskgrad.batch.tiles.choose_plan`,
:class:`daskgrad.batch.budget.WorkerMemory`) on an array too large to make here, with two
figures measured on this machine: the core-seconds to read, differentiate along three dims and
write one block (``--block-seconds``), and the tiles per second the driver turns into task
graphs (``--tiles-per-second``, from ``benchmarks/bench_driver.py``); see docs/scale.md for
where the defaults come from. With ``--measure-planner`` the second is measured for this very
array instead: a virtual zarr input of its shape (metadata only) is planned as a run would plan
it for these workers, and the driver's planner turns its tiles into task graphs for 10 s (the
tasks per tile are then counted too, not estimated). Run::

    python benchmarks/scale_estimate.py [--tib 100] [--workers 500] [--worker-memory-gib 8]
        [--threads 4] [--block-seconds 0.36] [--tiles-per-second 496] [--measure-planner]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from daskgrad.batch.budget import PROCESS_BASELINE, WORKER_FRACTION, BlockCost, WorkerMemory
from daskgrad.batch.tiles import choose_plan

# Tasks of a tile (daskgrad.batch.tile_tasks): per own block a read, a faces task and one
# kernel that writes every output, plus a keep task where it faces another tile; per bordering
# block a read and a faces task, or one read of a stored face.
TASKS_PER_BLOCK = 3
TASKS_PER_BORDER_BLOCK = 2
# Bytes the scheduler keeps per task (TaskState and its sets), a rough figure for distributed.
SCHEDULER_BYTES_PER_TASK = 5_000


def measure_planner(
    shape: tuple[int, ...], chunks: tuple[int, ...], worker: WorkerMemory, workers: int
) -> tuple[float, float]:
    """Tiles per second and tasks per tile of the driver's planner on a virtual input."""
    import numpy as np
    import zarr

    from daskgrad.batch.config import load_config
    from daskgrad.batch.run_plan import plan
    from daskgrad.batch.runner import programs_for
    from daskgrad.batch.schedule import iter_tiles, tile_plans

    with tempfile.TemporaryDirectory() as tmp:
        inp, config = Path(tmp) / "in.zarr", Path(tmp) / "run.yaml"
        root = zarr.open_group(str(inp), mode="w", zarr_format=3)
        root.create_array("f", shape=shape, chunks=chunks, dtype="f4",
                          fill_value=np.float32(1.0), dimension_names=("z", "y", "x"))  # fmt: skip
        zarr.consolidate_metadata(str(inp))
        config.write_text(f"input: {{path: {inp}}}\noutput: {{path: {Path(tmp) / 'out.zarr'}}}\n")
        p = plan(load_config(config))
        missing = p.expected()
        programs = programs_for(p, missing, keep_faces=True)
        tiles = iter_tiles(p.groups, tile_plans(p.groups, worker, workers), missing)
        n, tasks, t0 = 0, 0, time.perf_counter()
        for tile in tiles:
            tasks += len(programs[tile.group].tasks(tile, set(), None).graph)
            n += 1
            if time.perf_counter() - t0 > 10.0:
                break
        return n / (time.perf_counter() - t0), tasks / max(1, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tib", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=500)
    parser.add_argument("--worker-memory-gib", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--chunks", type=int, nargs=3, default=(64, 256, 256))
    parser.add_argument(
        "--block-seconds",
        type=float,
        default=0.36,
        help="core-seconds per block of --chunks float32 (read, 3 dims, write)",
    )
    parser.add_argument(
        "--tiles-per-second",
        type=float,
        default=496.0,
        help="tiles the driver turns into task graphs per second (bench_driver.py)",
    )
    parser.add_argument(
        "--measure-planner",
        action="store_true",
        help="measure the tiles per second (and tasks per tile) on this array instead",
    )
    args = parser.parse_args()

    block = math.prod(args.chunks)
    blocks_total = args.tib * 2**40 / (4 * block)
    # A cube-like grid: the longest axis 4x the others, as for (time, y, x) model output.
    side = round((blocks_total / 4) ** (1 / 3))
    grid = (4 * side, side, side)
    blocks = math.prod(grid)
    shape = tuple(g * c for g, c in zip(grid, args.chunks))
    cost = BlockCost(in_bytes=4 * block, out_bytes=4 * block, outputs=3)
    worker = WorkerMemory(
        int(args.worker_memory_gib * 2**30), args.threads, PROCESS_BASELINE, WORKER_FRACTION
    )
    capacity = worker.capacity(cost)
    tp = choose_plan(grid, (0, 1, 2), capacity, min_columns=2 * args.workers)
    box = tp.box
    tiles = tp.count()
    without = tp.extra_reads()  # every cut read from both sides
    extra = without // 2  # with the face store: from the side that runs first
    own = math.prod(box)
    border = sum(2 * own // b for i, b in enumerate(box) if i != tp.stream)
    tasks_per_tile = own * TASKS_PER_BLOCK + border * TASKS_PER_BORDER_BLOCK
    tasks_total = blocks * TASKS_PER_BLOCK + extra * TASKS_PER_BORDER_BLOCK
    rate, rate_source = args.tiles_per_second, "given"
    if args.measure_planner:
        rate, counted = measure_planner(shape, tuple(args.chunks), worker, args.workers)
        tasks_per_tile, rate_source = round(counted), "measured on this array"
        tasks_total = tiles * tasks_per_tile
    in_flight = min(tiles, args.workers)
    core_seconds = blocks * args.block_seconds * (1 + 0.25 * extra / blocks)  # a re-read ~1/4
    hours = core_seconds / (args.workers * args.threads) / 3600
    tile_seconds = core_seconds / tiles / args.threads  # one tile on one worker
    needed_rate = args.workers / tile_seconds  # tiles per second to keep every worker busy
    print(
        f"array: float32 {shape} = {blocks * cost.in_bytes / 2**40:.1f} TiB, chunks "
        f"{tuple(args.chunks)} ({cost.in_bytes / 2**20:.0f} MiB), grid {grid} = {blocks:,} blocks"
    )
    print(
        f"cluster: {args.workers} workers x {args.worker_memory_gib:g} GiB, {args.threads} threads each"
    )
    print(f"per worker: a tile may own {capacity} blocks ({worker.explain(cost)})")
    streamed = f", streamed along axis {tp.stream}" if tp.stream is not None else ""
    print(
        f"tiles: {box} blocks each{streamed}, {tiles:,} tiles; input read again: "
        f"{extra / blocks:+.0%} with the face store ({without / blocks:+.0%} without)"
    )
    handed = own // box[tp.stream] if tp.stream is not None else 0
    held = worker.baseline + args.threads * cost.per_thread + (own + handed) * cost.in_bytes
    print(
        f"memory per worker at most: {held / 2**30:.2f} GiB "
        f"(limit {args.worker_memory_gib:g} GiB, pause at 80%)"
    )
    print(
        f"tasks: {tasks_total:,} in all; "
        f"{tasks_per_tile:,} per tile; at most {in_flight * tasks_per_tile:,} in the scheduler at "
        f"once (~{in_flight * tasks_per_tile * SCHEDULER_BYTES_PER_TASK / 2**30:.1f} GiB of "
        "scheduler state)"
    )
    print(
        f"time: {core_seconds / 3600:,.0f} core-hours at {args.block_seconds} core-s per block -> "
        f"{hours:.1f} h on {args.workers * args.threads} cores; a tile takes {tile_seconds:.0f} s"
    )
    print(
        f"driver: builds one tile's tasks at a time, {rate:,.1f} tiles/s ({rate_source}); "
        f"{args.workers} busy workers need {needed_rate:.1f} tiles/s "
        f"({needed_rate / rate:.1%} of the driver's time); its bookkeeping is "
        f"one bit per block and output ({3 * blocks / 8 / 2**20:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
