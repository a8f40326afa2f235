"""The tiles of a write: per input variable, its block grid cut to fit one worker's memory.

Shared by the batch runner and the accessor's ``to_zarr``: both build the lazy gradients, then
ask this module which blocks each tile writes (:func:`tiles_to_write`), sized by
:mod:`daskgrad.budget` and shaped by :mod:`daskgrad.tiles`, and hand the tiles to
:class:`daskgrad.writer.TileWriter`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from daskgrad.budget import BlockCost, WorkerMemory
from daskgrad.store import chunk_grid
from daskgrad.tiles import TilePlan, choose_plan
from daskgrad.writer import Tile

__all__ = ["Group", "group_of", "tile_plans", "tiles_to_write"]

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
    """

    source: str
    outputs: tuple[str, ...]
    grid: tuple[int, ...]
    axes: tuple[int, ...]
    periodic: tuple[int, ...]
    cost: BlockCost
    block_text: str




def group_of(ds: xr.Dataset, result: xr.Dataset, vp: Any, chunk_shapes: Mapping) -> Group:
    """The :class:`Group` of one input variable's plan (``vp``, from the accessor's plan)."""
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
        axes=tuple(s.axis for s in vp.axis_spacings),
        periodic=tuple(s.axis for s in vp.axis_spacings if s.periodic),
        cost=cost,
        block_text=", ".join(f"{d}: {c}" for d, c in zip(map(str, first.dims), chunk_shape)),
    )




def tile_plans(groups: Sequence[Group], worker: WorkerMemory, workers: int) -> dict[str, TilePlan]:
    """Per input variable, its block grid cut into tiles that fit one worker's memory.

    With several workers, at least two tiles (or columns of tiles, when streamed) per worker
    are asked for, so that none idles.

    Examples
    --------
    A 4 x 8 grid of 1 MiB blocks on a worker with room for 8 of them:

    >>> from daskgrad.budget import BlockCost, WorkerMemory
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
        plans[g.source] = choose_plan(
            g.grid, g.axes, worker.capacity(g.cost), periodic=g.periodic,
            min_columns=2 * workers if workers > 1 else 1,
        )
    return plans


def tiles_to_write(
    groups: Sequence[Group],
    plans: Mapping[str, TilePlan],
    missing: Mapping[str, set[Index]],
    source: xr.Dataset,
) -> list[Tile]:
    """The tiles that hold missing blocks, each with every missing output block in it.

    ``source`` is the input (for the bytes each tile reads, bordering blocks included).
    """
    tiles = []
    for g in groups:
        tp = plans[g.source]
        block_bytes = source[g.source].nbytes / max(1, int(np.prod(g.grid)))
        positions = set().union(*(missing[o] for o in g.outputs))
        previous: tuple[Any, set] = (None, set())
        for own in tp.split(positions):
            inside = set(own)
            blocks = {o: sorted(missing[o] & inside) for o in g.outputs}
            column = tp.column(own[0])
            needed = tp.needed(own)
            # In a streamed column, what the previous tile read is handed over, not read again.
            fresh = needed - previous[1] if column is not None and column == previous[0] else needed
            previous = (column, needed)
            tiles.append(
                Tile(
                    {o: b for o, b in blocks.items() if b},
                    read_bytes=int(len(fresh) * block_bytes),
                    column=None if column is None else (g.source, column),
                )
            )
    return tiles
