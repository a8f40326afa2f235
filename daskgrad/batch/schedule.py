"""The tiles of a write: per input variable, its block grid cut to fit one worker's memory.

Also the memory checks of a batch run: a limit too small for any tile is refused (exit 2)
before anything is written (:func:`check_memory`, :func:`worker_for_run`).

Shared by the batch runner and the accessor's ``to_zarr``: both plan the gradients, then ask this
module which blocks each tile writes (:func:`iter_tiles`: lazily, one tile at a time, from
bitmaps of the blocks still to write), sized by :mod:`daskgrad.batch.budget` and shaped by
:mod:`daskgrad.batch.tiles`, and hand the tiles to :class:`daskgrad.batch.writer.TileWriter`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import numpy as np
import xarray as xr

from daskgrad.batch.budget import (
    PROCESS_BASELINE,
    WORKER_FRACTION,
    BlockCost,
    WorkerMemory,
    configured_worker,
    measured_worker,
    size_text,
    warmed_resident,
)
from daskgrad.batch.config import ConfigError
from daskgrad.batch.grid import BlockBitmap, box_blocks, chunk_grid
from daskgrad.batch.tiles import Tile, TilePlan, choose_plan
from daskgrad.batch.writer import worker_infos

__all__ = [
    "Group",
    "check_memory",
    "group_of",
    "iter_tiles",
    "planned_reads",
    "tile_plans",
    "tiles_line",
    "worker_for_run",
]

Index = tuple[int, ...]


@dataclass(frozen=True)
class Group:
    """The outputs of one input variable: they share its block grid and are tiled together.

    Attributes
    ----------
    source
        The input variable.
    outputs
        Its output variables (one per differentiated dim).
    grid
        Blocks along each dim of the outputs.
    axes, periodic
        The differentiated axes, and those of them that wrap around (faces cross the seam).
    cost
        The memory of one block position.
    block_text
        The block shape by dim, for messages.
    shard
        Blocks per shard along each dim (a multiple of every output's shards), or None: tiles
        then hold whole shards, so that one task writes each shard.
    inputs
        The input variables its tiles read, where they are several or not ``source`` (a group
        of derived fields, :mod:`daskgrad.batch.derived`); empty: ``source`` alone.
    faces_kept
        Whether a tile's outward faces are kept for its neighbours (the face store), so a cut
        costs one plane of blocks read again instead of two.
    """

    source: str
    outputs: tuple[str, ...]
    grid: tuple[int, ...]
    axes: tuple[int, ...]
    periodic: tuple[int, ...]
    cost: BlockCost
    block_text: str
    shard: tuple[int, ...] | None = None
    inputs: tuple[str, ...] = ()
    faces_kept: bool = True


def group_of(
    ds: xr.Dataset,
    result: xr.Dataset,
    vp: Any,
    chunk_shapes: Mapping,
    shards: Mapping[str, tuple[int, ...] | None] | None = None,
) -> Group:
    """The :class:`Group` of one input variable's plan (``vp``, from the accessor's plan).

    ``shards``: blocks per shard of each output variable that has shards.
    """
    outputs = tuple(str(f.name) for f in vp.fields)
    first = result[outputs[0]]
    chunk_shape = chunk_shapes[outputs[0]]
    elements = int(np.prod(chunk_shape))
    cost = BlockCost(
        in_bytes=elements * ds[vp.key].dtype.itemsize,
        out_bytes=elements * max(result[o].dtype.itemsize for o in outputs),
        outputs=len(outputs),
    )
    return Group(
        source=str(vp.key),
        outputs=outputs,
        grid=chunk_grid(first.shape, chunk_shape),
        axes=vp.halo_axes,
        periodic=vp.periodic_axes,
        cost=cost,
        block_text=", ".join(f"{d}: {c}" for d, c in zip(map(str, first.dims), chunk_shape)),
        shard=_common_shard([(shards or {}).get(o) for o in outputs]),
    )


def _common_shard(shards: Sequence[tuple[int, ...] | None]) -> tuple[int, ...] | None:
    """The smallest box of blocks that every output's shards tile exactly (per dim lcm).

    Examples
    --------
    >>> _common_shard([(2, 1), None, (3, 1)]), _common_shard([None])
    ((6, 1), None)
    """
    given = [s for s in shards if s is not None]
    if not given:
        return None
    return tuple(math.lcm(*column) for column in zip(*given))


def tile_capacity(worker: WorkerMemory, cost: BlockCost) -> int:
    """Input blocks one tile may own: what the worker's memory holds, at most the dask config
    ``daskgrad.max-tile-blocks`` where that is set (smaller tiles: more, shorter units of work,
    e.g. for clusters whose workers come and go often; at the price of more blocks read again).

    Examples
    --------
    >>> from daskgrad.batch.budget import BlockCost, WorkerMemory
    >>> w, c = WorkerMemory(2**30, 1, 0, 1.0), BlockCost(2**20, 2**20, 1)
    >>> tile_capacity(w, c)
    1021
    >>> with dask.config.set({"daskgrad.max-tile-blocks": 4}):
    ...     tile_capacity(w, c)
    4
    """
    capacity = worker.capacity(cost)
    cap = dask.config.get("daskgrad.max-tile-blocks", None)
    return capacity if cap in (None, "", 0) else max(1, min(capacity, int(cap)))


def tile_plans(groups: Sequence[Group], worker: WorkerMemory, workers: int) -> dict[str, TilePlan]:
    """Per input variable, its block grid cut into tiles that fit one worker's memory.

    With several workers, at least two tiles (or columns of tiles, when streamed) per worker
    are asked for, so that none idles.

    Examples
    --------
    A 4 x 8 grid of 1 MiB blocks on a worker with room for 8 of them:

    >>> from daskgrad.batch.budget import BlockCost, WorkerMemory
    >>> g = Group("T", ("dT_dy", "dT_dx"), (4, 8), (0, 1), (), BlockCost(2**20, 2**20, 2), "")
    >>> worker = WorkerMemory(2**30, 1, 0, 1.0)
    >>> tile_plans([g], worker, 1)["T"].box
    (4, 8)
    >>> tp = tile_plans([g], WorkerMemory(12 * 2**20, 1, 0, 1.0), 1)["T"]
    >>> tp.box, tp.stream  # slabs of 4 x 1 streamed along x: read once
    ((4, 1), 1)
    """
    plans = {}
    for g in groups:
        min_columns = 2 * workers if workers > 1 else 1
        capacity = tile_capacity(worker, g.cost)
        if g.shard is None:
            plans[g.source] = choose_plan(
                g.grid,
                g.axes,
                capacity,
                periodic=g.periodic,
                min_columns=min_columns,
            )
            continue
        # Plan on the grid of shards, then scale the tiles back to blocks: every tile holds
        # whole shards (clipped at the edges), so one task writes each shard.
        per = g.shard
        coarse = tuple(-(-n // p) for n, p in zip(g.grid, per))
        tp = choose_plan(
            coarse,
            g.axes,
            capacity // math.prod(per),
            periodic=g.periodic,
            min_columns=min_columns,
        )
        box = tuple(min(n, b * p) for n, b, p in zip(g.grid, tp.box, per))
        plans[g.source] = TilePlan(g.grid, box, tp.axes, g.periodic, tp.stream)
    return plans


def iter_tiles(
    groups: Sequence[Group],
    plans: Mapping[str, TilePlan],
    missing: Mapping[str, BlockBitmap],
    lanes: int = 1,
) -> Iterator[Tile]:
    """The tiles that hold missing blocks, in the plan's order, one at a time.

    Each tile holds every missing output block inside its box. Nothing is listed up front:
    a tile is made when the writer asks for it, from the bitmaps of missing blocks. ``lanes``:
    the workers that will run columns side by side (:meth:`TilePlan.tiles`).

    Examples
    --------
    >>> from daskgrad.batch.budget import BlockCost
    >>> from daskgrad.batch.tiles import TilePlan
    >>> g = Group("T", ("dT_dx",), (4,), (0,), (), BlockCost(8, 8, 1), "x: 2")
    >>> todo = BlockBitmap((4,), full=True); todo.discard((1,))
    >>> [t.blocks for t in iter_tiles([g], {"T": TilePlan((4,), (2,), (0,))}, {"dT_dx": todo})]
    [{'dT_dx': [(0,)]}, {'dT_dx': [(2,), (3,)]}]
    """
    for g in groups:
        tp = plans[g.source]
        for bounds in tp.tiles(lanes):
            box = list(box_blocks(bounds))
            blocks = {o: missing[o].select(box) for o in g.outputs}
            blocks = {o: b for o, b in blocks.items() if b}
            if not blocks:
                continue
            corner = tuple(a for a, _ in bounds)
            column = tp.column(corner)
            yield Tile(
                blocks,
                column=None if column is None else (g.source, column),
                group=g.source,
                corner=corner,
            )


def planned_reads(
    groups: Sequence[Group], plans: Mapping[str, TilePlan], source: xr.Dataset, faces: bool
) -> int:
    """The input bytes a fresh run of these tilings reads: every block once, plus the blocks
    bordering the tiles. With the face store (``faces``) a cut costs one plane of blocks, read
    by the tile that runs first, instead of two; run side by side, neighbours share even that.
    """
    total = 0
    for g in groups:
        tp = plans[g.source]
        blocks = max(1, math.prod(g.grid))
        extra = tp.extra_reads() / (2 if faces and g.faces_kept else 1)
        nbytes = sum(source[v].nbytes for v in g.inputs or (g.source,))
        total += int(nbytes * (1 + extra / blocks))
    return total


# -- the memory of a run ----------------------------------------------------------------------


def _memory_key(cfg: Any) -> str:
    return "cluster.jobqueue.memory" if cfg.cluster.jobqueue is not None else "cluster.memory_limit"


def check_memory(p: Any, worker: WorkerMemory | None, *, key: str | None = None) -> None:
    """Refuse a worker memory that cannot hold even a tile of one block, before anything runs.

    Such a run would only show workers paused or killed over and over; the message says the
    least memory that works and what it is made of.
    """
    if worker is None:
        return
    key = key or _memory_key(p.config)
    for g in p.groups:
        if g.shard is not None and worker.capacity(g.cost) < math.prod(g.shard):
            raise ConfigError(
                p.source,
                "output.encoding.shards",
                None,
                f"a shard of {' x '.join(map(str, g.shard))} blocks of {g.source!r} "
                f"({g.block_text}) is written by one task, but {size_text(worker.limit)} per "
                f"worker holds the work of {worker.capacity(g.cost)} block(s) at once; set "
                "smaller shards or give workers more memory",
            )
        if worker.capacity(g.cost) >= 1:
            continue
        least = worker.least(g.cost)
        raise ConfigError(
            p.source,
            key,
            None,
            f"{size_text(worker.limit)} per worker is too small for the blocks of {g.source!r} "
            f"({g.block_text}): a worker needs at least {size_text(least)} "
            f"({worker.explain(g.cost)}); raise {key} or set smaller input.chunks",
        )


def worker_for_run(p: Any, client: Any) -> WorkerMemory:
    """The memory of one worker as the run finds it: measured on a cluster, else configured.

    Raises ConfigError when it cannot hold a tile of one block (nothing is written then).
    """
    cfg = p.config
    worker = None
    if client is not None:
        resident = None
        from daskgrad.batch.warm import WarmImports

        with contextlib.suppress(Exception):  # workers that join later import it first too
            client.register_plugin(WarmImports())
        with contextlib.suppress(Exception):  # without it, the scheduler's figures serve
            resident = client.run(warmed_resident)
        worker = measured_worker(worker_infos(client), resident)
    if worker is None:
        worker = configured_worker(cfg.cluster)
    if worker is None:  # a cluster without workers yet and nothing configured: assume 4 GiB
        worker = WorkerMemory(4 * 2**30, 1, PROCESS_BASELINE, WORKER_FRACTION)
    key = "cluster.address" if cfg.cluster.kind == "address" else None
    check_memory(p, worker, key=key)
    return worker


def tiles_line(p: Any, plans: dict, read: int, worker: WorkerMemory, client: Any) -> str:
    """The plan line: the memory given, the tiles, and the input bytes they will read."""
    count = sum(plans[g.source].count() for g in p.groups)
    boxes = "; ".join(
        f"{g.source}: tiles of {' x '.join(map(str, plans[g.source].box))} blocks" for g in p.groups
    )
    where = "per worker" if client is not None else "for the run"
    extra = read / p.bytes_in - 1 if p.bytes_in else 0.0
    return (
        f"memory: {size_text(worker.limit)} {where}; {boxes}; {count} tile(s), reading "
        f"{size_text(read)} ({extra:+.0%} of the input: blocks bordering a tile are read again)"
    )
