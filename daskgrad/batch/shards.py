"""Sharded outputs: which blocks a shard holds, and writing a shard whole.

A zarr v3 shard is one object holding a box of inner chunks; with ``output.encoding.shards``
each inner chunk is one dask block. Writing part of a shard reads, changes and rewrites the
whole object, so daskgrad writes every shard whole, from all its blocks, in one task
(:func:`write_shard`, planned by :class:`daskgrad.batch.writer.TileWriter`): no two tasks ever touch
one shard, and the presence of a shard's key means all its blocks are written
(:func:`daskgrad.batch.store.present_blocks`). Imported only where shards are used, so that workers
of unsharded runs do not carry it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr

from daskgrad.batch.grid import BlockBitmap, blocks_of_shard, chunk_grid, shard_of
from daskgrad.batch.remote import zarr_store_of
from daskgrad.batch.store import Store, host_array, shard_blocks_of, write_block

__all__ = ["blocks_of_shard", "shard_blocks_of", "whole_shards", "write_shard"]


def whole_shards(store: Store, variable: str, blocks: BlockBitmap) -> BlockBitmap:
    """``blocks`` and every other block of the shards they are in (a shard is written whole).

    Examples
    --------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/s.zarr"
    >>> g = zarr.open_group(path, mode="w")
    >>> _ = g.create_array("y", shape=(6,), chunks=(1,), shards=(2,), dtype="f4")
    >>> todo = BlockBitmap((6,)); todo.add((3,))
    >>> sorted(whole_shards(path, "y", todo))
    [(2,), (3,)]
    """
    if not blocks:
        return blocks
    array = zarr.open_array(zarr_store_of(store), path=variable, mode="r")
    per = shard_blocks_of(array)
    if per is None:
        return blocks
    grid = chunk_grid(array.shape, array.chunks)
    out = blocks.copy()
    for shard in {shard_of(idx, per) for idx in blocks}:
        out.update(blocks_of_shard(shard, per, grid))
    return out


def write_shard(
    store: Store,
    variable: str,
    region: tuple[slice, ...],
    token: str | None,
    layout: tuple[int, ...],
    *blocks: Any,
) -> int:
    """Write a whole shard at once from its blocks (``layout``: blocks along each dim, the
    blocks in C order); returns the bytes written.

    A shard is one object in the store: written whole by one task, it is never read, changed
    and written back by two tasks at once, and its key, once present, stands for all its
    blocks (:func:`present_blocks`).

    Examples
    --------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/s.zarr"
    >>> g = zarr.open_group(path, mode="w")
    >>> _ = g.create_array("y", shape=(6,), chunks=(2,), shards=(4,), dtype="f4")
    >>> write_shard(path, "y", (slice(0, 4),), None, (2,), np.arange(2.0), np.arange(2.0, 4.0))
    16
    >>> from daskgrad.batch.store import present_blocks
    >>> sorted(present_blocks(path, "y"))
    [(0,), (1,)]
    """
    parts = [host_array(b) for b in blocks]
    whole = np.block(_nest(parts, layout)) if len(parts) > 1 else parts[0]
    return write_block(whole, store, variable, region, token)


def _nest(flat: list, layout: tuple[int, ...]) -> list:
    """A flat C-ordered list as the nested lists ``np.block`` takes."""
    if len(layout) <= 1:
        return list(flat)
    step = len(flat) // layout[0]
    return [_nest(flat[i * step : (i + 1) * step], layout[1:]) for i in range(layout[0])]
