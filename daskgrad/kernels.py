"""Block kernels: numpy.gradient's formulas on one block and its halo faces. No dask here.

The array module (``numpy`` or ``cupy``) comes from the block itself, so the same code runs on
the CPU and the GPU. Every value is produced by the same elementwise operations, on operands of
the same types, in the same order as ``numpy.gradient``; that makes the result bit-for-bit equal
however the array is cut into blocks. The kernel uses only ufuncs with ``out=``, ``empty``,
``asarray``, slicing, ``astype``/``view`` and ``reshape``, all of which CuPy provides.

Memory: each output is allocated once and written in place (``subtract`` then ``divide`` into
the output, or ``multiply`` by ``1 / (2*dx)`` where that gives the same bits, see
:func:`exact_reciprocal`; or multiply-adds through one slab-sized scratch buffer); no temporary
is the size of the block. The interior runs in cache-sized pieces: as long flat loops on a contiguous block
(the neighbours of flat element ``j`` along an axis are ``j - S`` and ``j + S``), or as N-d slabs
on a view. The block's first and last points along the axis come last, from the neighbours'
faces or numpy's one-sided rules.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np

from daskgrad._compat import array_module, to_numpy
from daskgrad.spacing import BlockSpacing, EdgeRule

__all__ = ["exact_reciprocal", "gradient_block", "working_dtypes"]

# Elements per slab of the interior loop: 2 MiB of float64 per operand keeps the three operands
# and the output of one slab inside a typical L2/L3 cache.
_SLAB_ELEMENTS = 1 << 18


def working_dtypes(dtype: np.dtype) -> tuple[np.dtype, np.dtype]:
    """``(work, out)`` dtypes, by numpy.gradient's rules.

    Integers (and bool, which numpy.gradient refuses) are computed in float64; datetime64 is
    viewed as timedelta64 of the same unit; floating, complex and timedelta64 keep their dtype.

    Raises
    ------
    TypeError
        For object, string, bytes and structured dtypes.

    Examples
    --------
    >>> working_dtypes(np.dtype("int32"))
    (dtype('float64'), dtype('float64'))
    >>> working_dtypes(np.dtype("M8[s]"))
    (dtype('<m8[s]'), dtype('<m8[s]'))
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "M":
        td = np.dtype(dtype.str.replace("M8", "m8"))
        return td, td
    if dtype.kind in "mfc":
        return dtype, dtype
    if dtype.kind in "iub":
        f8 = np.dtype(np.float64)
        return f8, f8
    raise TypeError(
        f"values must be numeric (integer, bool, float, complex, datetime64 or timedelta64), "
        f"got dtype {dtype}"
    )


@lru_cache(maxsize=256)
def _product_dtype(weight_dtype: np.dtype, value_dtype: np.dtype) -> np.dtype:
    # numpy's promotion for ``weights * values`` (timedelta included), found on 1-element arrays.
    return np.multiply(np.ones(1, weight_dtype), np.zeros(1, value_dtype)).dtype


def _index(ndim: int, axis: int, start: int | None, stop: int | None) -> tuple:
    key = [slice(None)] * ndim
    key[axis] = slice(start, stop)
    return tuple(key)


def _broadcast_weights(xp: ModuleType, w: np.ndarray, ndim: int, axis: int):
    shape = [1] * ndim
    shape[axis] = -1
    return xp.asarray(w).reshape(shape)


def exact_reciprocal(divisor: Any, work: np.dtype) -> Any:
    """``1 / divisor`` when multiplying by it gives the same bits as dividing by ``divisor``.

    That holds when the divisor is a power of two (``2. * dx`` for the default ``dx=1``, or
    ``dx=0.5, 0.25, ...``): its reciprocal is exact, and ``x * r`` and ``x / d`` are then the
    same real number rounded once. Multiplication is about twice as fast as division. Only for
    real float32/float64 work (complex division and timedelta arithmetic round differently)
    and a float divisor, whose scalar type is kept so numpy promotes exactly as for the divide.

    Returns
    -------
    The reciprocal, of the divisor's own type, or ``None`` where the divide must stay.

    Examples
    --------
    >>> exact_reciprocal(2.0, np.dtype("float64"))
    0.5
    >>> exact_reciprocal(0.2, np.dtype("float64")) is None
    True
    """
    if work.kind != "f" or work.itemsize not in (4, 8):
        return None
    if type(divisor) is float:
        as_work = work.type  # numpy treats a Python float as a weak scalar of the array's type
    elif isinstance(divisor, np.floating) and divisor.dtype.itemsize in (4, 8):
        as_work = np.result_type(work, divisor).type
    else:
        return None
    with np.errstate(all="ignore"):
        d = as_work(divisor)
        if not np.isfinite(d) or float(d) != float(divisor) or abs(math.frexp(float(d))[0]) != 0.5:
            return None
        r = as_work(1) / d
        if r == 0 or not np.isfinite(r) or r * d != 1:
            return None
        reciprocal = float(r) if type(divisor) is float else type(divisor)(r)
    return reciprocal if float(reciprocal) == float(r) else None


def _central_uniform(xp, out, prev, nxt, divisor, reciprocal=None) -> None:
    # numpy: (f[i+1] - f[i-1]) / (2. * dx); ``divide`` may run in a wider dtype and cast back,
    # exactly as numpy's temporary does before assignment.
    xp.subtract(nxt, prev, out=out)
    if reciprocal is None:
        xp.divide(out, divisor, out=out)
    else:
        xp.multiply(out, reciprocal, out=out)


def _central_nonuniform(xp, out, prev, cur, nxt, a, b, c) -> None:
    # numpy: a*f[i-1] + b*f[i] + c*f[i+1], summed left to right, then cast to the output dtype.
    dtype = _product_dtype(np.dtype(a.dtype), np.dtype(cur.dtype))
    if a.dtype != dtype:
        # Weights in the product dtype up front: a mixed-dtype complex multiply on size-1 slabs
        # rounds like numpy's scalar path, not like its array loop (observed on complex64
        # weights with complex128 values), so no cast is left to the ufunc.
        a, b, c = (w.astype(dtype) for w in (a, b, c))
    acc = out if dtype == out.dtype else xp.empty(out.shape, dtype)
    tmp = xp.empty(out.shape, dtype)
    xp.multiply(a, prev, out=acc)
    xp.multiply(b, cur, out=tmp)
    xp.add(acc, tmp, out=acc)
    xp.multiply(c, nxt, out=tmp)
    xp.add(acc, tmp, out=acc)
    if acc is not out:
        out[...] = acc


def _one_sided(out, points: Sequence[Any], rule: EdgeRule) -> None:
    # Thin (one-point) slabs: plain expressions, written as numpy writes them. On 1-D values
    # numpy's ``f[0]`` is a scalar, and numpy's scalar arithmetic rounds complex products
    # differently from its array loops, so the 1-D ends are computed on host scalars too.
    scalar = out.ndim == 1
    if scalar:
        points = [to_numpy(p)[0] for p in points]
    if rule.kind == "two-point":
        lower, upper = points
        (divisor,) = rule.coeffs
        value = (upper - lower) / divisor
    else:
        a, b, c = rule.coeffs
        p0, p1, p2 = points
        value = a * p0 + b * p1 + c * p2
    out[...] = value


def _quiet(xp):
    # The flat uniform pass also computes, then overwrites, the block's first and last points
    # from unrelated neighbours; their overflow or NaN must not raise a numpy warning.
    return np.errstate(over="ignore", invalid="ignore") if xp is np else contextlib.nullcontext()


def _interior_strided(xp, out, f, axis: int, spacing: BlockSpacing) -> None:
    """Central differences at block points ``1 .. n-2`` of a non-contiguous block (a view).

    Runs on N-d slices, in slabs along another axis so the operands stay in cache; copying the
    view to make it contiguous would cost a full extra pass over the block.
    """
    n = f.shape[axis]
    ndim = f.ndim
    weights = None
    if spacing.weights is not None:
        shape = [1] * ndim
        shape[axis] = -1
        weights = [xp.asarray(w[1 : n - 1]).reshape(shape) for w in spacing.weights]
    reciprocal = exact_reciprocal(spacing.divisor, np.dtype(f.dtype))
    slab_axis = next((a for a in range(ndim) if a != axis), axis)
    length = f.shape[slab_axis] if slab_axis != axis else 1
    per_index = max(1, f.size // max(1, length))
    step = length if slab_axis == axis else max(1, _SLAB_ELEMENTS // per_index)
    for s0 in range(0, length, step):
        sub = _index(ndim, slab_axis, s0, s0 + step) if slab_axis != axis else (Ellipsis,)
        g, o = f[sub], out[sub]
        dst = o[_index(ndim, axis, 1, n - 1)]
        prev = g[_index(ndim, axis, 0, n - 2)]
        nxt = g[_index(ndim, axis, 2, n)]
        if weights is None:
            _central_uniform(xp, dst, prev, nxt, spacing.divisor, reciprocal)
        else:
            _central_nonuniform(xp, dst, prev, g[_index(ndim, axis, 1, n - 1)], nxt, *weights)


def _interior(xp, out, f, axis: int, spacing: BlockSpacing) -> None:
    """Central differences at block points ``1 .. n-2`` along ``axis`` (the block only).

    ``f`` and ``out`` are C-contiguous. With ``S`` the product of the dims after ``axis``, the
    neighbours of flat element ``j`` along ``axis`` are ``j - S`` and ``j + S``, so the uniform
    formula runs as one long contiguous loop over ``[S, size - S)``, in cache-sized pieces. For
    ``axis > 0`` that range also covers points 0 and n-1 of the axis with wrong neighbours;
    :func:`_axis_derivative` overwrites them right after. Non-uniform weights vary along
    ``axis``, so that case runs on an ``(outer, n, S)`` view instead.
    """
    if not f.flags.c_contiguous:
        _interior_strided(xp, out, f, axis, spacing)
        return
    n = f.shape[axis]
    stride = math.prod(f.shape[axis + 1 :])
    if spacing.weights is None:
        flat_f = f.reshape(-1)
        flat_out = out.reshape(-1)
        lo, hi = stride, f.size - stride
        reciprocal = exact_reciprocal(spacing.divisor, np.dtype(f.dtype))
        with _quiet(xp):
            for p0 in range(lo, hi, _SLAB_ELEMENTS):
                p1 = min(hi, p0 + _SLAB_ELEMENTS)
                _central_uniform(
                    xp,
                    flat_out[p0:p1],
                    flat_f[p0 - stride : p1 - stride],
                    flat_f[p0 + stride : p1 + stride],
                    spacing.divisor,
                    reciprocal,
                )
        return

    outer = f.size // (n * stride)
    a, b, c = (w[1 : n - 1] for w in spacing.weights)
    if stride == 1:  # differentiating the last axis: rows of length n
        f2, out2 = f.reshape(outer, n), out.reshape(outer, n)
        # Weights get every dim of the operands (as numpy's reshape gives them): broadcasting a
        # 1-D weight into a size-1 product sends numpy's complex multiply down its scalar loop,
        # which rounds differently from the vector loop numpy.gradient itself runs.
        w = [xp.asarray(v).reshape(1, -1) for v in (a, b, c)]
        step = max(1, _SLAB_ELEMENTS // n)
        for r0 in range(0, outer, step):
            rows = slice(r0, min(outer, r0 + step))
            g = f2[rows]
            _central_nonuniform(xp, out2[rows, 1 : n - 1], g[:, : n - 2], g[:, 1 : n - 1], g[:, 2:], *w)
        return
    f3, out3 = f.reshape(outer, n, stride), out.reshape(outer, n, stride)
    w = [xp.asarray(v).reshape(1, -1, 1) for v in (a, b, c)]
    if outer > 1:
        step = max(1, _SLAB_ELEMENTS // (n * stride))
        pieces = [(slice(r0, min(outer, r0 + step)), slice(None)) for r0 in range(0, outer, step)]
    else:
        step = max(1, _SLAB_ELEMENTS // n)
        pieces = [(slice(None), slice(c0, min(stride, c0 + step))) for c0 in range(0, stride, step)]
    for rows, cols in pieces:
        g = f3[rows, :, cols]
        _central_nonuniform(
            xp, out3[rows, 1 : n - 1, cols], g[:, : n - 2], g[:, 1 : n - 1], g[:, 2:], *w
        )


def _axis_derivative(xp, f, lower, upper, axis: int, spacing: BlockSpacing, out_dtype):
    """d/d(axis) of one block; ``lower``/``upper`` are the neighbours' faces (or None)."""
    n = f.shape[axis]
    ndim = f.ndim
    out = xp.empty(f.shape, dtype=out_dtype)
    if n >= 3:
        _interior(xp, out, f, axis, spacing)

    def point(k: int):
        """The one-thick slab at block index ``k``; -1 and n are the neighbours' faces."""
        if k < -1 or k > n:  # a halo is one point deep; callers rechunk so this cannot happen
            raise AssertionError(f"block of length {n} needs point {k} beyond its halo")
        if k == -1:
            return lower
        if k == n:
            return upper
        return f[_index(ndim, axis, k, k + 1)]

    ends = [0] if n == 1 else [0, n - 1]
    for k in ends:
        dst = out[_index(ndim, axis, k, k + 1)]
        if k == 0 and spacing.first is not None:
            count = 2 if spacing.first.kind == "two-point" else 3
            _one_sided(dst, [point(j) for j in range(count)], spacing.first)
        elif k == n - 1 and spacing.last is not None:
            count = 2 if spacing.last.kind == "two-point" else 3
            _one_sided(dst, [point(n - count + j) for j in range(count)], spacing.last)
        elif spacing.weights is None:
            _central_uniform(xp, dst, point(k - 1), point(k + 1), spacing.divisor)
        else:
            w = [_broadcast_weights(xp, wi[k : k + 1], ndim, axis) for wi in spacing.weights]
            _central_nonuniform(xp, dst, point(k - 1), point(k), point(k + 1), *w)
    return out


def gradient_block(
    block: Any,
    faces: Sequence[tuple[Any, Any]],
    axes: Sequence[int],
    spacings: Sequence[BlockSpacing],
    dtype: Any = None,
) -> tuple[Any, ...]:
    """numpy.gradient of one block along ``axes``, in one pass over the block.

    Parameters
    ----------
    block
        The block's values (numpy or CuPy array).
    faces
        Per differentiated axis, ``(lower, upper)``: the last slab of the previous block and
        the first slab of the next block along that axis (thickness 1), or ``None`` where the
        block touches a non-periodic end.
    axes
        The differentiated axes.
    spacings
        Per axis, the block's :class:`~daskgrad.spacing.BlockSpacing`.
    dtype
        The dtype of the full array (the block's own dtype by default); decides the working
        and output dtypes by numpy's rules.

    Returns
    -------
    tuple
        One array per axis, shaped like ``block``.

    Examples
    --------
    >>> from daskgrad.spacing import axis_spacing
    >>> f = np.array([1.0, 2.0, 4.0, 7.0])
    >>> s = axis_spacing(None, axis=0, size=4, edge_order=1).block(0, 4)
    >>> gradient_block(f, [(None, None)], [0], [s])[0]
    array([1. , 1.5, 2.5, 3. ])
    """
    xp = array_module(block)
    work, out_dtype = working_dtypes(block.dtype if dtype is None else dtype)

    def prepare(a):
        if a is None:
            return None
        if a.dtype.kind == "M":
            a = a.view(work)
        return a.astype(work) if a.dtype != work else a

    f = prepare(block)
    results = []
    for axis, (lower, upper), spacing in zip(axes, faces, spacings):
        results.append(
            _axis_derivative(xp, f, prepare(lower), prepare(upper), axis, spacing, out_dtype)
        )
    return tuple(results)
