"""Block grids: block indices, their regions, shards of blocks, and a bitmap of blocks.

Plain integer arithmetic on shapes and chunk shapes, shared by the store, the shards, the tiles
and the writer (a leaf module: it imports nothing of daskgrad). One block of a run is one zarr
chunk of its output, so "block" and "chunk" index the same grid.

:class:`BlockBitmap` is the run's bookkeeping of which blocks are written or still to write:
one bit per block, so a 1.3-million-block array costs 160 KiB, never a set of index tuples.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

__all__ = [
    "BlockBitmap",
    "blocks_of_shard",
    "box_blocks",
    "chunk_grid",
    "region",
    "shard_of",
]

Index = tuple[int, ...]


def chunk_grid(shape: Sequence[int], chunk_shape: Sequence[int]) -> Index:
    """Number of chunks along each dim.

    Examples
    --------
    >>> chunk_grid((10, 4), (3, 4)), chunk_grid((0, 5), (2, 2))
    ((4, 1), (0, 3))
    """
    return tuple(-(-int(n) // int(c)) if n else 0 for n, c in zip(shape, chunk_shape))


def region(index: Index, chunk_shape: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    """The array region of block ``index`` (the last blocks along a dim may be shorter).

    Examples
    --------
    >>> region((1, 2), (4, 3), (6, 8))
    (slice(4, 6, None), slice(6, 8, None))
    """
    return tuple(slice(i * c, min(n, (i + 1) * c)) for i, c, n in zip(index, chunk_shape, shape))


def shard_of(index: Index, per: Sequence[int]) -> Index:
    """The shard holding block ``index`` with ``per`` blocks per shard along each dim.

    Examples
    --------
    >>> shard_of((5, 2), (2, 4))
    (2, 0)
    """
    return tuple(i // p for i, p in zip(index, per))


def blocks_of_shard(shard: Index, per: Sequence[int], grid: Sequence[int]) -> list[Index]:
    """The block indices a shard holds (fewer at the array's far edges), in C order.

    Examples
    --------
    >>> blocks_of_shard((1, 0), (2, 2), (3, 4))
    [(2, 0), (2, 1)]
    """
    ranges = [range(i * p, min(n, (i + 1) * p)) for i, p, n in zip(shard, per, grid)]
    return list(itertools.product(*ranges))


def box_blocks(bounds: Sequence[tuple[int, int]]) -> Iterator[Index]:
    """Every block of a box given as ``(start, stop)`` per dim, in C order.

    Examples
    --------
    >>> list(box_blocks([(0, 2), (3, 4)]))
    [(0, 3), (1, 3)]
    """
    return itertools.product(*(range(a, b) for a, b in bounds))


class BlockBitmap:
    """A set of blocks of one grid, one bit per block.

    Parameters
    ----------
    grid
        Blocks along each dim.
    full
        Start with every block in the set (else none).

    Examples
    --------
    >>> b = BlockBitmap((2, 3))
    >>> b.add((1, 2)); b.add((0, 0))
    >>> (1, 2) in b, (1, 1) in b, len(b)
    (True, False, 2)
    >>> b.select([(0, 0), (0, 1), (1, 2)])
    [(0, 0), (1, 2)]
    >>> todo = BlockBitmap((2, 3), full=True)
    >>> todo.discard((0, 0)); len(todo), sorted(todo)[:2]
    (5, [(0, 1), (0, 2)])
    >>> sorted(todo - b), b == {(0, 0), (1, 2)}
    ([(0, 1), (0, 2), (1, 0), (1, 1)], True)
    """

    def __init__(self, grid: Sequence[int], *, full: bool = False) -> None:
        self.grid: Index = tuple(int(n) for n in grid)
        self.size = math.prod(self.grid)
        self._bits = np.zeros((self.size + 7) // 8, dtype=np.uint8)
        if full and self.size:
            self._bits[:] = 0xFF
            spare = 8 * self._bits.size - self.size
            if spare:
                self._bits[-1] = (0xFF << spare) & 0xFF  # big-endian bits: the spare ones last

    def _flat(self, index: Index) -> int:
        flat = 0
        for i, n in zip(index, self.grid):
            if not 0 <= i < n:
                raise IndexError(f"block {index} is outside the grid {self.grid}")
            flat = flat * n + int(i)
        return flat

    def add(self, index: Index) -> None:
        """Put one block in the set."""
        f = self._flat(index)
        self._bits[f >> 3] |= np.uint8(0x80 >> (f & 7))

    def discard(self, index: Index) -> None:
        """Take one block out of the set (a block not in it is ignored)."""
        f = self._flat(index)
        self._bits[f >> 3] &= np.uint8(~(0x80 >> (f & 7)) & 0xFF)

    def update(self, indices: Iterable[Index]) -> None:
        """Put many blocks in the set."""
        flat = self._flat_many(indices)
        np.bitwise_or.at(self._bits, flat >> 3, (0x80 >> (flat & 7)).astype(np.uint8))

    def _flat_many(self, indices: Iterable[Index]) -> np.ndarray:
        rows = np.asarray(list(indices), dtype=np.intp).reshape(-1, len(self.grid))
        if not rows.size:
            return np.zeros(0, dtype=np.intp)
        return np.asarray(np.ravel_multi_index(tuple(rows.T), self.grid))

    def __contains__(self, index: object) -> bool:
        assert isinstance(index, tuple)
        f = self._flat(index)
        return bool(self._bits[f >> 3] & (0x80 >> (f & 7)))

    def select(self, indices: Iterable[Index]) -> list[Index]:
        """Those of ``indices`` that are in the set, in their order (vectorized)."""
        listed = [tuple(i) for i in indices]
        if not listed:
            return []
        flat = self._flat_many(listed)
        hit = (self._bits[flat >> 3] & (0x80 >> (flat & 7)).astype(np.uint8)) != 0
        return [i for i, h in zip(listed, hit) if h]

    def __len__(self) -> int:
        return int(np.unpackbits(self._bits, count=self.size).sum()) if self.size else 0

    def __iter__(self) -> Iterator[Index]:
        """The blocks in the set in C order, a chunk of the bitmap at a time."""
        step = 1 << 16  # bytes of the bitmap unpacked at once
        for start in range(0, self._bits.size, step):
            bits = np.unpackbits(self._bits[start : start + step])
            for f in np.flatnonzero(bits):
                flat = 8 * start + int(f)
                if flat < self.size:
                    yield tuple(int(i) for i in np.unravel_index(flat, self.grid))

    def copy(self) -> BlockBitmap:
        out = BlockBitmap(self.grid)
        out._bits = self._bits.copy()
        return out

    def _same_grid(self, other: object) -> BlockBitmap:
        if not isinstance(other, BlockBitmap) or other.grid != self.grid:
            raise TypeError(f"a BlockBitmap of grid {self.grid} needs another of the same grid")
        return other

    def __or__(self, other: BlockBitmap) -> BlockBitmap:
        out = self.copy()
        out._bits |= self._same_grid(other)._bits
        return out

    def __sub__(self, other: BlockBitmap) -> BlockBitmap:
        out = self.copy()
        out._bits &= ~self._same_grid(other)._bits
        return out

    def __and__(self, other: BlockBitmap) -> BlockBitmap:
        out = self.copy()
        out._bits &= self._same_grid(other)._bits
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (set, frozenset)):
            return set(self) == other
        return (
            isinstance(other, BlockBitmap)
            and other.grid == self.grid
            and bool(np.array_equal(other._bits, self._bits))
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __bool__(self) -> bool:
        return bool(self._bits.any())

    def nbytes(self) -> int:
        """The memory of the bitmap itself."""
        return int(self._bits.nbytes)

    def __repr__(self) -> str:
        return f"BlockBitmap(grid={self.grid}, blocks={len(self)})"
