"""The dask graph: face-only halo exchange of depth 1, one kernel task per block and dim.

For each block and each differentiated axis, one small task cuts the block's first and last
slabs (thickness 1) along that axis: the faces its neighbours need. Then, per block and axis,
one task runs :func:`daskgrad.core.kernels.gradient_block` on the block and the two neighbours'
faces along that axis. Nothing else travels: no edges, no corners, never a whole neighbour block.

The input block is read once (one task) and shared by the kernel tasks of every requested dim.
Each kernel task depends on neighbours along its own axis only, like three independent 1-D
stencils; dask's scheduler can then stream through the array with a few blocks in memory. (A
single task computing all dims would need the faces of all 2*ndim neighbours at once, which makes
the set of blocks held in memory grow with the array's cross-section: measured, not guessed.)

For a 3-D array differentiated along all dims that is 1 read + at most 3 face tasks + 3 kernel
tasks = 7 tasks per input chunk. A dask coordinate adds one task per axis (not per chunk): it
checks the coordinate and takes numpy's uniform/non-uniform decision over the whole axis, and the
axis's kernel tasks read their spacing from it, so nothing is computed when the graph is built.
This is the only module that builds graph code.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from daskgrad.core._compat import make_task, ref
from daskgrad.core.kernels import gradient_block
from daskgrad.core.spacing import AxisSpacing, BlockSpacing, LazyAxisSpacing, resolve_lazy_spacing

__all__ = ["gradient_dask", "valid_chunks"]


def _take_faces(block: Any, axis: int, first: bool, last: bool) -> tuple[Any, Any]:
    """The block's first and last slabs along ``axis`` (copies, so the block can be freed)."""
    n = block.shape[axis]

    def slab(i: int):
        key = [slice(None)] * block.ndim
        key[axis] = slice(i, i + 1)
        return block[tuple(key)].copy()

    return (slab(0) if first else None, slab(n - 1) if last else None)


@dataclass(frozen=True)
class _AxisPlan:
    """The static arguments of one kernel task (one opaque object: cheap to plan)."""

    axis: int
    spacing: BlockSpacing
    dtype: np.dtype


def _axis_task(plan: _AxisPlan, block: Any, prev_faces: Any, next_faces: Any) -> Any:
    # The previous block gives its last slab, the next block its first slab (None at an end).
    lower = None if prev_faces is None else prev_faces[1]
    upper = None if next_faces is None else next_faces[0]
    (out,) = gradient_block(block, [(lower, upper)], [plan.axis], [plan.spacing], plan.dtype)
    return out


@dataclass(frozen=True)
class _LazyAxisPlan:
    """A kernel task's static arguments when the axis spacing is a graph output (dask coords)."""

    axis: int
    start: int
    stop: int
    dtype: np.dtype


def _lazy_axis_task(
    plan: _LazyAxisPlan, spacing: AxisSpacing, block: Any, prev_faces: Any, next_faces: Any
) -> Any:
    block_plan = _AxisPlan(plan.axis, spacing.block(plan.start, plan.stop), plan.dtype)
    return _axis_task(block_plan, block, prev_faces, next_faces)


def valid_chunks(
    chunks: tuple[tuple[int, ...], ...], spacings: Sequence[AxisSpacing | LazyAxisSpacing]
) -> tuple[tuple[int, ...], ...]:
    """Chunks the halo kernel can use: the input's, changed only where it must be.

    Empty chunks along a differentiated axis are dropped (a face must come from a real
    neighbour). With ``edge_order=2`` the one-sided three-point rule needs three points inside
    one block plus its one-point halo, so a first or last chunk of length 1 is merged with its
    neighbour. Everything else, chunks of length 1 in the middle included, is used as it is.

    Examples
    --------
    >>> from daskgrad.core.spacing import axis_spacing
    >>> s = axis_spacing(None, axis=0, size=6, edge_order=2)
    >>> valid_chunks(((1, 2, 0, 2, 1),), [s])
    ((3, 3),)
    """
    new = list(chunks)
    for s in spacings:
        c = [n for n in chunks[s.axis] if n > 0] or [0]
        if s.three_point_edges:
            while len(c) > 1 and c[0] < 2:
                c[0:2] = [c[0] + c[1]]
            while len(c) > 1 and c[-1] < 2:
                c[-2:] = [c[-2] + c[-1]]
        new[s.axis] = tuple(c)
    return tuple(new)


def _neighbours(n_blocks: int, periodic: bool) -> tuple[list, list]:
    """Per block index along an axis: the previous and next block index (None at an end)."""
    prev = [i - 1 if i > 0 else (n_blocks - 1 if periodic else None) for i in range(n_blocks)]
    nxt = [i + 1 if i < n_blocks - 1 else (0 if periodic else None) for i in range(n_blocks)]
    return prev, nxt


def gradient_dask(
    x: da.Array, spacings: Sequence[AxisSpacing | LazyAxisSpacing], out_dtype: np.dtype
) -> tuple[da.Array, ...]:
    """Lazy gradients of a dask array along the axes of ``spacings``.

    Parameters
    ----------
    x
        The values; chunks may be numpy or CuPy arrays.
    spacings
        One :class:`~daskgrad.core.spacing.AxisSpacing` per differentiated axis, or a
        :class:`~daskgrad.core.spacing.LazyAxisSpacing` for a dask coordinate: one graph task then
        checks the coordinate and decides its spacing, and the axis's kernel tasks take it
        from there, so the coordinate is computed with the result, never before.
    out_dtype
        dtype of the results (see :func:`daskgrad.core.kernels.working_dtypes`).

    Returns
    -------
    tuple of dask.array.Array
        One per axis, with the chunks of ``x``.
    """
    if any(np.isnan(c) for cs in x.chunks for c in cs):
        raise ValueError(
            "values is a dask array with unknown chunk sizes; call values.compute_chunk_sizes() "
            "first"
        )
    chunks = valid_chunks(x.chunks, spacings)
    work = x if chunks == x.chunks else x.rechunk(chunks)
    token = tokenize(work.name, spacings, np.dtype(out_dtype).str)
    faces_name = f"gradient-faces-{token}"
    numblocks = work.numblocks
    all_blocks = list(itertools.product(*map(range, numblocks)))
    block_refs = {idx: ref((work.name, *idx)) for idx in all_blocks}

    faces_dsk: dict = {}
    spacing_name = f"gradient-spacing-{token}"  # dask coordinates: one task per axis
    spacing_dsk: dict = {}
    spacing_deps: set = set()
    layers = dict(work.dask.layers)
    dependencies = dict(work.dask.dependencies)
    out_names = []
    for s in spacings:
        axis = s.axis
        prev_of, next_of = _neighbours(numblocks[axis], s.periodic)
        bounds = np.cumsum((0, *work.chunks[axis]))
        spacing_ref = None
        if isinstance(s, LazyAxisSpacing):
            coord = s.coord
            spacing_key = (spacing_name, axis)
            spacing_dsk[spacing_key] = make_task(
                spacing_key, resolve_lazy_spacing, s.spec, *(ref(k) for k in coord.__dask_keys__())
            )
            spacing_deps.add(coord.name)
            layers.update(coord.dask.layers)
            dependencies.update(coord.dask.dependencies)
            spacing_ref = ref(spacing_key)
            plans: list[_AxisPlan] | list[_LazyAxisPlan] = [
                _LazyAxisPlan(axis, int(b0), int(b1), work.dtype)
                for b0, b1 in itertools.pairwise(bounds)
            ]
        else:
            plans = [
                _AxisPlan(axis, s.block(int(b0), int(b1)), work.dtype)
                for b0, b1 in itertools.pairwise(bounds)
            ]
        name = f"gradient-d{axis}-{token}"
        out_names.append(name)
        kernel_dsk = {}
        face_refs = {}
        for idx in all_blocks:
            i = idx[axis]
            prev, nxt = prev_of[i], next_of[i]
            if prev is not None or nxt is not None:
                # This block's faces: its first slab goes to the previous block, its last slab
                # to the next block.
                key = (faces_name, axis, *idx)
                faces_dsk[key] = make_task(
                    key, _take_faces, block_refs[idx], axis, prev is not None, nxt is not None
                )
                face_refs[idx] = ref(key)
        for idx in all_blocks:
            i = idx[axis]
            prev, nxt = prev_of[i], next_of[i]
            head, tail = idx[:axis], idx[axis + 1 :]
            key = (name, *idx)
            neighbours = (
                block_refs[idx],
                None if prev is None else face_refs[(*head, prev, *tail)],
                None if nxt is None else face_refs[(*head, nxt, *tail)],
            )
            if spacing_ref is None:
                kernel_dsk[key] = make_task(key, _axis_task, plans[i], *neighbours)
            else:
                kernel_dsk[key] = make_task(
                    key, _lazy_axis_task, plans[i], spacing_ref, *neighbours
                )
        layers[name] = kernel_dsk
        dependencies[name] = {work.name, faces_name}
        if spacing_ref is not None:
            dependencies[name].add(spacing_name)
    layers[faces_name] = faces_dsk
    if spacing_dsk:
        layers[spacing_name] = spacing_dsk
        dependencies[spacing_name] = spacing_deps
    dependencies[faces_name] = {work.name}

    graph = HighLevelGraph(layers, dependencies)
    meta = work._meta.astype(out_dtype) if work._meta.dtype != out_dtype else work._meta
    results = [da.Array(graph, name, work.chunks, meta=meta) for name in out_names]
    if work is not x:
        # Back to the caller's chunks: only the merged edge chunks are split again.
        results = [r.rechunk(x.chunks) for r in results]
    return tuple(results)
