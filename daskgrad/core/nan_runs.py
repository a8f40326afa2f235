"""``nan_policy="one-sided"``: every run of non-NaN values differentiated as if it stood alone.

Along each differentiated axis, each maximal run of consecutive non-NaN values gets exactly the
numbers ``numpy.gradient(run, run_coordinate_or_step, edge_order=...)`` gives: central
differences inside the run, one-sided differences at its two ends, and numpy's uniform /
non-uniform decision taken for the run's own coordinates. A run shorter than ``edge_order + 1``
and every NaN point give NaN (``nan+0j`` for complex values).

How the numbers stay numpy's:

* inside a run, a central difference is the one ``propagate`` computes (it only reads the two
  neighbours, which are in the run), so it comes from :func:`daskgrad.core.kernels.gradient_block`
  itself, on the block widened by a NaN-padded halo. The one exception is a run that is uniform
  on an axis that is not: it takes ``(f[i+1] - f[i-1]) / (2. * dx_run)``;
* a run's ends take numpy's one-sided expressions with the run's coefficients. For a scalar
  step or uniform coordinate those are the axis's own edge rules; otherwise they come from the
  coordinate differences next to the end, run by run. numpy computes a 1-D run's ends on
  scalars, and its scalar complex product rounds differently from its array loop, so complex
  products at run ends are spelled out on the real and imaginary parts as numpy's scalar
  multiply does;
* whether a run is uniform is a whole-run question: with a non-uniform coordinate each point
  needs its run's first and last index, found by a running maximum along the axis (a scan, an
  extra pass for dask), and a table of where the coordinate's equal-difference stretches end.

A point's role (inside, start, end, too short) is read from the NaN pattern within
``edge_order`` points of it, so a dask block needs a halo of depth ``edge_order`` (the halo
beyond the array's ends is NaN). This module and :mod:`daskgrad.core.one_sided` call only
functions NumPy and CuPy share: the ufuncs ``add``, ``subtract``, ``multiply``, ``divide``
(always with ``dtype=``), ``maximum`` and ``isnan``; ``where``, ``take``, ``clip``,
``broadcast_to``, ``concatenate``, ``full``, ``empty``, ``asarray``, ``cumsum``, ``any``;
slicing, ``copy``, ``astype``, ``.real``/``.imag`` and operators on bool and integer arrays
(``tests/test_nan_policy.py`` checks the list). Integer, bool and datetime values have no NaN: there
``"one-sided"`` is ``"propagate"``. Routing, the dask graph and periodic axes (a run may cross
the seam) are in :mod:`daskgrad.core.one_sided`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from daskgrad.core._compat import array_module
from daskgrad.core.kernels import gradient_block, host_dtype, working_dtypes
from daskgrad.core.spacing import AxisSpacing, BlockSpacing, EdgeRule, LazyAxisSpacing

__all__ = [
    "along_axis",
    "axis_slice",
    "needs_run_bounds",
    "one_sided_block",
    "run_bounds",
    "running_max",
    "spacing_edge_order",
]

# The kernel's edge rule for the padded halo's outermost points, whose results are discarded.
_UNUSED_EDGE = EdgeRule("two-point", (1.0,))


def axis_slice(ndim: int, axis: int, start: int | None, stop: int | None) -> tuple:
    """The key of ``start:stop`` along ``axis`` (everything along the other axes).

    Examples
    --------
    >>> axis_slice(3, 1, 2, None)
    (slice(None, None, None), slice(2, None, None), slice(None, None, None))
    """
    key = [slice(None)] * ndim
    key[axis] = slice(start, stop)
    return tuple(key)


def along_axis(a: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A 1-D host array shaped to broadcast along ``axis`` of an ``ndim``-d block.

    Examples
    --------
    >>> along_axis(np.arange(3), 3, 1).shape
    (1, 3, 1)
    """
    shape = [1] * ndim
    shape[axis] = -1
    return a.reshape(shape)


def spacing_edge_order(spacing: AxisSpacing | LazyAxisSpacing) -> int:
    """The edge order an axis's spacing was built for (the halo depth one-sided needs).

    Examples
    --------
    >>> from daskgrad.core.spacing import axis_spacing
    >>> spacing_edge_order(axis_spacing(None, axis=0, size=4, edge_order=2))
    2
    """
    if isinstance(spacing, LazyAxisSpacing):
        return spacing.spec.edge_order
    return 2 if spacing.three_point_edges else spacing.edge_order


def _quiet(xp: Any):
    # Every candidate formula is computed everywhere and the right one picked per point, so
    # the discarded ones may overflow or meet inf - inf; numpy must not warn about those.
    return np.errstate(all="ignore") if xp is np else contextlib.nullcontext()


def _stretch_ends(diffs: np.ndarray) -> np.ndarray:
    """For each difference ``k``, the last ``j >= k`` with ``diffs[k..j]`` all equal.

    Examples
    --------
    >>> _stretch_ends(np.array([1.0, 1.0, 2.0, 3.0, 3.0, 3.0]))
    array([1, 1, 2, 5, 5, 5])
    """
    breaks = np.flatnonzero(diffs[:-1] != diffs[1:])
    pos = np.searchsorted(breaks, np.arange(diffs.size))
    return np.append(breaks, diffs.size - 1)[pos]


def _promoted(work: np.dtype, coeff: Any) -> np.dtype:
    """numpy's dtype for ``array(work) * coeff`` (NEP 50: a Python scalar is weak)."""
    if np.ndim(coeff) == 0:  # found by numpy itself, on one element
        return (np.ones(1, work) * coeff).dtype
    return np.result_type(work, host_dtype(coeff.dtype))


def _operand(xp: Any, coeff: Any, dtype: np.dtype) -> Any:
    """A coefficient (scalar or host array) as an operand of ``dtype`` in the library."""
    if np.ndim(coeff) == 0:
        return dtype.type(coeff)
    return xp.asarray(coeff).astype(dtype, copy=False)


def _product(xp: Any, coeff: Any, values: Any, dtype: np.dtype) -> Any:
    """``coeff * values`` in ``dtype``; complex as numpy's *scalar* multiply rounds it.

    numpy's array loop may fuse the complex product's multiply-adds; its scalar path does not.
    A run's ends are scalars in numpy's 1-D computation, so the product is spelled out here.
    """
    if dtype.kind != "c":
        return xp.multiply(coeff, values, dtype=dtype)
    v = values.astype(dtype, copy=False)
    c = coeff if np.ndim(coeff) == 0 else xp.broadcast_to(coeff, v.shape)
    part = np.dtype(dtype.char.lower())  # the real dtype of the parts: F -> f, D -> d

    def times(a: Any, b: Any) -> Any:
        return xp.multiply(a, b, dtype=part)

    out = xp.empty(v.shape, dtype)
    xp.subtract(times(c.real, v.real), times(c.imag, v.imag), out=out.real, dtype=part)
    xp.add(times(c.real, v.imag), times(c.imag, v.real), out=out.imag, dtype=part)
    return out


def _two_point(xp: Any, upper: Any, lower: Any, divisor: Any, work: np.dtype) -> Any:
    """numpy's ``(f[1] - f[0]) / dx`` (a run's end, edge_order 1)."""
    dtype = _promoted(work, divisor)
    return xp.divide(
        xp.subtract(upper, lower, dtype=work), _operand(xp, divisor, dtype), dtype=dtype
    )


def _three_point(xp: Any, points: Sequence[Any], coeffs: Sequence[Any], work: np.dtype) -> Any:
    """numpy's ``a*f0 + b*f1 + c*f2`` (a run's end, edge_order 2), summed left to right."""
    dtype = _promoted(work, coeffs[0])
    total = None
    for k, p in zip(coeffs, points):
        term = _product(xp, _operand(xp, k, dtype), p, dtype)
        total = term if total is None else xp.add(total, term, dtype=dtype)
    return total


def _uniform_ends(dx: Any, edge_order: int) -> tuple[tuple, tuple]:
    # numpy's uniform end coefficients (the expressions of daskgrad.core.spacing._edge_rules).
    if edge_order == 1:
        return (dx,), (dx,)
    # Per point, the run's step: numpy's ``python_float / numpy_scalar`` (NEP 50: in the
    # step's dtype), spelled out for CuPy's casting rules.
    xp = array_module(dx)
    dtype = host_dtype(dx.dtype)

    def over(k: float) -> Any:
        return xp.divide(dtype.type(k), dx, dtype=dtype)

    return (over(-1.5), over(2.0), over(-0.5)), (over(0.5), over(-2.0), over(1.5))


def _nonuniform_ends(diffs: np.ndarray, i: np.ndarray, edge_order: int) -> tuple[tuple, tuple]:
    """Per global index ``i``: numpy's end coefficients for a non-uniform run starting (ending)
    at ``i`` (indices clipped: the values at impossible positions are never used)."""
    last = diffs.size - 1
    if edge_order == 1:
        return (diffs[np.clip(i, 0, last)],), (diffs[np.clip(i - 1, 0, last)],)
    if diffs.dtype.kind == "c":
        # numpy computes these on scalars, and its scalar complex product rounds unlike its
        # array loop: the same expressions, one point at a time.
        pairs = [
            _first_coeffs(diffs[a], diffs[b])
            for a, b in zip(np.clip(i, 0, last), np.clip(i + 1, 0, last))
        ]
        ends = [
            _last_coeffs(diffs[a], diffs[b])
            for a, b in zip(np.clip(i - 2, 0, last), np.clip(i - 1, 0, last))
        ]
        return tuple(np.array(c) for c in zip(*pairs)), tuple(np.array(c) for c in zip(*ends))
    first = _first_coeffs(diffs[np.clip(i, 0, last)], diffs[np.clip(i + 1, 0, last)])
    end = _last_coeffs(diffs[np.clip(i - 2, 0, last)], diffs[np.clip(i - 1, 0, last)])
    return first, end


def _first_coeffs(dx1: Any, dx2: Any) -> tuple:
    # numpy's non-uniform first-point coefficients (as in daskgrad.core.spacing._edge_rules).
    return (
        -(2.0 * dx1 + dx2) / (dx1 * (dx1 + dx2)),
        (dx1 + dx2) / (dx1 * dx2),
        -dx1 / (dx2 * (dx1 + dx2)),
    )


def _last_coeffs(dx1: Any, dx2: Any) -> tuple:
    # numpy's non-uniform last-point coefficients (as in daskgrad.core.spacing._edge_rules).
    return (
        (dx2) / (dx1 * (dx1 + dx2)),
        -(dx2 + dx1) / (dx1 * dx2),
        (2.0 * dx2 + dx1) / (dx2 * (dx1 + dx2)),
    )


def run_bounds(values: Any, axis: int) -> tuple[Any, Any]:
    """First and last index of each point's run of non-NaN values along ``axis``.

    For a NaN point, ``first = index + 1`` and ``last = index - 1``. numpy or CuPy values
    holding the whole axis (:mod:`daskgrad.core.one_sided` scans dask values block by block).

    Examples
    --------
    >>> run_bounds(np.array([1.0, 2.0, np.nan, 4.0]), 0)
    (array([0, 0, 3, 3]), array([1, 1, 1, 3]))
    """
    xp = array_module(values)
    n = values.shape[axis]
    idx = xp.asarray(along_axis(np.arange(n, dtype=np.intp), values.ndim, axis))
    isnan = xp.isnan(values)
    before = running_max(xp.where(isnan, idx, -1), axis)
    rev = (*[slice(None)] * axis, slice(None, None, -1))
    after = running_max(xp.where(isnan, (n - 1) - idx, -1)[rev], axis)[rev]
    return before + 1, (n - 2) - after


def running_max(a: Any, axis: int, dtype: Any = None) -> Any:
    """Running maximum along ``axis`` by doubling shifts: ufuncs and slices only (CuPy's
    ``maximum`` has no ``accumulate``). Exact, since the values are integers.

    Examples
    --------
    >>> running_max(np.array([-1, 3, -1, -1, 7, -1]), 0)
    array([-1,  3,  3,  3,  7,  7])
    """
    xp = array_module(a)
    n = a.shape[axis]
    shift = 1
    while shift < n:
        b = a.copy()
        xp.maximum(
            a[axis_slice(a.ndim, axis, shift, None)],
            a[axis_slice(a.ndim, axis, None, n - shift)],
            out=b[axis_slice(a.ndim, axis, shift, None)],
        )
        a, shift = b, 2 * shift
    return a


def one_sided_block(
    ext: Any,
    axis: int,
    spacing: AxisSpacing,
    start: int,
    depth: int,
    bounds: tuple[Any, Any] | None = None,
    dtype: Any = None,
) -> Any:
    """The one-sided gradient along ``axis`` of one block, from the block and its halo.

    Parameters
    ----------
    ext
        The block widened by ``depth`` points on each side along ``axis`` (NaN beyond the
        array's ends); numpy or CuPy.
    axis
        The differentiated axis.
    spacing
        The axis's resolved :class:`~daskgrad.core.spacing.AxisSpacing` (not periodic).
    start
        The global index along ``axis`` of the block's first own point.
    depth
        The halo depth: at least the edge order.
    bounds
        ``(first, last)``: each own point's run bounds (global indices, shaped like the
        block), from :func:`run_bounds`. Needed only where :func:`needs_run_bounds`.
    dtype
        The dtype of the whole array (default: the block's).

    Returns
    -------
    The block's gradient along ``axis`` (shaped like the block, without the halo).

    Examples
    --------
    >>> from daskgrad.core.spacing import axis_spacing
    >>> f = np.array([np.nan, 1.0, 2.0, np.nan, 4.0, 7.0, 11.0, np.nan])
    >>> s = axis_spacing(None, axis=0, size=6, edge_order=1)
    >>> one_sided_block(f, 0, s, 0, 1)
    array([1. , 1. , nan, 3. , 3.5, 4. ])
    """
    xp = array_module(ext)
    work, out_dtype = working_dtypes(host_dtype(ext.dtype if dtype is None else dtype))
    ndim = ext.ndim
    edge_order = spacing_edge_order(spacing)
    n = ext.shape[axis] - 2 * depth

    def f(k: int) -> Any:
        """The block's points shifted by ``k`` along the axis (a view of ``ext``)."""
        return ext[axis_slice(ndim, axis, depth + k, depth + k + n)]

    with _quiet(xp):
        nan = {k: xp.isnan(f(k)) for k in range(-edge_order, edge_order + 1)}
        if edge_order == 1:
            short = nan[0] | (nan[-1] & nan[1])
        else:
            short = nan[0] | (nan[-1] & (nan[1] | nan[2])) | (nan[1] & (nan[-1] | nan[-2]))
        is_start = ~short & nan[-1]
        is_end = ~short & nan[1]
        inside = ~short & ~nan[-1] & ~nan[1]

        # Inside a run: the propagate kernel's central difference, computed on ``ext``.
        weights = None
        if spacing.weights is not None:
            # ``ext`` index 0 is global point ``start - depth``, index ``start`` once padded.
            a, b, c = (
                np.pad(w, depth, mode="edge")[start : start + n + 2 * depth]
                for w in spacing.weights
            )
            weights = (a, b, c)
        block = BlockSpacing(
            2.0 * spacing.step if spacing.uniform else None, weights, _UNUSED_EDGE, _UNUSED_EDGE
        )
        (central,) = gradient_block(ext, [(None, None)], [axis], [block], dtype)
        central = central[axis_slice(ndim, axis, depth, depth + n)]

        i = np.arange(start, start + n)
        if spacing.uniform:
            assert spacing.first is not None and spacing.last is not None  # never periodic here
            first_c, last_c = spacing.first.coeffs, spacing.last.coeffs
        else:
            first_c, last_c, central = _nonuniform_runs(
                xp, f, central, spacing, bounds, i, edge_order, work, axis
            )
        points = [f(k) for k in range(-edge_order, edge_order + 1)]
        if edge_order == 1:
            start_v = _two_point(xp, points[2], points[1], first_c[0], work)
            end_v = _two_point(xp, points[1], points[0], last_c[0], work)
        else:
            start_v = _three_point(xp, points[2:5], first_c, work)
            end_v = _three_point(xp, points[0:3], last_c, work)
        fill = out_dtype.type(np.nan)
        out = xp.where(is_end, end_v.astype(out_dtype, copy=False), fill)
        out = xp.where(is_start, start_v.astype(out_dtype, copy=False), out)
        return xp.where(inside, central, out)


def needs_run_bounds(spacing: AxisSpacing) -> bool:
    """Whether some run of this axis may be uniform on a non-uniform axis (then each point
    needs its run's bounds): only if two adjacent coordinate differences are equal.

    Without that, no run of three or more points is uniform, and a two-point run's ends are
    the same numbers either way.

    Examples
    --------
    >>> from daskgrad.core.spacing import axis_spacing
    >>> needs_run_bounds(axis_spacing([0.0, 1.0, 3.0, 6.0], axis=0, size=4, edge_order=1))
    False
    >>> needs_run_bounds(axis_spacing([0.0, 1.0, 2.0, 6.0], axis=0, size=4, edge_order=1))
    True
    """
    d = spacing.diffs
    return d is not None and spacing.weights is not None and bool((d[1:] == d[:-1]).any())


def _nonuniform_runs(xp, f, central, spacing, bounds, i, edge_order, work, axis):
    """A non-uniform coordinate: which runs are uniform, and each point's coefficients.

    ``bounds`` is ``None`` when :func:`needs_run_bounds` says no run can be uniform.
    """
    diffs = spacing.diffs
    ndim = central.ndim
    non_first, non_last = (
        tuple(along_axis(c, ndim, axis) for c in cs)
        for cs in _nonuniform_ends(diffs, i, edge_order)
    )
    if bounds is None:
        return non_first, non_last, central
    first, last = bounds
    last_diff = diffs.size - 1
    d_first = xp.clip(first, 0, last_diff)
    ends = xp.asarray(_stretch_ends(diffs))
    uniform = xp.take(ends, d_first) >= last - 1
    dx = xp.take(xp.asarray(diffs), d_first)  # the run's step where it is uniform

    dtype = _promoted(work, diffs)
    twice = xp.add(dx, dx, dtype=host_dtype(dx.dtype))  # numpy's ``2. * dx``, exactly
    uni = xp.divide(xp.subtract(f(1), f(-1), dtype=work), twice, dtype=dtype)
    central = xp.where(uniform, uni.astype(central.dtype, copy=False), central)

    def pick(uni_c: Sequence[Any], non_c: Sequence[np.ndarray]) -> tuple:
        return tuple(xp.where(uniform, u, xp.asarray(c)) for u, c in zip(uni_c, non_c))

    if edge_order == 1:  # numpy's dx_0 / dx_n: the same number whether the run is uniform
        return non_first, non_last, central
    # Uniform runs: numpy's uniform coefficients of the run's step (at a start, diffs[i]; at an
    # end, diffs[first], equal to diffs[i - 1] there).
    uni_first, uni_last = _uniform_ends(dx, edge_order)
    return pick(uni_first, non_first), pick(uni_last, non_last), central
