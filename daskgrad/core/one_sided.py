"""Where ``nan_policy`` is decided and routed, and the dask graph of ``"one-sided"``.

:func:`gradient_one_sided` runs the one-sided policy (the keyword is checked by
:func:`daskgrad.core.options.check_nan_policy`; the numbers are :mod:`daskgrad.core.nan_runs`'s):

* numpy or CuPy values: the whole axis is one block, padded with ``edge_order`` NaN at each end;
* dask values: per differentiated axis, chunks shorter than the halo are merged with a
  neighbour, each block gets a NaN-bounded halo of depth ``edge_order`` along that axis
  (``dask.array.overlap``), and one task per block runs
  :func:`~daskgrad.core.nan_runs.one_sided_block`; the result is rechunked back to the input's
  chunks where needed. A non-uniform coordinate with two equal adjacent differences
  somewhere (or any dask coordinate) adds the run bounds: two running maxima along the axis (dask's sequential ``cumreduction``), widened like the values. A dask
  coordinate is resolved in one graph task, as for propagate, so nothing is computed when the
  graph is built;
* periodic axes: :func:`_one_sided_periodic` doubles each line so that a run across the seam
  lies whole in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask import delayed

from daskgrad.core._compat import array_module
from daskgrad.core.nan_runs import (
    along_axis,
    axis_slice,
    needs_run_bounds,
    one_sided_block,
    run_bounds,
    running_max,
    spacing_edge_order,
)
from daskgrad.core.spacing import AxisSpacing, LazyAxisSpacing, axis_spacing, resolve_lazy_spacing
from daskgrad.core.stencil import fit_chunks

__all__ = ["gradient_one_sided"]

# The kernel's edge rule for the padded halo's outermost points, whose results are discarded.


def _maximum(a: Any, b: Any) -> Any:
    return array_module(b).maximum(a, b)


def _nan_marks(block: Any, axis: int, offsets: tuple, from_end: bool, block_id=None) -> Any:
    """Per point: its global index (from the end if ``from_end``) where NaN, else -1."""
    xp = array_module(block)
    start = offsets[block_id[axis]]
    i = np.arange(start, start + block.shape[axis], dtype=np.intp)
    if from_end:
        i = (offsets[-1] - 1) - i
    return xp.where(xp.isnan(block), xp.asarray(along_axis(i, block.ndim, axis)), -1)


def _run_bounds_dask(x: da.Array, axis: int) -> tuple[da.Array, da.Array]:
    # Two running maxima along the axis (dask's sequential scan: one pass over the blocks).
    n = x.shape[axis]
    offsets = tuple(int(v) for v in np.cumsum((0, *x.chunks[axis])))
    rev = (*[slice(None)] * axis, slice(None, None, -1))

    def marks(from_end: bool) -> da.Array:
        return da.map_blocks(_nan_marks, x, axis, offsets, from_end, dtype=np.intp)

    def scan(a: da.Array) -> da.Array:
        return da.reductions.cumreduction(running_max, _maximum, -1, a, axis=axis, dtype=np.intp)

    before = scan(marks(False))
    after = scan(marks(True)[rev])[rev]
    return before + 1, (n - 2) - after


def _resolve(spacing: LazyAxisSpacing, *coord: Any) -> AxisSpacing:
    return resolve_lazy_spacing(spacing.spec, *coord)


def _block_task(ext, *rest, axis, depth, offsets, spacing, value_dtype, block_id=None):
    # ``rest``: the run bounds (widened like ``ext``) for non-uniform or dask coordinates, then
    # the resolved spacing of a dask coordinate.
    spacing = rest[-1] if isinstance(spacing, LazyAxisSpacing) else spacing
    start = int(offsets[block_id[axis]])
    bounds = None
    if len(rest) >= 2:
        own = axis_slice(ext.ndim, axis, depth, ext.shape[axis] - depth)
        bounds = (rest[0][own], rest[1][own])
    return one_sided_block(ext, axis, spacing, start, depth, bounds, value_dtype)


def _one_sided_dask(x: da.Array, spacing: AxisSpacing | LazyAxisSpacing, out_dtype) -> da.Array:
    axis = spacing.axis
    depth = spacing_edge_order(spacing)
    chunks = list(x.chunks)
    chunks[axis] = fit_chunks(x.chunks[axis], depth)
    work = x.rechunk(tuple(chunks)) if tuple(chunks) != x.chunks else x
    depths = {a: (depth if a == axis else 0) for a in range(x.ndim)}
    boundary = {a: (np.nan if a == axis else "none") for a in range(x.ndim)}
    args = [da.overlap.overlap(work, depths, boundary)]
    lazy = isinstance(spacing, LazyAxisSpacing)
    if isinstance(spacing, LazyAxisSpacing) or needs_run_bounds(spacing):
        bound = {a: (-1 if a == axis else "none") for a in range(x.ndim)}
        args += [da.overlap.overlap(b, depths, bound) for b in _run_bounds_dask(work, axis)]
    if lazy:  # the coordinate is checked and decided inside the graph, as for propagate
        args.append(delayed(_resolve)(spacing, spacing.coord))
    offsets = tuple(int(v) for v in np.cumsum((0, *work.chunks[axis])))
    meta = work._meta.astype(out_dtype) if work._meta.dtype != out_dtype else work._meta
    out = da.map_blocks(
        _block_task,
        *args,
        axis=axis,
        depth=depth,
        offsets=offsets,
        spacing=spacing,
        value_dtype=work.dtype,
        dtype=out_dtype,
        chunks=work.chunks,
        meta=meta,
    )
    return out.rechunk(x.chunks) if work is not x else out


def _one_sided_eager(values: Any, spacing: AxisSpacing) -> Any:
    xp = array_module(values)
    axis = spacing.axis
    depth = spacing_edge_order(spacing)
    pad_shape = list(values.shape)
    pad_shape[axis] = depth
    pad = xp.full(tuple(pad_shape), np.nan, dtype=values.dtype)
    ext = xp.concatenate([pad, values, pad], axis=axis)
    bounds = run_bounds(values, axis) if needs_run_bounds(spacing) else None
    return one_sided_block(ext, axis, spacing, 0, depth, bounds)


def gradient_one_sided(
    values: Any, spacings: Sequence[AxisSpacing | LazyAxisSpacing], out_dtype: np.dtype
) -> tuple[Any, ...]:
    """Gradients of float or complex ``values`` with ``nan_policy="one-sided"``.

    Parameters
    ----------
    values
        numpy, CuPy or dask array of a floating or complex dtype.
    spacings
        One record per differentiated axis, as for the propagate path (none periodic).
    out_dtype
        The results' dtype.

    Returns
    -------
    tuple
        One array per entry of ``spacings``, of the kind of ``values``.

    Raises
    ------
    ValueError
        For a periodic axis with a dask coordinate (not built by daskgrad itself).

    Examples
    --------
    >>> from daskgrad.core.spacing import axis_spacing
    >>> f = np.array([1.0, 2.0, 4.0, np.nan, 5.0])
    >>> gradient_one_sided(f, [axis_spacing(None, axis=0, size=5, edge_order=1)], f.dtype)
    (array([1. , 1.5, 2. , nan, nan]),)
    """
    for s in spacings:
        if s.periodic and isinstance(s, LazyAxisSpacing):
            raise ValueError(
                f"nan_policy='one-sided' on periodic {s.label or f'dim {s.axis}'} needs a numpy "
                "coordinate, got a dask one; compute the coordinate first"
            )
    if isinstance(values, da.Array) and any(np.isnan(c) for cs in values.chunks for c in cs):
        raise ValueError(
            "values is a dask array with unknown chunk sizes; call values.compute_chunk_sizes() "
            "first"
        )
    results = []
    for s in spacings:
        if isinstance(s, LazyAxisSpacing) or (isinstance(values, da.Array) and not s.periodic):
            results.append(_one_sided_dask(values, s, out_dtype))
        elif s.periodic:
            results.append(_one_sided_periodic(values, s, out_dtype))
        else:
            results.append(_one_sided_eager(values, s))
    return tuple(results)


def _one_sided_periodic(values: Any, spacing: AxisSpacing, out_dtype: np.dtype) -> Any:
    """A periodic axis: a run that crosses the seam is one run, its coordinates continued by
    the period; a line without NaN keeps the periodic (propagate) numbers.

    The line is doubled, ``[f, f]`` with coordinates ``[x, x + period]`` (or the step), and
    differentiated as a plain axis: a run crossing the seam then lies whole in the doubled
    line, from its start in the first copy to its end in the second. Each point takes its
    value from the second copy if it lies after the seam in such a run (no NaN before it on
    its line), else from the first copy, where every other run lies whole, with its own
    coordinates.
    """
    from daskgrad.core.gradient import differentiate_axes  # here: gradient imports this module

    axis, n, edge_order = spacing.axis, spacing.size, spacing_edge_order(spacing)
    (wrapped,) = differentiate_axes(values, [spacing])
    lazy = isinstance(values, da.Array)
    xp = da if lazy else array_module(values)
    isnan = xp.isnan(values)
    if 2 * n < edge_order + 1:  # every run is too short: NaN wherever a line has a NaN
        doubled_first = doubled_second = xp.where(isnan, out_dtype.type(np.nan), wrapped)
    else:
        if spacing.coord is None:
            entry = spacing.step
        else:
            entry = np.concatenate([spacing.coord, spacing.coord + spacing.period])
        plain = axis_spacing(
            entry, axis=axis, size=2 * n, edge_order=edge_order, label=spacing.label
        )
        (g,) = gradient_one_sided(xp.concatenate([values, values], axis=axis), [plain], out_dtype)
        doubled_first = g[axis_slice(values.ndim, axis, 0, n)]
        doubled_second = g[axis_slice(values.ndim, axis, n, 2 * n)]
    # After the seam in a run that crosses it: no NaN from the line's start up to the point,
    # and none at the line's last point (else the run starts at the seam and stays plain).
    wraps = ~isnan[axis_slice(values.ndim, axis, n - 1, n)]
    after_seam = (xp.cumsum(isnan, axis=axis) == 0) & wraps
    has_nan = xp.any(isnan, axis=axis, keepdims=True)
    return xp.where(has_nan, xp.where(after_seam, doubled_second, doubled_first), wrapped)
