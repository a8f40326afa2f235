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
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Tile", "TilePlan", "choose_box", "choose_plan", "extra_reads", "neighbours"]

Index = tuple[int, ...]

# Above this many shapes to compare, each axis keeps a geometric sample of its candidate sizes.
_MAX_SHAPES = 200_000


@dataclass(frozen=True)
class Tile:
    """One unit of bounded work: the output blocks it writes, all of one input variable.

    Attributes
    ----------
    blocks
        Output variable -> the block indices of it this tile writes.
    column
        Tiles of one column run in order on one worker (``None``: a column alone).
    group
        The input variable whose outputs these are.
    corner
        The tile's first block (its place in the tiling).
    """

    blocks: Mapping[str, Sequence[Index]]
    column: Hashable | None = None
    group: str | None = None
    corner: Index | None = None

    @property
    def count(self) -> int:
        return sum(len(b) for b in self.blocks.values())


def _cuts(n: int, b: int, periodic: bool) -> int:
    tiles = -(-n // b)
    if tiles <= 1:
        return 0
    return tiles if periodic else tiles - 1


def extra_reads(
    grid: Sequence[int],
    box: Sequence[int],
    axes: Iterable[int],
    periodic: Iterable[int] = (),
    stream: int | None = None,
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

    Streaming along the second axis (each tile hands the plane it shares with the next tile of
    its column over in memory), cuts along that axis are free:

    >>> extra_reads((4, 8), (4, 1), axes=(0, 1), stream=1)
    0
    """
    total = math.prod(grid)
    periodic = set(periodic)
    return sum(
        2 * _cuts(grid[i], box[i], i in periodic) * (total // grid[i])
        for i in set(axes)
        if grid[i] and i != stream
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


def choose_plan(
    grid: Sequence[int],
    axes: Iterable[int],
    capacity: int,
    *,
    periodic: Iterable[int] = (),
    min_columns: int = 1,
) -> TilePlan:
    """The tiling that reads least, streamed along one axis where that reads less.

    A streamed tiling runs each column of tiles (the tiles that differ only along the stream
    axis) in order on one worker, and the plane two consecutive tiles share is read once and
    handed over in memory. A tile then holds its own blocks plus that plane, and cuts along the
    stream axis cost nothing: thin slabs with a wide cross-section read least. Columns are the
    unit of parallel work, so at least ``min_columns`` of them are asked for where the grid
    allows. Without streaming, the best box of :func:`choose_box` (``min_tiles=min_columns``).

    Examples
    --------
    The 2 x 8 x 16 grid of 16 blocks per tile again: streamed along the last axis, in slabs of
    2 x 4 x 1 blocks (8 own, 8 handed over), only the one cut along the middle axis costs:

    >>> tp = choose_plan((2, 8, 16), axes=(0, 1, 2), capacity=16)
    >>> tp.box, tp.stream, tp.extra_reads()
    ((2, 4, 1), 2, 64)
    >>> choose_plan((2, 8, 16), axes=(0, 1, 2), capacity=10**6).stream is None  # it all fits
    True
    """
    grid = tuple(int(n) for n in grid)
    axes = tuple(sorted({a for a in axes if grid[a] > 0}))
    periodic = tuple(sorted(set(periodic) & set(axes)))
    capacity = max(1, int(capacity))
    box = choose_box(grid, axes, capacity, periodic=periodic, min_tiles=min_columns)
    best = TilePlan(grid, box, axes, periodic)
    best_key = (best.extra_reads(), best.count())
    for s in axes:
        if s in periodic or grid[s] < 2:
            continue
        # The cross-section of a column, with room for its own slab and the plane handed over.
        rest = tuple(1 if i == s else n for i, n in enumerate(grid))
        columns_min = min(min_columns, math.prod(rest))
        section = choose_box(rest, axes, capacity // 2, periodic=periodic, min_tiles=columns_min)
        area = math.prod(section)
        thickness = max(1, min(grid[s], capacity // area - 1))
        sbox = tuple(thickness if i == s else b for i, b in enumerate(section))
        plan = TilePlan(grid, sbox, axes, periodic, stream=s)
        key = (plan.extra_reads(), plan.count())
        if key < best_key:
            best, best_key = plan, key
    return best


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


def _unravel(flat: int, sizes: Sequence[int]) -> list[int]:
    """``flat`` as an index into a C-ordered grid of ``sizes``."""
    out = []
    for n in reversed(sizes):
        out.append(flat % n if n else 0)
        flat = flat // n if n else flat
    return out[::-1]


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
    stream: int | None = None

    def _order(self) -> list[int]:
        """Axes from the slowest-varying to the fastest: the stream axis last."""
        dims = list(range(len(self.grid)))
        if self.stream is not None:
            dims.remove(self.stream)
            dims.append(self.stream)
        return dims

    def count(self) -> int:
        """Number of tiles."""
        return math.prod(-(-n // b) for n, b in zip(self.grid, self.box) if n)

    def tiles(self, lanes: int = 1) -> Iterator[tuple[tuple[int, int], ...]]:
        """Each tile as ``(start, stop)`` block bounds per axis; a column's tiles in a row.

        With ``lanes`` > 1 (workers running columns side by side) the columns come from
        ``lanes`` far-apart stretches of the grid in turn, so the columns in flight at once
        are seldom neighbours, and a column's neighbours have mostly finished before it starts
        (their faces are then in the face store). One lane: the columns in grid order.

        Examples
        --------
        >>> tp = TilePlan(grid=(4,), box=(1,), axes=(0,))
        >>> [t[0][0] for t in tp.tiles()], [t[0][0] for t in tp.tiles(lanes=2)]
        ([0, 1, 2, 3], [0, 2, 1, 3])
        """
        order = self._order()
        starts = [range(0, n, b) if n else range(1) for n, b in zip(self.grid, self.box)]
        column_axes = order if self.stream is None else order[:-1]
        sizes = [len(starts[a]) for a in column_axes]
        count = math.prod(sizes)
        along = [0] if self.stream is None else list(starts[self.stream])
        stretch = -(-count // max(1, lanes))
        for step in range(stretch):
            for lane in range(max(1, lanes)):
                c = lane * stretch + step
                if c >= count:
                    continue
                by_axis = {a: starts[a][i] for a, i in zip(column_axes, _unravel(c, sizes))}
                for s0 in along:
                    if self.stream is not None:
                        by_axis[self.stream] = s0
                    yield tuple(
                        (by_axis[a], min(n, by_axis[a] + b))
                        for a, (n, b) in enumerate(zip(self.grid, self.box))
                    )

    def column(self, index: Index) -> Index | None:
        """The column of a block (its tile's corner without the stream axis), if streamed."""
        if self.stream is None:
            return None
        return tuple(i // b for a, (i, b) in enumerate(zip(index, self.box)) if a != self.stream)

    def split(self, blocks: Iterable[Index]) -> list[list[Index]]:
        """``blocks`` grouped by tile, in the order of :meth:`tiles`; empty tiles left out."""
        order = self._order()
        groups: dict[Index, list[Index]] = {}
        for idx in blocks:
            corner = tuple(idx[a] // self.box[a] for a in order)
            groups.setdefault(corner, []).append(idx)
        return [sorted(groups[c]) for c in sorted(groups)]

    def needed(self, own: Iterable[Index]) -> set[Index]:
        """The blocks a tile that writes the blocks ``own`` reads: them and those bordering them."""
        own = set(own)
        return own | {n for i in own for n in neighbours(i, self.grid, self.axes, self.periodic)}

    def reads(self, own: Iterable[Index]) -> int:
        """How many blocks :meth:`needed` holds."""
        return len(self.needed(own))

    def extra_reads(self) -> int:
        """Blocks read beyond the input's own by the whole tiling."""
        return extra_reads(self.grid, self.box, self.axes, self.periodic, self.stream)
