"""The dask graph: face-only halo exchange of depth 1 and one kernel task per block.

For each block and each differentiated axis, one small task cuts the block's first and last
slabs (thickness 1) along that axis: the faces its neighbours need. One task per block then runs
:func:`daskgrad.kernels.gradient_block` for every differentiated axis in one pass, with the
neighbours' faces. Nothing else travels: no edges, no corners, never a whole neighbour block.
For a 3-D array differentiated along all dims that is at most 3 face tasks + 1 kernel task + 3
output selections per input chunk, and the input is read once however many dims are asked for.

This is the only module that builds graph code.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from daskgrad._compat import make_task, ref
from daskgrad.kernels import gradient_block
from daskgrad.spacing import AxisSpacing, BlockSpacing

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
class _KernelPlan:
    """The static arguments of one block's kernel task (one opaque object: cheap to plan)."""

    axes: tuple[int, ...]
    spacings: tuple[BlockSpacing, ...]
    dtype: np.dtype
    single: bool
    has_neighbour: tuple[bool, ...]  # per axis: previous, next


def _kernel_task(plan: _KernelPlan, block: Any, *neighbour_faces: Any):
    # ``neighbour_faces`` holds, for each present neighbour in ``plan.has_neighbour`` order,
    # that neighbour's face pair: the previous block gives its last slab, the next its first.
    faces_iter = iter(neighbour_faces)
    pairs = [next(faces_iter) if present else None for present in plan.has_neighbour]
    faces = []
    for i in range(len(plan.axes)):
        prev_faces, next_faces = pairs[2 * i], pairs[2 * i + 1]
        faces.append(
            (
                None if prev_faces is None else prev_faces[1],
                None if next_faces is None else next_faces[0],
            )
        )
    out = gradient_block(block, faces, plan.axes, plan.spacings, plan.dtype)
    return out[0] if plan.single else out


def valid_chunks(
    chunks: tuple[tuple[int, ...], ...], spacings: Sequence[AxisSpacing]
) -> tuple[tuple[int, ...], ...]:
    """Chunks the halo kernel can use: the input's, changed only where it must be.

    Empty chunks along a differentiated axis are dropped (a face must come from a real
    neighbour). With ``edge_order=2`` the one-sided three-point rule needs three points inside
    one block plus its one-point halo, so a first or last chunk of length 1 is merged with its
    neighbour. Everything else, chunks of length 1 in the middle included, is used as it is.

    Examples
    --------
    >>> from daskgrad.spacing import axis_spacing
    >>> s = axis_spacing(None, axis=0, size=6, edge_order=2)
    >>> valid_chunks(((1, 2, 0, 2, 1),), [s])
    ((3, 3),)
    """
    new = list(chunks)
    for s in spacings:
        c = [n for n in chunks[s.axis] if n > 0] or [0]
        if s.first is not None and s.first.kind == "three-point":
            while len(c) > 1 and c[0] < 2:
                c[0:2] = [c[0] + c[1]]
            while len(c) > 1 and c[-1] < 2:
                c[-2:] = [c[-2] + c[-1]]
        new[s.axis] = tuple(c)
    return tuple(new)


def gradient_dask(
    x: da.Array, spacings: Sequence[AxisSpacing], out_dtype: np.dtype
) -> tuple[da.Array, ...]:
    """Lazy gradients of a dask array along the axes of ``spacings``.

    Parameters
    ----------
    x
        The values; chunks may be numpy or CuPy arrays.
    spacings
        One :class:`~daskgrad.spacing.AxisSpacing` per differentiated axis.
    out_dtype
        dtype of the results (see :func:`daskgrad.kernels.working_dtypes`).

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
    axes = tuple(s.axis for s in spacings)
    single = len(axes) == 1
    token = tokenize(work.name, spacings, np.dtype(out_dtype).str)
    faces_name = f"gradient-faces-{token}"
    kernel_name = f"gradient-kernel-{token}" if not single else f"gradient-d{axes[0]}-{token}"
    out_names = [f"gradient-d{a}-{token}" for a in axes]
    numblocks = work.numblocks

    # Per axis, the block boundaries and each block's slice of the spacing (small, shared).
    bounds = {s.axis: np.cumsum((0, *work.chunks[s.axis])) for s in spacings}
    block_spacings = {
        s.axis: [s.block(int(b0), int(b1)) for b0, b1 in zip(bounds[s.axis][:-1], bounds[s.axis][1:])]
        for s in spacings
    }

    # Per axis, each block index's previous and next block index (None at a non-periodic end).
    def neighbours_along(s: AxisSpacing) -> tuple[list, list]:
        nb = numblocks[s.axis]
        prev = [i - 1 if i > 0 else (nb - 1 if s.periodic else None) for i in range(nb)]
        nxt = [i + 1 if i < nb - 1 else (0 if s.periodic else None) for i in range(nb)]
        return prev, nxt

    links = [(s.axis, *neighbours_along(s)) for s in spacings]
    faces_dsk: dict = {}
    kernel_dsk: dict = {}
    plans: dict = {}  # one shared plan object per distinct (spacings, neighbours) combination
    for idx in itertools.product(*map(range, numblocks)):
        block = ref((work.name, *idx))
        refs = []
        present = []
        for axis, prev_of, next_of in links:
            i = idx[axis]
            prev, nxt = prev_of[i], next_of[i]
            for j in (prev, nxt):
                present.append(j is not None)
                if j is not None:
                    refs.append(ref((faces_name, axis, *idx[:axis], j, *idx[axis + 1 :])))
            # This block's faces: the first slab goes to the previous block, the last to the next.
            if prev is not None or nxt is not None:
                key = (faces_name, axis, *idx)
                faces_dsk[key] = make_task(key, _take_faces, block, axis, prev is not None, nxt is not None)
        plan_key = (tuple(idx[s.axis] for s in spacings), tuple(present))
        plan = plans.get(plan_key)
        if plan is None:
            plan = plans[plan_key] = _KernelPlan(
                axes,
                tuple(block_spacings[s.axis][idx[s.axis]] for s in spacings),
                work.dtype,
                single,
                tuple(present),
            )
        key = (kernel_name, *idx)
        kernel_dsk[key] = make_task(key, _kernel_task, plan, block, *refs)

    layers = dict(work.dask.layers)
    dependencies = dict(work.dask.dependencies)
    layers[faces_name] = faces_dsk
    dependencies[faces_name] = {work.name}
    layers[kernel_name] = kernel_dsk
    dependencies[kernel_name] = {work.name, faces_name}
    meta = work._meta.astype(out_dtype) if work._meta.dtype != out_dtype else work._meta
    if single:
        results = [da.Array(HighLevelGraph(layers, dependencies), kernel_name, work.chunks, meta=meta)]
    else:
        for i, name in enumerate(out_names):
            layers[name] = {
                (name, *idx): make_task((name, *idx), operator.getitem, ref((kernel_name, *idx)), i)
                for idx in itertools.product(*map(range, numblocks))
            }
            dependencies[name] = {kernel_name}
        graph = HighLevelGraph(layers, dependencies)
        results = [da.Array(graph, name, work.chunks, meta=meta) for name in out_names]
    if work is not x:
        # Back to the caller's chunks: only the merged edge chunks are split again.
        results = [r.rechunk(x.chunks) for r in results]
    return tuple(results)
