"""The dask graph: face-only halo exchange of depth 1, one kernel task per block for every dim.

Per block, one task cuts the block's first and last slabs (thickness 1) along each
differentiated axis: the faces its neighbours need. Then one kernel task per block runs
:func:`daskgrad.core.kernels.gradient_block` on the block and its neighbours' faces, for every
requested dim in one pass. Nothing else travels: no edges, no corners, never a whole block.

Where the input's block is a read from its source (dask's ``getter``: ``da.from_zarr``, an
xarray backend, ``da.from_array`` of a file), the read runs inside the face task and again inside
the kernel task instead of being a task of its own. No task then takes a block as an input, so
on a distributed cluster there is no block for the scheduler to move: whichever worker runs a
kernel, only faces come to it (a kernel placed away from a block it takes as an input pulls the
whole block, which distributed's default bandwidth guess makes cheap whenever the block's own
worker is busier than a read takes; measured at 0.6x to 10x the faces). On the threaded
scheduler a block is then in memory only while one of its two tasks runs, never while it
waits for its neighbours: peak memory stays flat in the array's cross-section. The price is
one more read of each block, measured in docs/benchmarks.md. Blocks that are not reads (data in
memory, a computed or rechunked block, a user's function) are taken as they are, once.

The face tasks are marked as reads (root tasks), so the scheduler spreads them over the
workers as threads free up; with several dims, one small task per (block, axis) hands on that
axis's pair of faces, so a neighbour receives that pair only. For a 3-D array differentiated
along all dims that is 1 face task + 3 pair tasks + 1 kernel task + 3 output tasks (each picks
one dim's array from the kernel's tuple) = 8 tasks per input chunk; for one dim, 2 (the kernel
task is the output chunk). A dask coordinate adds one task per axis (not per chunk): it checks
the coordinate and takes numpy's uniform/non-uniform decision over the whole axis, and the
kernel tasks read their spacing from it, so nothing is computed when the graph is built.
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

from daskgrad.core._compat import make_read_task, make_task, ref
from daskgrad.core.kernels import gradient_block
from daskgrad.core.spacing import AxisSpacing, LazyAxisSpacing, resolve_lazy_spacing

__all__ = ["gradient_dask", "valid_chunks"]

_GETTERS = (da.core.getter, da.core.getter_nofancy, da.core.getter_inline)


def _take_faces(wanted: tuple[tuple[int, bool, bool], ...], block: Any) -> tuple:
    """Per ``(axis, first, last)`` in ``wanted``: the block's faces along ``axis`` as one array.

    The first and the last slab (thickness 1) stacked along the axis, or only the one a
    neighbour needs: the previous block takes index 0, the next block index -1. One array,
    not a pair, so a worker receives exactly the slabs' bytes. A copy, so the block can be
    freed.
    """

    def faces(axis: int, first: bool, last: bool):
        n = block.shape[axis]
        key = [slice(None)] * block.ndim
        key[axis] = (
            slice(0, n, n - 1)
            if first and last and n > 1
            else (slice(0, 1) if first else slice(n - 1, n))
        )
        return block[tuple(key)].copy()

    return tuple(faces(*w) for w in wanted)


def _take_face_pair(axis: int, first: bool, last: bool, block: Any) -> Any:
    """:func:`_take_faces` for one axis: its array of faces."""
    return _take_faces(((axis, first, last),), block)[0]


def _face(faces: Any, axis: int, index: int) -> Any:
    key = [slice(None)] * faces.ndim
    key[axis] = slice(index, index + 1) if index >= 0 else slice(index, None)
    return faces[tuple(key)]


@dataclass(frozen=True)
class _BlockPlan:
    """The static arguments of one block's kernel task (one opaque object: cheap to plan).

    ``spacings`` holds, per differentiated axis, the block's
    :class:`~daskgrad.core.spacing.BlockSpacing`, or ``(start, stop)`` for an axis whose
    spacing is a graph output (a dask coordinate): the task then cuts it from the
    :class:`~daskgrad.core.spacing.AxisSpacing` it receives. ``faces`` holds, per axis,
    whether the previous and the next block's faces are among the task's arguments.
    """

    axes: tuple[int, ...]
    spacings: tuple[Any, ...]
    faces: tuple[tuple[bool, bool], ...]
    dtype: np.dtype


def _block_task(plan: _BlockPlan, block: Any, *args: Any) -> Any:
    """Every requested dim of one block, in one kernel pass.

    ``args``: the neighbours' faces named in ``plan.faces`` (each from
    :func:`_take_faces`), then the resolved spacing of each lazy axis.
    """
    it = iter(args)
    faces = []
    for axis, (has_prev, has_next) in zip(plan.axes, plan.faces):
        # The previous block's last slab and the next block's first slab.
        lower = _face(next(it), axis, -1) if has_prev else None
        upper = _face(next(it), axis, 0) if has_next else None
        faces.append((lower, upper))
    spacings = [next(it).block(*s) if isinstance(s, tuple) else s for s in plan.spacings]
    out = gradient_block(block, faces, plan.axes, spacings, plan.dtype)
    return out[0] if len(out) == 1 else out


def _read_task(layer: Any, key: tuple) -> Any:
    """The task that reads block ``key`` from its source, to run inside another task.

    A read is dask's own ``getter`` of an array-like source (``da.from_zarr``, an xarray
    backend, an HDF5 dataset: ``da.from_array``) whose arguments are whole objects, never
    another array's blocks: running it twice costs one more read and nothing else. ``None``
    for anything else (data already in memory, a computed or rechunked block, a user's
    function), which the graph then references as it is.
    """
    task = layer.get(key) if layer is not None else None
    if not isinstance(task, make_task) or getattr(task, "func", None) not in _GETTERS:
        return None
    return task if all(not isinstance(d, tuple) for d in task.dependencies) else None


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
    pairs_name = f"gradient-facepairs-{token}"
    kernel_name = f"gradient-{token}"
    spacing_name = f"gradient-spacing-{token}"  # dask coordinates: one task per axis
    out_names = [f"gradient-d{s.axis}-{token}" for s in spacings]
    numblocks = work.numblocks
    all_blocks = list(itertools.product(*map(range, numblocks)))
    layers = dict(work.dask.layers)
    dependencies = dict(work.dask.dependencies)
    input_name = work.name
    input_layer = layers.get(input_name)
    referenced = []  # blocks taken as they are (not reads)

    def block_arg(idx: tuple) -> Any:
        # A read runs inside each task that needs the block (see the module docstring).
        key = (input_name, *idx)
        task = _read_task(input_layer, key) if isinstance(make_task, type) else None
        if task is None:
            referenced.append(key)
            return ref(key)
        return task

    # Per axis: each block's neighbours, and the blocks' bounds along the axis.
    neighbours = [_neighbours(numblocks[s.axis], s.periodic) for s in spacings]
    bounds = [np.cumsum((0, *work.chunks[s.axis])).tolist() for s in spacings]
    one_axis = len(spacings) == 1

    # One task per block cuts the faces its neighbours need (one slab of thickness 1 per
    # neighbour), and, with several dims, one small task per (block, axis) hands on that
    # axis's pair: only what a neighbour reads ever leaves the block's worker.
    faces_dsk: dict = {}
    pairs_dsk: dict = {}
    face_of: dict = {}  # (block index, position in spacings) -> the face pair's key
    for idx in all_blocks:
        wanted = []
        for n, ((prev_of, next_of), s) in enumerate(zip(neighbours, spacings)):
            i = idx[s.axis]
            # Its first slab goes to the previous block, its last slab to the next block.
            first, last = prev_of[i] is not None, next_of[i] is not None
            if first or last:
                wanted.append((n, (s.axis, first, last)))
        if not wanted:
            continue
        key = (faces_name, *idx)
        if one_axis:  # the task's output is the one pair itself
            faces_dsk[key] = make_read_task(key, _take_face_pair, *wanted[0][1], block_arg(idx))
            face_of[idx, 0] = key
            continue
        faces_dsk[key] = make_read_task(
            key, _take_faces, tuple(w for _, w in wanted), block_arg(idx)
        )
        for pos, (n, _) in enumerate(wanted):
            pair_key = (pairs_name, n, *idx)
            pairs_dsk[pair_key] = make_task(pair_key, operator.getitem, ref(key), pos)
            face_of[idx, n] = pair_key

    spacing_dsk: dict = {}
    spacing_refs = []
    for s in spacings:
        if not isinstance(s, LazyAxisSpacing):
            continue
        key = (spacing_name, s.axis)
        coord = s.coord
        spacing_dsk[key] = make_task(
            key, resolve_lazy_spacing, s.spec, *(ref(k) for k in coord.__dask_keys__())
        )
        spacing_refs.append(ref(key))
        layers.update(coord.dask.layers)
        dependencies.update(coord.dask.dependencies)

    # One kernel task per block computes every requested dim, from its block and its
    # neighbours' faces only.
    axes = tuple(s.axis for s in spacings)
    kernel_dsk: dict = {}
    out_dsks: list[dict] = [{} for _ in spacings]
    for idx in all_blocks:
        face_args = []
        face_flags = []
        block_spacings: list[Any] = []
        for n, ((prev_of, next_of), s, b) in enumerate(zip(neighbours, spacings, bounds)):
            i = idx[s.axis]
            prev, nxt = prev_of[i], next_of[i]
            head, tail = idx[: s.axis], idx[s.axis + 1 :]
            if prev is not None:
                face_args.append(ref(face_of[(*head, prev, *tail), n]))
            if nxt is not None:
                face_args.append(ref(face_of[(*head, nxt, *tail), n]))
            face_flags.append((prev is not None, nxt is not None))
            start, stop = int(b[i]), int(b[i + 1])
            if isinstance(s, LazyAxisSpacing):
                block_spacings.append((start, stop))
            else:
                block_spacings.append(s.block(start, stop))
        plan = _BlockPlan(axes, tuple(block_spacings), tuple(face_flags), work.dtype)
        args = (plan, block_arg(idx), *face_args, *spacing_refs)
        if one_axis:  # the kernel task is the output chunk itself
            key = (out_names[0], *idx)
            out_dsks[0][key] = make_task(key, _block_task, *args)
            continue
        key = (kernel_name, *idx)
        kernel_dsk[key] = make_task(key, _block_task, *args)
        for n, (name, dsk) in enumerate(zip(out_names, out_dsks)):
            out_key = (name, *idx)
            dsk[out_key] = make_task(out_key, operator.getitem, ref(key), n)

    # Layer dependencies: the input's layer, or, where every block is a read that runs inside
    # the tasks, what the reads use (the input's own layer then leaves the graph).
    input_deps = {input_name}
    if not referenced and input_name in layers:
        input_deps = set(dependencies.pop(input_name, ()))
        del layers[input_name]
    kernel_deps = set(input_deps)
    if faces_dsk:
        kernel_deps.add(pairs_name if pairs_dsk else faces_name)
    if spacing_dsk:
        layers[spacing_name] = spacing_dsk
        dependencies[spacing_name] = {
            s.coord.name for s in spacings if isinstance(s, LazyAxisSpacing)
        }
        kernel_deps.add(spacing_name)
    if faces_dsk:
        layers[faces_name] = faces_dsk
        dependencies[faces_name] = set(input_deps)
    if pairs_dsk:
        layers[pairs_name] = pairs_dsk
        dependencies[pairs_name] = {faces_name}
    if kernel_dsk:
        layers[kernel_name] = kernel_dsk
        dependencies[kernel_name] = kernel_deps
    for name, dsk in zip(out_names, out_dsks):
        layers[name] = dsk
        dependencies[name] = {kernel_name} if kernel_dsk else kernel_deps

    graph = HighLevelGraph(layers, dependencies)
    meta = work._meta.astype(out_dtype) if work._meta.dtype != out_dtype else work._meta
    results = [da.Array(graph, name, work.chunks, meta=meta) for name in out_names]
    if work is not x:
        # Back to the caller's chunks: only the merged edge chunks are split again.
        results = [r.rechunk(x.chunks) for r in results]
    return tuple(results)
