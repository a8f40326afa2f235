"""N-D coordinate arrays as spacing: each line along the dim is its own ``numpy.gradient`` call.

``daskgrad.gradient(values, spacing=[..., coord, ...])`` accepts, for a dim, a coordinate
array with two or more dims (numpy#9401). It aligns with ``values`` by numpy's broadcasting
rules, trailing dims first: it has at most ``values.ndim`` dims, the dim's full length along
that dim, and 1 or the values' length along every other dim. A 1-D coordinate keeps its usual
meaning (one coordinate for the whole axis) and never comes here.

Each line ``values[..., :, ...]`` along the dim is differentiated exactly as
``numpy.gradient(line, line_coordinate, edge_order=edge_order)`` would do it, bit for bit,
including numpy's decision per line: a line whose coordinate differences are all equal uses the
scalar-step formulas, every other line numpy's three-point weights. That decision needs the
whole line, so it is taken once per line (a small reduction along the dim, lazy for dask), and
each block then computes both formulas from its own points and a halo of depth 1 of the values
and the coordinate, and keeps, per line, the one numpy would use. Every expression is numpy's,
term for term, on arrays of the dtypes of numpy's scalars, so the bits are numpy's.

Coordinates must be real numbers (integer or float), finite, with no two adjacent values equal
along the dim: a numpy or CuPy coordinate is checked when ``gradient`` is called, whatever the
values are; a dask coordinate inside the graph, failing at compute time, naming the dim. Values may be integer, bool, or real floating (complex and datetime values are refused:
numpy computes the ends of a 1-D line with scalar arithmetic, which rounds differently).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from daskgrad.core._compat import array_module, is_cupy_array, to_numpy
from daskgrad.core.kernels import working_dtypes

__all__ = ["NDAxisSpacing", "differentiate_with_nd", "is_nd_coordinate", "nd_axis_spacing"]


def is_nd_coordinate(entry: Any) -> bool:
    """True for a spacing entry with two or more dims (an N-D coordinate).

    Examples
    --------
    >>> is_nd_coordinate(np.zeros((2, 3))), is_nd_coordinate(np.zeros(3)), is_nd_coordinate(1.0)
    (True, False, False)
    """
    ndim = getattr(entry, "ndim", None)
    if ndim is None:
        if not isinstance(entry, (list, tuple)):
            return False
        ndim = np.ndim(entry)
    return ndim >= 2


@dataclass(frozen=True, eq=False)
class NDAxisSpacing:
    """The spacing of one axis given by an N-D coordinate (checked for shape and dtype only).

    Attributes
    ----------
    axis
        The (non-negative) axis of the values.
    size
        The axis length.
    edge_order
        1 or 2.
    coord
        The coordinate with leading dims of length 1 added so it has the values' ndim (numpy,
        CuPy or dask; integers are not yet promoted).
    label
        How error messages name the axis (``"dim 1"``).
    lead
        How many leading dims were added (error messages give indices in the user's array).
    """

    axis: int
    size: int
    edge_order: int
    coord: Any
    label: str
    lead: int

    periodic = False  # an N-D coordinate has ends; periodic N-D axes are not supported

    @property
    def complex(self) -> bool:
        """Always False: complex N-D coordinates are refused when the record is made."""
        return False

    @property
    def three_point_edges(self) -> bool:
        """True when the ends use the three-point rule (``edge_order=2``)."""
        return self.edge_order == 2


def nd_axis_spacing(
    entry: Any, shape: Sequence[int], axis: int, edge_order: int, label: str | None = None
) -> NDAxisSpacing:
    """Check an N-D coordinate's shape and dtype against the values and make its record.

    A numpy or CuPy coordinate's values are checked here (finite, no two adjacent values equal
    along the dim), for numpy and dask values alike; a dask coordinate stays lazy and is
    checked inside the graph, at compute time.

    Raises
    ------
    ValueError
        More dims than the values, a length along the dim other than the values', a length
        along another dim that is neither 1 nor the values', too few points for
        ``edge_order``; for a numpy or CuPy coordinate, a value that is not finite or two
        adjacent values along the dim that are equal.
    TypeError
        A coordinate that does not hold real numbers (complex, bool, datetime, object).

    Examples
    --------
    >>> s = nd_axis_spacing(np.arange(4.0).reshape(4, 1), (3, 4, 5), axis=1, edge_order=1)
    >>> s.coord.shape, s.label
    ((1, 4, 1), 'dim 1')
    >>> nd_axis_spacing(np.zeros((3, 5)), (3, 4, 5), axis=1, edge_order=1)
    Traceback (most recent call last):
    ...
    ValueError: coordinate for dim 1 has shape (3, 5), which does not fit values of shape (3, 4, 5): aligned with the values' trailing dims it has 3 point(s) along dim 1, which needs 4; an N-D coordinate aligns with the values' trailing dims (numpy broadcasting) and needs the dim's length (4) along dim 1 and 1 or the values' length along every other dim
    """
    label = label or f"dim {axis}"
    coord = entry
    if not (isinstance(coord, (np.ndarray, da.Array)) or is_cupy_array(coord)):
        coord = np.asarray(coord)  # a list, or another array-like
    cshape, vshape = tuple(coord.shape), tuple(shape)
    if any(np.isnan(n) for n in cshape):
        raise ValueError(
            f"N-D coordinate for {label} is a dask array with unknown chunk sizes (shape "
            f"{cshape}); call coord.compute_chunk_sizes() first"
        )
    if any(np.isnan(n) for n in vshape):
        raise ValueError(
            f"values is a dask array with unknown chunk sizes (shape {vshape}), which an N-D "
            f"coordinate for {label} cannot be checked against; call "
            "values.compute_chunk_sizes() first"
        )
    allowed = (
        "an N-D coordinate aligns with the values' trailing dims (numpy broadcasting) and needs "
        f"the dim's length ({vshape[axis]}) along {label} and 1 or the values' length along "
        "every other dim"
    )
    head = f"coordinate for {label} has shape {cshape}, which does not fit values of shape {vshape}"
    if len(cshape) > len(vshape):
        raise ValueError(
            f"{head}: it has {len(cshape)} dims, more than the values' {len(vshape)}; {allowed}"
        )
    lead = len(vshape) - len(cshape)
    aligned = (1,) * lead + cshape
    if aligned[axis] != vshape[axis]:
        raise ValueError(
            f"{head}: aligned with the values' trailing dims it has {aligned[axis]} point(s) "
            f"along {label}, which needs {vshape[axis]}; {allowed}"
        )
    for d, (c, v) in enumerate(zip(aligned, vshape)):
        if c not in (1, v):
            raise ValueError(
                f"{head}: it does not broadcast along dim {d} ({c} against {v}); {allowed}"
            )
    dtype = np.dtype(coord.dtype)
    if dtype.kind not in "iuf":
        raise TypeError(
            f"N-D coordinate for {label} must hold real numbers (integer or float), got dtype "
            f"{dtype}"
        )
    if vshape[axis] < edge_order + 1:
        raise ValueError(
            f"{label} has {vshape[axis]} point(s); edge_order={edge_order} needs at least "
            f"{edge_order + 1} points along every differentiated dim"
        )
    coord = coord.reshape(aligned)
    if not isinstance(coord, da.Array):
        # A concrete (numpy or CuPy) coordinate is checked now, whatever the values are; only
        # a dask coordinate waits for the graph.
        _check_finite(coord, label=label, lead=lead)
        diffs = array_module(coord).diff(_as_float(coord), axis=axis)
        _check_distinct(diffs, label=label, axis=axis, lead=lead)
    return NDAxisSpacing(axis, vshape[axis], edge_order, coord, label, lead)


def _index(ndim: int, axis: int, start: int | None, stop: int | None) -> tuple:
    key = [slice(None)] * ndim
    key[axis] = slice(start, stop)
    return tuple(key)


def _as_float(c: Any) -> Any:
    # numpy.gradient turns integer coordinates into float64 before differencing them.
    return c.astype(np.float64) if np.dtype(c.dtype).kind in "iu" else c


def _offsets(block_info: dict | None, ndim: int) -> list[int]:
    if not block_info:
        return [0] * ndim
    return [start for start, _ in block_info[0]["array-location"]]


def _check_finite(c: Any, *, label: str, lead: int, block_info: dict | None = None) -> Any:
    """Raise, naming the dim and the index, for a non-finite coordinate; return ``c``."""
    xp = array_module(c)
    bad = ~xp.isfinite(c)
    if bool(bad.any()):
        local = [int(i[0]) for i in xp.nonzero(bad)]
        index = tuple(o + i for o, i in zip(_offsets(block_info, c.ndim), local))[lead:]
        raise ValueError(
            f"coordinate for {label} must be finite, got {c[tuple(local)]} at index {index}"
        )
    return c


def _check_distinct(
    d: Any, *, label: str, axis: int, lead: int, block_info: dict | None = None
) -> Any:
    """Raise, naming the dim and the indices, where two adjacent coordinates are equal."""
    xp = array_module(d)
    zero = d == 0
    if bool(zero.any()):
        local = [int(i[0]) for i in xp.nonzero(zero)]
        index = [o + i for o, i in zip(_offsets(block_info, d.ndim), local)]
        after = list(index)
        after[axis] += 1
        raise ValueError(
            f"coordinate for {label} has equal adjacent values along that dim, at indices "
            f"{tuple(index[lead:])} and {tuple(after[lead:])}; a gradient needs distinct "
            "adjacent coordinate values"
        )
    return d


def _line_decision(coord: Any, s: NDAxisSpacing) -> tuple[Any, Any]:
    """Per line: numpy's uniform flag and the first coordinate difference (axis kept, length 1).

    Checks the coordinate on the way (eagerly for host arrays, in the graph for dask).
    """
    axis, ndim = s.axis, coord.ndim
    label, lead = s.label, s.lead
    if isinstance(coord, da.Array):
        coord = da.map_blocks(_check_finite, coord, dtype=coord.dtype, label=label, lead=lead)
        diffs = da.diff(_as_float(coord), axis=axis)
        diffs = diffs.map_blocks(
            _check_distinct, dtype=diffs.dtype, axis=axis, label=label, lead=lead
        )
    else:  # checked when the record was made (nd_axis_spacing)
        diffs = array_module(coord).diff(_as_float(coord), axis=axis)
    first = diffs[_index(ndim, axis, 0, 1)]
    uniform = (diffs == first).all(axis=axis, keepdims=True)
    return uniform, first


def _ends(f: Any, c: Any, uniform: Any, d0: Any, axis: int, edge_order: int, at_start: bool):
    """numpy's one-sided value at the first (``at_start``) or last point of each line."""
    xp = array_module(f)
    n = f.shape[axis]

    def p(k: int) -> Any:
        return f[_index(f.ndim, axis, k, k + 1)]

    def x(k: int) -> Any:
        return c[_index(c.ndim, axis, k, k + 1)]

    if edge_order == 1:
        if at_start:
            return (p(1) - p(0)) / (x(1) - x(0))
        return (p(n - 1) - p(n - 2)) / xp.where(uniform, d0, x(n - 1) - x(n - 2))
    if at_start:
        dx1, dx2 = x(1) - x(0), x(2) - x(1)
        a = xp.where(uniform, -1.5 / d0, -(2.0 * dx1 + dx2) / (dx1 * (dx1 + dx2)))
        b = xp.where(uniform, 2.0 / d0, (dx1 + dx2) / (dx1 * dx2))
        cc = xp.where(uniform, -0.5 / d0, -dx1 / (dx2 * (dx1 + dx2)))
        return a * p(0) + b * p(1) + cc * p(2)
    dx1, dx2 = x(n - 2) - x(n - 3), x(n - 1) - x(n - 2)
    a = xp.where(uniform, 0.5 / d0, (dx2) / (dx1 * (dx1 + dx2)))
    b = xp.where(uniform, -2.0 / d0, -(dx2 + dx1) / (dx1 * dx2))
    cc = xp.where(uniform, 1.5 / d0, (2.0 * dx2 + dx1) / (dx2 * (dx1 + dx2)))
    return a * p(n - 3) + b * p(n - 2) + cc * p(n - 1)


def _nd_block(
    f: Any,
    c: Any,
    pos: Any,
    uniform: Any,
    d0: Any,
    *,
    axis: int,
    size: int,
    edge_order: int,
    values_dtype: np.dtype,
) -> Any:
    """d/d(axis) of one block with its halo (``pos``: the global index of each point).

    Points whose neighbours lie outside the block (the halo) get placeholders; the caller
    trims them. A point at index 0 or ``size - 1`` of the axis gets numpy's one-sided rule.
    """
    xp = array_module(f)
    work, out_dtype = working_dtypes(np.dtype(values_dtype))
    f = f if np.dtype(f.dtype) == work else f.astype(work)
    c = _as_float(xp.asarray(c))
    uniform, d0 = xp.asarray(uniform), xp.asarray(d0)
    pos = to_numpy(pos).reshape(-1)
    n = f.shape[axis]
    shape = np.broadcast_shapes(f.shape, c.shape)
    out = xp.zeros(shape, dtype=out_dtype)
    quiet = np.errstate(all="ignore") if xp is np else contextlib.nullcontext()
    with quiet:  # the formula a line does not use may divide by zero; it is discarded
        if n >= 3:
            prev, cur, nxt = (f[_index(f.ndim, axis, k, n - 2 + k)] for k in range(3))
            dst = out[_index(out.ndim, axis, 1, n - 1)]
            # Only the formulas some line of the block uses are computed (all lines of a
            # regular grid take the same branch; the bits do not depend on this shortcut).
            some_uniform, all_uniform = bool(uniform.any()), bool(uniform.all())
            central_uniform = (nxt - prev) / (2.0 * d0) if some_uniform else None
            if all_uniform:
                dst[...] = central_uniform
            else:
                x0, x1, x2 = (c[_index(c.ndim, axis, k, n - 2 + k)] for k in range(3))
                dx1, dx2 = x1 - x0, x2 - x1
                a = -(dx2) / (dx1 * (dx1 + dx2))
                b = (dx2 - dx1) / (dx1 * dx2)
                cc = dx1 / (dx2 * (dx1 + dx2))
                central = a * prev + b * cur + cc * nxt
                dst[...] = (
                    central if not some_uniform else xp.where(uniform, central_uniform, central)
                )
        if pos[0] == 0:
            out[_index(out.ndim, axis, 0, 1)] = _ends(f, c, uniform, d0, axis, edge_order, True)
        if pos[-1] == size - 1:
            out[_index(out.ndim, axis, n - 1, n)] = _ends(
                f, c, uniform, d0, axis, edge_order, False
            )
    return out


def _work_chunks(chunks: tuple[int, ...], edge_order: int) -> tuple[int, ...]:
    """Chunks along the axis the halo can use: no empty chunks; with ``edge_order=2`` no end
    chunk of length 1 (the three-point rule needs three points in a block plus its halo)."""
    c = [n for n in chunks if n > 0]
    if edge_order == 2:
        while len(c) > 1 and c[0] < 2:
            c[0:2] = [c[0] + c[1]]
        while len(c) > 1 and c[-1] < 2:
            c[-2:] = [c[-2] + c[-1]]
    return tuple(c)


def _nd_gradient_dask(values: da.Array, s: NDAxisSpacing, dtype: np.dtype) -> da.Array:
    """The lazy derivative along ``s.axis``: a depth-1 halo of values, coordinate and index."""
    axis, ndim = s.axis, values.ndim
    chunks = list(values.chunks)
    chunks[axis] = _work_chunks(values.chunks[axis], s.edge_order)
    work = values.rechunk(tuple(chunks)) if tuple(chunks) != values.chunks else values
    coord = s.coord if isinstance(s.coord, da.Array) else da.from_array(s.coord, chunks=-1)
    # The coordinate's chunks follow the values' along every dim it spans (broadcast dims: 1).
    coord = coord.rechunk(
        tuple(work.chunks[d] if coord.shape[d] == work.shape[d] else -1 for d in range(ndim))
    )
    uniform, d0 = _line_decision(coord, s)
    pos_shape = [1] * ndim
    pos_shape[axis] = s.size
    pos = da.arange(s.size, chunks=(work.chunks[axis],)).reshape(pos_shape)
    halo = {axis: 1}
    _, out_dtype = working_dtypes(np.dtype(dtype))
    meta = work._meta.astype(out_dtype) if work._meta.dtype != out_dtype else work._meta
    result = da.map_overlap(
        _nd_block, work, coord, pos, uniform, d0,
        depth=[halo, halo, halo, {axis: 0}, {axis: 0}], boundary="none", trim=True,
        dtype=out_dtype, meta=meta, axis=axis, size=s.size, edge_order=s.edge_order,
        values_dtype=np.dtype(dtype),
    )  # fmt: skip
    return result if result.chunks == values.chunks else result.rechunk(values.chunks)


def _check_values_dtype(dtype: np.dtype, label: str) -> None:
    if dtype.kind not in "iubf":
        raise TypeError(
            f"values of dtype {dtype} cannot take an N-D coordinate for {label}: N-D "
            "coordinates support integer, bool and real floating values (numpy computes the "
            "ends of each line with scalar arithmetic, which for complex and datetime values "
            "rounds differently from arrays)"
        )


def nd_gradient(values: Any, s: NDAxisSpacing) -> Any:
    """numpy.gradient of every line of ``values`` along ``s.axis`` with its own coordinate.

    Examples
    --------
    >>> f = np.array([[0.0, 1.0, 4.0], [0.0, 1.0, 4.0]])
    >>> x = np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 3.0]])
    >>> g = nd_gradient(f, nd_axis_spacing(x, f.shape, axis=1, edge_order=1))
    >>> g[0].tolist(), g[1].tolist() == np.gradient(f[1], x[1]).tolist()
    ([1.0, 2.0, 3.0], True)
    """
    _check_values_dtype(np.dtype(values.dtype), s.label)
    if isinstance(values, da.Array):
        return _nd_gradient_dask(values, s, np.dtype(values.dtype))
    xp = array_module(values)
    coord = s.coord
    if isinstance(coord, da.Array):  # numpy or CuPy values: the coordinate is computed here
        coord = coord.compute()
    coord = xp.asarray(coord)
    uniform, d0 = _line_decision(coord, s)
    pos = np.array([0, s.size - 1])  # the whole axis: both ends are here
    return _nd_block(
        values, coord, pos, uniform, d0,
        axis=s.axis, size=s.size, edge_order=s.edge_order, values_dtype=np.dtype(values.dtype),
    )  # fmt: skip


def differentiate_with_nd(
    values: Any, spacings: Sequence[Any], differentiate: Callable[[Any, Sequence[Any]], tuple]
) -> tuple:
    """Results for ``spacings``, in order: N-D coordinate axes here, the rest by ``differentiate``.

    ``differentiate`` is :func:`daskgrad.core.gradient.differentiate_axes` (passed in, so this
    module does not import the router that imports it).

    Examples
    --------
    >>> from daskgrad.core.gradient import differentiate_axes
    >>> from daskgrad.core.spacing import axis_spacing
    >>> f = np.arange(6.0).reshape(2, 3) ** 2
    >>> nd = nd_axis_spacing(np.array([[0.0, 1.0, 2.0]]), f.shape, axis=1, edge_order=1)
    >>> d0, d1 = differentiate_with_nd(
    ...     f, [axis_spacing(None, axis=0, size=2, edge_order=1), nd], differentiate_axes
    ... )
    >>> d1[1].tolist()
    [7.0, 8.0, 9.0]
    """
    regular = [s for s in spacings if not isinstance(s, NDAxisSpacing)]
    others = iter(differentiate(values, regular) if regular else ())
    return tuple(
        nd_gradient(values, s) if isinstance(s, NDAxisSpacing) else next(others) for s in spacings
    )
