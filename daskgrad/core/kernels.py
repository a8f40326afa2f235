"""Block kernels: numpy.gradient's formulas on one block and its halo faces. No dask here.

The array module (``numpy``, ``cupy``, or any Array API namespace such as ``array_api_strict``)
comes from the block itself, so the same code runs on the CPU and the GPU. Every value is
produced by the same elementwise operations, on operands of the same types, in the same order as
``numpy.gradient``; that makes the result bit-for-bit equal however the array is cut into
blocks.

No result depends on a library's type promotion: the dtype of every operation (numpy's, under
NEP 50, found once on the host with tiny numpy arrays) is fixed explicitly, every scalar
(divisor, reciprocal, edge coefficient) is cast to it and every weight array is cast to it on
the host. NumPy and CuPy then get ``dtype=`` and ``out=`` on each ufunc (value-based casting, as
in NumPy 1.x or CuPy, cannot pick another loop); other namespaces get operands of one dtype
and an explicit ``astype`` back (no promotion happens at all). The kernel uses only ufuncs with
``out=`` and ``dtype=``, ``empty``, ``asarray``, slicing, ``astype``/``view`` and ``reshape``,
all of which CuPy provides.

Memory: each output is allocated once and written in place (``subtract`` then ``divide`` into
the output, or ``multiply`` by ``1 / (2*dx)`` where that gives the same bits, see
:func:`exact_reciprocal`; or multiply-adds through one slab-sized scratch buffer); no temporary
is the size of the block. The interior runs in cache-sized pieces: as long flat loops on a contiguous block
(the neighbours of flat element ``j`` along an axis are ``j - S`` and ``j + S``), or as N-d slabs
on a view. The block's first and last points along the axis come last, from the neighbours'
faces or numpy's one-sided rules.

A float32 or float64 numpy block (integer and bool values once converted to float64, as numpy
converts them) takes a faster road to the same bits where numba is installed: the interiors of
every requested axis in one compiled pass (:mod:`daskgrad.core.compiled`), then the same ends
as above. CuPy and other Array API blocks, float16, complex and datetime values always run the
code in this module, which uses only what CuPy provides.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from daskgrad.core import compiled
from daskgrad.core._compat import array_module, is_cupy_array, to_numpy
from daskgrad.core.spacing import BlockSpacing, EdgeRule

__all__ = ["exact_reciprocal", "fused_axis", "gradient_block", "host_dtype", "working_dtypes"]

# Elements per slab of the interior loop: 2 MiB of float64 per operand keeps the three operands
# and the output of one slab inside a typical L2/L3 cache.
_SLAB_ELEMENTS = 1 << 18
# Work dtypes of the compiled pass (:mod:`daskgrad.core.compiled`).
_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


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


def host_dtype(dtype: Any) -> np.dtype:
    """The numpy dtype of a numpy, CuPy or Array API dtype object.

    Examples
    --------
    >>> host_dtype("float32")
    dtype('float32')
    """
    try:
        return np.dtype(dtype)
    except TypeError:  # an Array API dtype object (array_api_strict.float64, ...)
        return np.dtype(str(dtype).rsplit(".", 1)[-1])


@lru_cache(maxsize=256)
def _product_dtype(weight_dtype: np.dtype, value_dtype: np.dtype) -> np.dtype:
    # numpy's promotion for ``weights * values`` (timedelta included), found on 1-element arrays.
    return np.multiply(np.ones(1, weight_dtype), np.zeros(1, value_dtype)).dtype


@lru_cache(maxsize=256)
def _scalar_dtype(scalar_type: type, work: np.dtype) -> np.dtype | None:
    """numpy's dtype for ``array(work) / scalar`` (NEP 50: a Python scalar is weak).

    ``None`` for timedelta work (numpy only): the scalar is then passed as it is.
    """
    if work.kind == "m":
        return None
    scalar = scalar_type(1)
    return (np.ones(1, work) / scalar).dtype


@lru_cache(maxsize=256)
def _sum_dtype(coeff_types: tuple[type, ...], work: np.dtype) -> np.dtype | None:
    """numpy's dtype for ``a * f0 + b * f1 + c * f2`` with scalar ``a, b, c`` (None: timedelta)."""
    if work.kind == "m":
        return None
    f = np.ones(1, work)
    total = None
    for t in coeff_types:
        term = t(1) * f
        total = term if total is None else total + term
    assert total is not None  # a formula has at least one coefficient
    return total.dtype


def _as_dtype(scalar: Any, dtype: np.dtype | None) -> Any:
    # The scalar exactly as numpy uses it in an operation of ``dtype`` (a weak Python scalar is
    # first converted to it; a numpy scalar is cast, exactly, since ``dtype`` is never narrower).
    return scalar if dtype is None else dtype.type(scalar)


class _Ops:
    """The kernel's arithmetic in one array library, every operation's dtype given explicitly.

    NumPy and CuPy arrays use ufuncs with ``out=`` and ``dtype=``; other Array API namespaces
    get operands already cast to the operation's dtype, and the result cast to the destination.
    """

    def __init__(self, xp: Any, ufuncs: bool) -> None:
        self.xp = xp
        self.ufuncs = ufuncs

    def dtype(self, dtype: np.dtype) -> Any:
        """The library's dtype object for a numpy dtype."""
        return dtype if self.ufuncs else getattr(self.xp, dtype.name)

    def empty(self, shape: tuple, dtype: np.dtype) -> Any:
        return self.xp.empty(shape, dtype=self.dtype(dtype))

    def astype(self, a: Any, dtype: np.dtype) -> Any:
        if self.ufuncs:
            return a.astype(dtype)
        return self.xp.astype(a, self.dtype(dtype))

    def reshape(self, a: Any, shape: Sequence[int]) -> Any:
        return a.reshape(tuple(shape)) if self.ufuncs else self.xp.reshape(a, tuple(shape))

    def from_host(self, a: np.ndarray) -> Any:
        """A host array in this library (its dtype kept)."""
        if self.xp is np:
            return a
        return self.xp.asarray(a)

    def scalar(self, value: Any, dtype: np.dtype | None) -> Any:
        """A scalar operand: a numpy scalar of ``dtype`` (ufuncs), or a 0-d array of it."""
        value = _as_dtype(value, dtype)
        return value if self.ufuncs else self.xp.asarray(np.asarray(value))

    def _cast(self, a: Any, dtype: np.dtype) -> Any:
        return a if host_dtype(a.dtype) == dtype else self.xp.astype(a, self.dtype(dtype))

    def binary(self, name: str, a: Any, b: Any, out: Any, dtype: np.dtype | None) -> None:
        """``out[...] = a <name> b``, computed in ``dtype`` and cast to ``out``'s dtype."""
        if self.ufuncs:
            if dtype is None:  # timedelta: numpy's own rules (numpy only)
                getattr(self.xp, name)(a, b, out=out)
            else:
                getattr(self.xp, name)(a, b, out=out, dtype=dtype)
            return
        assert dtype is not None  # timedelta values are numpy-only
        result = getattr(self.xp, name)(self._cast(a, dtype), self._cast(b, dtype))
        out[...] = self._cast(result, host_dtype(out.dtype))

    def assign(self, out: Any, value: Any) -> None:
        """``out[...] = value`` with numpy's cast to ``out``'s dtype."""
        out[...] = value if self.ufuncs else self._cast(value, host_dtype(out.dtype))

    def assign_host(self, out: Any, value: Any) -> None:
        """``out[...] = value`` for a host (numpy) scalar, cast on the host as numpy casts."""
        if self.xp is np:
            out[...] = value
            return
        host = np.asarray(value).astype(host_dtype(out.dtype))
        out[...] = self.xp.asarray(host)


def _index(ndim: int, axis: int, start: int | None, stop: int | None) -> tuple:
    key = [slice(None)] * ndim
    key[axis] = slice(start, stop)
    return tuple(key)


def _weights(ops: _Ops, w: Sequence[np.ndarray], value_dtype: np.dtype, shape: Sequence[int]):
    """Host weights cast to numpy's product dtype, moved to the library, reshaped to ``shape``.

    Weights in the product dtype up front: a mixed-dtype complex multiply on size-1 slabs rounds
    like numpy's scalar path, not like its array loop (observed on complex64 weights with
    complex128 values), so no cast is left to the ufunc. They keep every dim of the operands (as
    numpy's reshape gives them): broadcasting a 1-D weight into a size-1 product also sends
    numpy's complex multiply down its scalar loop.
    """
    dtype = _product_dtype(w[0].dtype, value_dtype)
    return [ops.reshape(ops.from_host(wi.astype(dtype, copy=False)), shape) for wi in w]


def exact_reciprocal(divisor: Any, work: np.dtype) -> Any:
    """``1 / divisor`` when multiplying by it gives the same bits as dividing by ``divisor``.

    That holds when the divisor is a power of two (``2. * dx`` for the default ``dx=1``, or
    ``dx=0.5, 0.25, ...``): its reciprocal is exact, and ``x * r`` and ``x / d`` are then the
    same real number rounded once. Multiplication is about twice as fast as division. Only
    where numpy divides in real float32 or float64 (complex division and timedelta arithmetic
    round differently).

    Returns
    -------
    The reciprocal as a numpy scalar of the dtype numpy divides in, or ``None`` where the
    divide must stay.

    Examples
    --------
    >>> exact_reciprocal(2.0, np.dtype("float64"))
    np.float64(0.5)
    >>> exact_reciprocal(2.0, np.dtype("float32"))
    np.float32(0.5)
    >>> exact_reciprocal(0.2, np.dtype("float64")) is None
    True
    """
    work = np.dtype(work)
    dtype = _scalar_dtype(type(divisor), work)  # type: ignore[arg-type]
    if dtype is None or dtype.kind != "f" or dtype.itemsize not in (4, 8):
        return None
    with np.errstate(all="ignore"):
        d = dtype.type(divisor)
        if not np.isfinite(d) or abs(math.frexp(float(d))[0]) != 0.5:
            return None
        r = dtype.type(1) / d
        if r == 0 or not np.isfinite(r) or r * d != 1:
            return None
    return r


def _central_uniform(ops: _Ops, out, prev, nxt, divisor, work: np.dtype) -> None:
    # numpy: (f[i+1] - f[i-1]) / (2. * dx); the divide may run in a wider dtype and cast back,
    # exactly as numpy's temporary does before assignment.
    ops.binary("subtract", nxt, prev, out, None if work.kind == "m" else work)
    reciprocal = exact_reciprocal(divisor, work)
    dtype = _scalar_dtype(type(divisor), work)  # type: ignore[arg-type]
    if reciprocal is None:
        ops.binary("divide", out, ops.scalar(divisor, dtype), out, dtype)
    else:
        ops.binary("multiply", out, ops.scalar(reciprocal, dtype), out, dtype)


def _central_nonuniform(ops: _Ops, out, prev, cur, nxt, a, b, c) -> None:
    # numpy: a*f[i-1] + b*f[i] + c*f[i+1], summed left to right, then cast to the output dtype.
    # ``a, b, c`` come from :func:`_weights`, already in the product dtype.
    dtype = host_dtype(a.dtype)
    acc = out if dtype == host_dtype(out.dtype) else ops.empty(out.shape, dtype)
    tmp = ops.empty(out.shape, dtype)
    ops.binary("multiply", a, prev, acc, dtype)
    ops.binary("multiply", b, cur, tmp, dtype)
    ops.binary("add", acc, tmp, acc, dtype)
    ops.binary("multiply", c, nxt, tmp, dtype)
    ops.binary("add", acc, tmp, acc, dtype)
    if acc is not out:
        ops.assign(out, acc)


def _one_sided(ops: _Ops, out, points: Sequence[Any], rule: EdgeRule, work: np.dtype) -> None:
    """One end of a non-periodic axis (a one-point-thick slab), as numpy writes it."""
    if out.ndim == 1:
        # numpy's ``f[0]`` is then a scalar, and numpy's scalar arithmetic rounds complex
        # products differently from its array loops: the same expressions on host scalars.
        p = [to_numpy(q)[0] for q in points]
        if rule.kind == "two-point":
            value = (p[1] - p[0]) / rule.coeffs[0]
        else:
            a, b, c = rule.coeffs
            value = a * p[0] + b * p[1] + c * p[2]
        ops.assign_host(out, value)
        return
    wdtype = None if work.kind == "m" else work
    if rule.kind == "two-point":
        lower, upper = points
        (divisor,) = rule.coeffs
        dtype = _scalar_dtype(type(divisor), work)  # type: ignore[arg-type]
        diff = ops.empty(out.shape, work)
        ops.binary("subtract", upper, lower, diff, wdtype)
        ops.binary("divide", diff, ops.scalar(divisor, dtype), out, dtype)
        return
    dtype = _sum_dtype(tuple(type(k) for k in rule.coeffs), work)
    acc = ops.empty(out.shape, work if dtype is None else dtype)
    tmp = ops.empty(out.shape, work if dtype is None else dtype)
    for i, (k, p) in enumerate(zip(rule.coeffs, points)):
        ops.binary("multiply", ops.scalar(k, dtype), p, acc if i == 0 else tmp, dtype)
        if i:
            ops.binary("add", acc, tmp, acc, dtype)
    ops.assign(out, acc)


def _quiet(xp):
    # The flat uniform pass also computes, then overwrites, the block's first and last points
    # from unrelated neighbours; their overflow or NaN must not raise a numpy warning.
    return np.errstate(over="ignore", invalid="ignore") if xp is np else contextlib.nullcontext()


def _interior_strided(ops: _Ops, out, f, axis: int, spacing: BlockSpacing, work) -> None:
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
        weights = _weights(ops, [w[1 : n - 1] for w in spacing.weights], work, shape)
    slab_axis = next((a for a in range(ndim) if a != axis), axis)
    length = f.shape[slab_axis] if slab_axis != axis else 1
    per_index = max(1, math.prod(f.shape) // max(1, length))
    step = length if slab_axis == axis else max(1, _SLAB_ELEMENTS // per_index)
    for s0 in range(0, length, step):
        stop = min(length, s0 + step)  # in bounds: the Array API leaves others unspecified
        sub = _index(ndim, slab_axis, s0, stop) if slab_axis != axis else (Ellipsis,)
        g, o = f[sub], out[sub]
        dst = o[_index(ndim, axis, 1, n - 1)]
        prev = g[_index(ndim, axis, 0, n - 2)]
        nxt = g[_index(ndim, axis, 2, n)]
        if weights is None:
            _central_uniform(ops, dst, prev, nxt, spacing.divisor, work)
        else:
            _central_nonuniform(ops, dst, prev, g[_index(ndim, axis, 1, n - 1)], nxt, *weights)


def _interior(ops: _Ops, out, f, axis: int, spacing: BlockSpacing, work) -> None:
    """Central differences at block points ``1 .. n-2`` along ``axis`` (the block only).

    ``f`` and ``out`` are C-contiguous. With ``S`` the product of the dims after ``axis``, the
    neighbours of flat element ``j`` along ``axis`` are ``j - S`` and ``j + S``, so the uniform
    formula runs as one long contiguous loop over ``[S, size - S)``, in cache-sized pieces. For
    ``axis > 0`` that range also covers points 0 and n-1 of the axis with wrong neighbours;
    :func:`_axis_derivative` overwrites them right after. Non-uniform weights vary along
    ``axis``, so that case runs on an ``(outer, n, S)`` view instead. Namespaces without
    ``flags`` (Array API) take the N-d slab path.
    """
    if not ops.ufuncs or not f.flags.c_contiguous:
        _interior_strided(ops, out, f, axis, spacing, work)
        return
    n = f.shape[axis]
    stride = math.prod(f.shape[axis + 1 :])
    if spacing.weights is None:
        flat_f = f.reshape(-1)
        flat_out = out.reshape(-1)
        lo, hi = stride, f.size - stride
        with _quiet(ops.xp):
            for p0 in range(lo, hi, _SLAB_ELEMENTS):
                p1 = min(hi, p0 + _SLAB_ELEMENTS)
                _central_uniform(
                    ops,
                    flat_out[p0:p1],
                    flat_f[p0 - stride : p1 - stride],
                    flat_f[p0 + stride : p1 + stride],
                    spacing.divisor,
                    work,
                )
        return

    outer = f.size // (n * stride)
    interior_weights = [w[1 : n - 1] for w in spacing.weights]
    if stride == 1:  # differentiating the last axis: rows of length n
        f2, out2 = f.reshape(outer, n), out.reshape(outer, n)
        w = _weights(ops, interior_weights, work, (1, -1))
        step = max(1, _SLAB_ELEMENTS // n)
        for r0 in range(0, outer, step):
            rows = slice(r0, min(outer, r0 + step))
            g = f2[rows]
            _central_nonuniform(
                ops, out2[rows, 1 : n - 1], g[:, : n - 2], g[:, 1 : n - 1], g[:, 2:], *w
            )
        return
    f3, out3 = f.reshape(outer, n, stride), out.reshape(outer, n, stride)
    w = _weights(ops, interior_weights, work, (1, -1, 1))
    if outer > 1:
        step = max(1, _SLAB_ELEMENTS // (n * stride))
        pieces = [(slice(r0, min(outer, r0 + step)), slice(None)) for r0 in range(0, outer, step)]
    else:
        step = max(1, _SLAB_ELEMENTS // n)
        pieces = [(slice(None), slice(c0, min(stride, c0 + step))) for c0 in range(0, stride, step)]
    for rows, cols in pieces:
        g = f3[rows, :, cols]
        _central_nonuniform(
            ops, out3[rows, 1 : n - 1, cols], g[:, : n - 2], g[:, 1 : n - 1], g[:, 2:], *w
        )


def _axis_derivative(ops: _Ops, f, lower, upper, axis: int, spacing: BlockSpacing, work, out_dtype):
    """d/d(axis) of one block; ``lower``/``upper`` are the neighbours' faces (or None)."""
    out = ops.empty(f.shape, out_dtype)
    if f.shape[axis] >= 3:
        _interior(ops, out, f, axis, spacing, work)
    _ends(ops, out, f, lower, upper, axis, spacing, work)
    return out


def _ends(ops: _Ops, out, f, lower, upper, axis: int, spacing: BlockSpacing, work) -> None:
    """The block's first and last points along ``axis``: neighbours' faces or one-sided rules."""
    n = f.shape[axis]
    ndim = f.ndim

    def point(k: int):
        """The one-thick slab at block index ``k``; -1 and n are the neighbours' faces."""
        if k < -1 or k > n:  # a halo is one point deep; callers rechunk so this cannot happen
            raise AssertionError(f"block of length {n} needs point {k} beyond its halo")
        if k == -1:
            return lower
        if k == n:
            return upper
        return f[_index(ndim, axis, k, k + 1)]

    shape = [1] * ndim
    shape[axis] = -1
    ends = [0] if n == 1 else [0, n - 1]
    for k in ends:
        dst = out[_index(ndim, axis, k, k + 1)]
        if k == 0 and spacing.first is not None:
            count = 2 if spacing.first.kind == "two-point" else 3
            _one_sided(ops, dst, [point(j) for j in range(count)], spacing.first, work)
        elif k == n - 1 and spacing.last is not None:
            count = 2 if spacing.last.kind == "two-point" else 3
            _one_sided(ops, dst, [point(n - count + j) for j in range(count)], spacing.last, work)
        elif spacing.weights is None:
            _central_uniform(ops, dst, point(k - 1), point(k + 1), spacing.divisor, work)
        else:
            w = _weights(ops, [wi[k : k + 1] for wi in spacing.weights], work, shape)
            _central_nonuniform(ops, dst, point(k - 1), point(k), point(k + 1), *w)


def fused_axis(spacing: BlockSpacing, work: np.dtype) -> tuple[int, float, Any] | None:
    """An axis's mode, scalar and weights for :func:`compiled.interior_pass` (None: not there).

    The numbers numpy uses: the exact reciprocal or the divisor in the dtype numpy divides
    in, or the three-point weights in numpy's product dtype (widened to float64, exactly).
    """
    if spacing.weights is None:
        reciprocal = exact_reciprocal(spacing.divisor, work)
        if reciprocal is not None:
            return compiled.MULTIPLY, float(reciprocal), None
        dtype = _scalar_dtype(type(spacing.divisor), work)  # type: ignore[arg-type]
        if dtype not in _FUSED_DTYPES:
            return None
        return compiled.DIVIDE, float(_as_dtype(spacing.divisor, dtype)), None
    dtype = _product_dtype(spacing.weights[0].dtype, work)
    if dtype not in _FUSED_DTYPES:
        return None
    weights = np.stack([w.astype(dtype).astype(np.float64) for w in spacing.weights])
    return (compiled.WEIGHTS32 if dtype.itemsize == 4 else compiled.WEIGHTS), 0.0, weights


def _gradient_fused(ops: _Ops, f, faces, axes, spacings, work, out_dtype) -> tuple | None:
    """Every axis of a float32/float64 numpy block: interiors in one compiled pass, then ends.

    ``None`` where the compiled pass does not apply (the caller then takes the array-module
    path, with the same bits).
    """
    plan = compiled.view_3d(f, axes)
    if plan is None:
        return None
    per_axis = [fused_axis(s, work) for s in spacings]
    if any(p is None for p in per_axis):
        return None
    keys, shape, where = plan
    outs = [ops.empty(f.shape, out_dtype) for _ in axes]
    modes, scalars, weights = [compiled.NONE] * 3, [0.0] * 3, [None] * 3
    out_of = [None] * 3
    for n, (axis, p) in enumerate(zip(axes, per_axis)):
        modes[where[axis]], scalars[where[axis]], weights[where[axis]] = p  # type: ignore[misc]
        out_of[where[axis]] = n  # type: ignore[call-overload]
    for key in keys:  # one view, or one per index of a leading dim no one differentiates
        f3 = f[key].reshape(shape)
        o3 = [None if n is None else outs[n][key].reshape(shape) for n in out_of]
        compiled.interior_pass(f3, o3, modes, scalars, weights)
    for out, (lower, upper), axis, spacing in zip(outs, faces, axes, spacings):
        _ends(ops, out, f, lower, upper, axis, spacing, work)
    return tuple(outs)


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
        The block's values: a numpy or CuPy array, or an array of another Array API
        namespace (e.g. ``array_api_strict``; no float16 or datetimes there).
    faces
        Per differentiated axis, ``(lower, upper)``: the last slab of the previous block and
        the first slab of the next block along that axis (thickness 1), or ``None`` where the
        block touches a non-periodic end.
    axes
        The differentiated axes.
    spacings
        Per axis, the block's :class:`~daskgrad.core.spacing.BlockSpacing`.
    dtype
        The dtype of the full array (the block's own dtype by default); decides the working
        and output dtypes by numpy's rules.

    Returns
    -------
    tuple
        One array per axis, shaped like ``block``.

    Examples
    --------
    >>> from daskgrad.core.spacing import axis_spacing
    >>> f = np.array([1.0, 2.0, 4.0, 7.0])
    >>> s = axis_spacing(None, axis=0, size=4, edge_order=1).block(0, 4)
    >>> gradient_block(f, [(None, None)], [0], [s])[0]
    array([1. , 1.5, 2.5, 3. ])
    """
    ufuncs = isinstance(block, np.ndarray) or is_cupy_array(block)
    ops = _Ops(array_module(block), ufuncs)
    work, out_dtype = working_dtypes(host_dtype(block.dtype if dtype is None else dtype))

    def prepare(a):
        if a is None:
            return None
        if host_dtype(a.dtype).kind == "M":
            a = a.view(work)
        return a if host_dtype(a.dtype) == work else ops.astype(a, work)

    f = prepare(block)
    faces = [(prepare(lower), prepare(upper)) for lower, upper in faces]
    if isinstance(f, np.ndarray) and work in _FUSED_DTYPES and compiled.enabled():
        fused = _gradient_fused(ops, f, faces, axes, spacings, work, out_dtype)
        if fused is not None:
            return fused
    results = []
    for axis, (lower, upper), spacing in zip(axes, faces, spacings):
        results.append(_axis_derivative(ops, f, lower, upper, axis, spacing, work, out_dtype))
    return tuple(results)
