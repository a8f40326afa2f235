"""Block kernels: numpy.gradient's formulas on one block and its halo faces. No dask here.

The array module (``numpy`` or ``cupy``) comes from the block itself, so the same code runs on
the CPU and the GPU. Every value is produced by the same elementwise operations, on operands of
the same types, in the same order as ``numpy.gradient``; that makes the result bit-for-bit equal
however the array is cut into blocks. The kernel uses only ufuncs with ``out=``, ``empty``,
``asarray``, slicing, ``astype``/``view`` and ``reshape``, all of which CuPy provides.

Memory: each output is written once, in place (``subtract`` then ``divide`` into the output, or
multiply-adds through one slab-sized scratch buffer), and the big interior is processed in slabs along the
first axis so the operands stay in cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np

from daskgrad._compat import array_module
from daskgrad.spacing import BlockSpacing, EdgeRule

__all__ = ["gradient_block", "working_dtypes"]

# Elements per slab of the interior loop: ~1 MiB of float64 per operand keeps the three operands
# and the output of one slab inside a typical L2/L3 cache.
_SLAB_ELEMENTS = 1 << 17


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


def _central_uniform(xp, out, prev, nxt, divisor) -> None:
    # numpy: (f[i+1] - f[i-1]) / (2. * dx); ``divide`` may run in a wider dtype and cast back,
    # exactly as numpy's temporary does before assignment.
    xp.subtract(nxt, prev, out=out)
    xp.divide(out, divisor, out=out)


def _central_nonuniform(xp, out, prev, cur, nxt, a, b, c) -> None:
    # numpy: a*f[i-1] + b*f[i] + c*f[i+1], summed left to right, then cast to the output dtype.
    dtype = _product_dtype(np.dtype(a.dtype), np.dtype(cur.dtype))
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
    # Thin (one-point) slabs: plain expressions, written as numpy writes them.
    if rule.kind == "two-point":
        lower, upper = points
        (divisor,) = rule.coeffs
        out[...] = (upper - lower) / divisor
    else:
        a, b, c = rule.coeffs
        p0, p1, p2 = points
        out[...] = a * p0 + b * p1 + c * p2


def _interior(xp, out, f, axis: int, spacing: BlockSpacing) -> None:
    """Central differences at block points ``1 .. n-2`` (needs only the block itself)."""
    n = f.shape[axis]
    ndim = f.ndim
    weights = None
    if spacing.weights is not None:
        weights = [_broadcast_weights(xp, w[1 : n - 1], ndim, axis) for w in spacing.weights]
    # Slabs along the first axis that is not ``axis`` (or along ``axis`` itself for 1-D data)
    # keep each slab's operands in cache.
    if ndim == 1:
        _interior_range(xp, out, f, axis, spacing, weights, 1, n - 1)
        return
    slab_axis = 1 if axis == 0 else 0
    length = f.shape[slab_axis]
    per_index = max(1, out.size // max(1, length))
    step = max(1, _SLAB_ELEMENTS // per_index)
    for s0 in range(0, length, step):
        sub = _index(ndim, slab_axis, s0, min(length, s0 + step))
        _interior_slab(xp, out[sub], f[sub], axis, spacing, weights, n)


def _interior_slab(xp, out, f, axis, spacing, weights, n) -> None:
    ndim = f.ndim
    dst = out[_index(ndim, axis, 1, n - 1)]
    prev = f[_index(ndim, axis, 0, n - 2)]
    nxt = f[_index(ndim, axis, 2, n)]
    if weights is None:
        _central_uniform(xp, dst, prev, nxt, spacing.divisor)
    else:
        cur = f[_index(ndim, axis, 1, n - 1)]
        _central_nonuniform(xp, dst, prev, cur, nxt, *weights)


def _interior_range(xp, out, f, axis, spacing, weights, lo, hi) -> None:
    ndim = f.ndim
    step = _SLAB_ELEMENTS
    for p0 in range(lo, hi, step):
        p1 = min(hi, p0 + step)
        dst = out[_index(ndim, axis, p0, p1)]
        prev = f[_index(ndim, axis, p0 - 1, p1 - 1)]
        nxt = f[_index(ndim, axis, p0 + 1, p1 + 1)]
        if weights is None:
            _central_uniform(xp, dst, prev, nxt, spacing.divisor)
        else:
            w = [wi[_index(ndim, axis, p0 - 1, p1 - 1)] for wi in weights]
            cur = f[_index(ndim, axis, p0, p1)]
            _central_nonuniform(xp, dst, prev, cur, nxt, *w)


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
            return a.view(work)
        if a.dtype != work:
            return a.astype(work)
        return a

    f = prepare(block)
    results = []
    for axis, (lower, upper), spacing in zip(axes, faces, spacings):
        results.append(
            _axis_derivative(xp, f, prepare(lower), prepare(upper), axis, spacing, out_dtype)
        )
    return tuple(results)
