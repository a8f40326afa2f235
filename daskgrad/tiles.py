"""Tiles of blocks: the unit of bounded-memory work, chosen to re-read as little as possible.

A read-once schedule for a stencil must hold a wavefront of blocks about the size of the block
grid's smallest cross-section: block ``i`` cannot be finished before block ``i + 1`` along every
differentiated axis has been read. For a 1 TiB cube that is tens of GiB. A bounded schedule
therefore cuts the block grid into *tiles* (boxes of blocks) that are computed one after another
(or one per worker at a time), each reading its own blocks and, for their faces, the blocks that
border it. Those bordering blocks are read again by the neighbouring tile: that is the price.

The price has a closed form. A cut between two tiles along axis ``i`` makes each side read one
plane of the other's blocks, so a tiling that cuts axis ``i`` ``c_i`` times reads

    extra = sum over differentiated axes i of 2 * c_i * (blocks / n_i)

blocks more than the input (``n_i`` blocks along axis ``i``; a periodic axis cut into ``t``
tiles has ``t`` cuts, not ``t - 1``). Extra reads along an axis depend only on how often that
axis is cut: cuts are cheapest along the longest axis (its planes are smallest) and free along
an axis that is not differentiated. :func:`choose_box` searches the tile shapes that fit the
memory for the one with the fewest extra reads.

This module is plain Python on block indices; it knows nothing of dask or zarr.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["TilePlan", "choose_box", "extra_reads", "neighbours"]

Index = tuple[int, ...]

# Above this many shapes to compare, each axis keeps a geometric sample of its candidate sizes.
_MAX_SHAPES = 200_000


def _cuts(n: int, b: int, periodic: bool) -> int:
    tiles = -(-n // b)
    if tiles <= 1:
        return 0
    return tiles if periodic else tiles - 1


def extra_reads(
    grid: Sequence[int], box: Sequence[int], axes: Iterable[int], periodic: Iterable[int] = ()
) -> int:
    """Blocks read beyond the input's own when ``grid`` is cut into tiles of ``box`` blocks.

    Examples
    --------
    A grid of 4 x 8 blocks differentiated along both axes, in tiles of 4 x 4 (one cut along
    the second axis, planes of 4 blocks, read from both sides):

    >>> extra_reads((4, 8), (4, 4), axes=(0, 1))
    8
    >>> extra_reads((4, 8), (4, 8), axes=(0, 1))  # one tile: read once
    0
    """
    total = math.prod(grid)
    periodic = set(periodic)
    return sum(
        2 * _cuts(grid[i], box[i], i in periodic) * (total // grid[i]) for i in set(axes) if grid[i]
    )


def _candidates(n: int, limit: int) -> list[int]:
    """Tile lengths worth trying along an axis of ``n`` blocks: ``ceil(n / k)``, at most ``limit``."""
    sizes = sorted({-(-n // k) for k in range(1, n + 1)})
    return [s for s in sizes if s <= limit] or [1]


def _thin(sizes: list[int], keep: int) -> list[int]:
    if len(sizes) <= keep:
        return sizes
    picks = {sizes[round(i * (len(sizes) - 1) / (keep - 1))] for i in range(keep)}
    return sorted(picks)


def choose_box(
    grid: Sequence[int],
    axes: Iterable[int],
    capacity: int,
    *,
    periodic: Iterable[int] = (),
    min_tiles: int = 1,
) -> Index:
    """The tile shape (in blocks) with the fewest extra reads that holds ``capacity`` blocks.

    Parameters
    ----------
    grid
        Blocks along each axis.
    axes
        The differentiated axes (the others are cut for free).
    capacity
        The most blocks one tile may own (at least 1).
    periodic
        Differentiated axes that wrap around.
    min_tiles
        Ask for at least this many tiles (to keep every worker busy) where the grid has that
        many blocks; among shapes with equal reads, fewer and larger tiles win.

    Examples
    --------
    A 2 x 8 x 16 grid whose tiles may own 16 blocks. Cutting the first axis would cost
    planes of 128 blocks, the second 32, the third 16, so the cuts go to the last two:

    >>> choose_box((2, 8, 16), axes=(0, 1, 2), capacity=16)
    (2, 2, 4)
    >>> extra_reads((2, 8, 16), (2, 2, 4), axes=(0, 1, 2))  # 1.12 times the input again
    288
    >>> choose_box((2, 8, 16), axes=(0, 1, 2), capacity=10**6)  # it all fits: read once
    (2, 8, 16)
    >>> choose_box((2, 8, 16), axes=(1, 2), capacity=16)  # axis 0 is cut for free
    (1, 4, 4)
    """
    grid = tuple(int(n) for n in grid)
    capacity = max(1, int(capacity))
    axes = {a for a in axes if grid[a] > 0}
    periodic = set(periodic)
    total = math.prod(grid)
    min_tiles = max(1, min(int(min_tiles), total))
    per_axis = [_candidates(n, capacity) if n else [1] for n in grid]
    count = math.prod(len(c) for c in per_axis)
    if count > _MAX_SHAPES:
        keep = max(2, int(_MAX_SHAPES ** (1 / len(grid))))
        per_axis = [_thin(c, keep) for c in per_axis]
    best: tuple | None = None
    for box in itertools.product(*per_axis):
        if math.prod(box) > capacity:
            continue
        tiles = math.prod(-(-n // b) for n, b in zip(grid, box) if n)
        if tiles < min_tiles:
            continue
        # Fewest extra reads; then fewest tiles; then the most even tile lengths.
        waste = sum(-(-n // b) * b - n for n, b in zip(grid, box))
        key = (extra_reads(grid, box, axes, periodic), tiles, waste, box)
        if best is None or key < best:
            best = key
    if best is None:  # min_tiles cannot be met with the capacity's shapes: one block per tile
        return tuple(1 if n else 0 for n in grid)
    return best[-1]


def neighbours(
    index: Index, grid: Sequence[int], axes: Iterable[int], periodic: Iterable[int] = ()
) -> Iterator[Index]:
    """The blocks whose faces block ``index`` needs: one each side along each differentiated axis.

    Examples
    --------
    >>> sorted(neighbours((0, 1), (3, 3), axes=(0, 1)))
    [(0, 0), (0, 2), (1, 1)]
    >>> sorted(neighbours((0,), (3,), axes=(0,), periodic=(0,)))
    [(1,), (2,)]
    """
    periodic = set(periodic)
    for a in axes:
        for step in (-1, 1):
            j = index[a] + step
            if 0 <= j < grid[a]:
                pass
            elif a in periodic and grid[a] > 1:
                j %= grid[a]
            else:
                continue
            if j != index[a]:
                yield (*index[:a], j, *index[a + 1 :])


@dataclass(frozen=True)
class TilePlan:
    """A block grid cut into tiles of ``box`` blocks.

    Examples
    --------
    >>> tp = TilePlan(grid=(4, 6), box=(4, 3), axes=(0, 1))
    >>> [t for t in tp.tiles()]
    [((0, 4), (0, 3)), ((0, 4), (3, 6))]
    >>> tp.extra_reads()
    8
    """

    grid: Index
    box: Index
    axes: tuple[int, ...]
    periodic: tuple[int, ...] = ()

    def tiles(self) -> Iterator[tuple[tuple[int, int], ...]]:
        """Each tile as ``(start, stop)`` block bounds per axis, in C order."""
        starts = [range(0, n, b) if n else range(1) for n, b in zip(self.grid, self.box)]
        for corner in itertools.product(*starts):
            yield tuple((s, min(n, s + b)) for s, n, b in zip(corner, self.grid, self.box))

    def contains(self, tile: tuple[tuple[int, int], ...], index: Index) -> bool:
        return all(a <= i < b for i, (a, b) in zip(index, tile))

    def split(self, blocks: Iterable[Index]) -> list[list[Index]]:
        """``blocks`` grouped by tile (tiles in C order, empty ones left out)."""
        groups: dict[Index, list[Index]] = {}
        for idx in blocks:
            corner = tuple(i // b for i, b in zip(idx, self.box))
            groups.setdefault(corner, []).append(idx)
        return [sorted(groups[c]) for c in sorted(groups)]

    def reads(self, own: Iterable[Index]) -> int:
        """Blocks a tile that writes the blocks ``own`` reads: them and their bordering ones."""
        own = set(own)
        border = {n for idx in own for n in neighbours(idx, self.grid, self.axes, self.periodic)}
        return len(own | border)

    def extra_reads(self) -> int:
        """Blocks read beyond the input's own by the whole tiling."""
        return extra_reads(self.grid, self.box, self.axes, self.periodic)
