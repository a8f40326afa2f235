"""The one rule for a regular chunk grid: one dask block per zarr chunk.

zarr stores a regular grid (equal chunks, the last one possibly shorter); a dask array whose
chunks are not regular is rechunked to its largest chunk per dim before it is stored. The
accessor's ``to_zarr``, the bounded writer and the batch runner all use these two functions.
"""

from __future__ import annotations

import dask.array as da

__all__ = ["as_regular", "regular_chunks"]


def regular_chunks(chunks: tuple[tuple[int, ...], ...]) -> tuple[int, ...] | None:
    """The zarr chunk shape if ``chunks`` is a regular grid (all equal, last may be shorter).

    Returns None for an irregular chunking, which must be rechunked before it is stored.

    Examples
    --------
    >>> regular_chunks(((4, 4, 2), (3,)))
    (4, 3)
    >>> regular_chunks(((2, 4),)) is None
    True
    """
    shape = []
    for c in chunks:
        first = c[0] if c else 0
        if any(n != first for n in c[:-1]) or (c and c[-1] > first):
            return None
        shape.append(max(first, 1))
    return tuple(shape)


def as_regular(values: da.Array) -> tuple[da.Array, tuple[int, ...]]:
    """``values`` on a regular chunk grid (rechunked to its largest chunk per dim if it is not),
    and that grid's chunk shape. Values are unchanged.

    Examples
    --------
    >>> arr, shape = as_regular(da.zeros(10, chunks=((3, 5, 2),)))
    >>> arr.chunks, shape
    (((5, 5),), (5,))
    """
    chunk_shape = regular_chunks(values.chunks)
    if chunk_shape is None:
        chunk_shape = tuple(max(c) for c in values.chunks)
        values = values.rechunk(chunk_shape)
    return values, chunk_shape
