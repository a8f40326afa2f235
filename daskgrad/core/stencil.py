"""A face-halo graph over several inputs: one kernel task per block, several outputs.

:mod:`daskgrad.core.halo` builds the gradient's graph: one input, one kernel task per block and
dim. Operators that combine derivatives of several fields (the divergence and vorticity of a
wind ``(u, v)``, the advection of a scalar) need, per block, the blocks of every input and the
faces of some of them along some axes; computing all their outputs in one task reads each
input block once and keeps the intermediate derivatives inside the task.

:func:`stencil_dask` builds that graph for any block function: per input block one task cuts
its first and last ``depth`` points along the axes whose faces are needed (copies, so the block
can be freed), and per block one kernel task calls

``kernel(static, start, blocks, faces)``

with ``start`` the global index of the block's first point, ``blocks`` one array per input and
``faces`` one mapping per input ``{axis: (lower, upper)}`` (the previous block's last points and
the next block's first points along that axis; ``None`` at a non-periodic end). The kernel
returns a tuple with one array per output, shaped like the block. ``static`` is one graph node
shared by every kernel task, not copied into each.

The numbers are the kernel's; this module builds graph code only.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from daskgrad.core._compat import make_task, ref

__all__ = ["call_kernel", "fit_chunks", "neighbour", "stencil_dask", "take_slabs"]

_DataNode: Any
try:  # one node holding the static arguments, shared by every kernel task
    from dask._task_spec import DataNode as _DataNode
except ImportError:  # pragma: no cover - older dask: a plain value in the graph
    _DataNode = None


def take_slabs(block: Any, axes: Sequence[int], depth: int) -> dict[int, tuple[Any, Any]]:
    """The first and last ``depth`` points of ``block`` along each of ``axes`` (copies).

    Examples
    --------
    >>> take_slabs(np.arange(6.0).reshape(2, 3), [1], 1)[1]
    (array([[0.],
           [3.]]), array([[2.],
           [5.]]))
    """
    out = {}
    for a in axes:
        n = block.shape[a]
        first = [slice(None)] * block.ndim
        last = [slice(None)] * block.ndim
        first[a] = slice(0, min(depth, n))
        last[a] = slice(max(0, n - depth), n)
        out[a] = (block[tuple(first)].copy(), block[tuple(last)].copy())
    return out


def neighbour(
    index: tuple[int, ...], axis: int, step: int, grid: Sequence[int], periodic: bool
) -> tuple[int, ...] | None:
    """The block ``step`` (-1 or 1) away from ``index`` along ``axis``; ``None`` past a
    non-periodic end.

    Examples
    --------
    >>> neighbour((0, 2), 1, 1, (2, 3), True), neighbour((0, 2), 1, 1, (2, 3), False)
    ((0, 0), None)
    """
    j = index[axis] + step
    if not 0 <= j < grid[axis]:
        if not periodic:
            return None
        j %= grid[axis]
    return (*index[:axis], j, *index[axis + 1 :])


def fit_chunks(chunks: tuple[int, ...], least: int) -> tuple[int, ...]:
    """Chunks merged with their neighbours until each holds at least ``least`` points (empty
    chunks dropped): a face of ``least`` points then comes from one neighbour.

    Examples
    --------
    >>> fit_chunks((1, 3, 0, 1, 1, 2, 1), 2)
    (4, 2, 3)
    >>> fit_chunks((1, 1, 1), 1)
    (1, 1, 1)
    """
    out: list[int] = []
    acc = 0
    for c in chunks:
        acc += c
        if acc >= least:
            out.append(acc)
            acc = 0
    if acc:
        if out:
            out[-1] += acc
        else:
            out.append(acc)
    return tuple(out)


def _faces_task(block: Any, axes: tuple[int, ...], depth: int) -> dict[int, tuple[Any, Any]]:
    return take_slabs(block, axes, depth)


def call_kernel(
    kernel: Callable[..., Any],
    static: Any,
    start: tuple[int, ...],
    layout: tuple[tuple[int, ...], ...],
    *args: Any,
) -> Any:
    """``kernel(static, start, blocks, faces)`` from the flat arguments of a kernel task: the
    blocks, then per input (``layout``: its face axes) and face axis the lower and upper
    neighbours' :func:`take_slabs` mappings (``None`` at an end)."""
    count = len(layout)
    blocks = args[:count]
    rest = iter(args[count:])
    faces = []
    for axes in layout:
        mine = {}
        for a in axes:
            lower, upper = next(rest), next(rest)
            mine[a] = (
                None if lower is None else lower[a][1],  # the previous block's last points
                None if upper is None else upper[a][0],  # the next block's first points
            )
        faces.append(mine)
    return kernel(static, start, blocks, faces)


def stencil_dask(
    kernel: Callable[..., Any],
    static: Any,
    arrays: Sequence[da.Array],
    face_axes: Sequence[Sequence[int]],
    depth: int,
    out_dtypes: Sequence[Any],
    *,
    periodic: Sequence[int] = (),
    name: str = "stencil",
) -> tuple[da.Array, ...]:
    """Lazy outputs of ``kernel`` over the blocks of ``arrays`` (see the module docstring).

    Parameters
    ----------
    kernel
        ``kernel(static, start, blocks, faces) -> tuple`` of one array per output.
    static
        Its first argument, the same for every block (a recipe).
    arrays
        The inputs: dask arrays of one shape and the same chunks, every chunk along a face
        axis at least ``depth`` long (see :func:`fit_chunks`).
    face_axes
        Per input, the axes along which its kernel needs the neighbours' faces.
    depth
        Points per face.
    out_dtypes
        One dtype per output.
    periodic
        Axes that wrap around: the first block's lower neighbour is the last block.
    name
        Prefix of the graph's layer names.

    Returns
    -------
    tuple of dask.array.Array
        One per output, with the inputs' chunks.

    Examples
    --------
    >>> def kernel(static, start, blocks, faces):
    ...     lower, upper = faces[0][0]
    ...     lo = blocks[0][:1] if lower is None else lower
    ...     hi = blocks[0][-1:] if upper is None else upper
    ...     ext = np.concatenate([lo, blocks[0], hi])
    ...     return (ext[2:] - ext[:-2] + blocks[1] * static,)
    >>> x, y = da.arange(6.0, chunks=2), da.ones(6, chunks=2)
    >>> (out,) = stencil_dask(kernel, 10.0, [x, y], [(0,), ()], 1, ["f8"])
    >>> out.compute()
    array([11., 12., 12., 12., 12., 11.])
    """
    first = arrays[0]
    chunks = first.chunks
    for a in arrays[1:]:
        if a.shape != first.shape or a.chunks != chunks:
            raise ValueError(
                f"stencil inputs need one shape and the same chunks; got {first.shape} "
                f"{chunks} and {a.shape} {a.chunks}"
            )
    layout = tuple(tuple(int(a) for a in axes) for axes in face_axes)
    token = tokenize(kernel, static, [a.name for a in arrays], layout, depth, periodic, out_dtypes)
    faces_name = f"{name}-faces-{token}"
    kernel_name = f"{name}-{token}"
    static_key = (f"{name}-static-{token}",)
    grid = first.numblocks
    wraps = set(periodic)
    starts = [np.cumsum((0, *c[:-1])) for c in chunks]
    layers: dict[str, Any] = {}
    dependencies: dict[str, set] = {}
    for a in arrays:
        layers.update(a.dask.layers)
        dependencies.update(a.dask.dependencies)

    faces_dsk: dict = {}
    kernel_dsk: dict = {}
    if _DataNode is not None:
        kernel_dsk[static_key] = _DataNode(static_key, static)
        static_arg: Any = ref(static_key)
    else:  # pragma: no cover - older dask
        kernel_dsk[static_key] = static
        static_arg = static_key
    for idx in itertools.product(*map(range, grid)):
        args: list[Any] = []
        for i, axes in enumerate(layout):
            for axis in axes:
                for step in (-1, 1):
                    n = neighbour(idx, axis, step, grid, axis in wraps)
                    if n is None:
                        args.append(None)
                        continue
                    key = (faces_name, i, *n)
                    if key not in faces_dsk:
                        faces_dsk[key] = make_task(
                            key, _faces_task, ref((arrays[i].name, *n)), axes, depth
                        )
                    args.append(ref(key))
        start = tuple(int(s[j]) for s, j in zip(starts, idx))
        key = (kernel_name, *idx)
        kernel_dsk[key] = make_task(
            key,
            call_kernel,
            kernel,
            static_arg,
            start,
            layout,
            *(ref((a.name, *idx)) for a in arrays),
            *args,
        )
    if faces_dsk:
        layers[faces_name] = faces_dsk
        dependencies[faces_name] = {a.name for a in arrays}
    layers[kernel_name] = kernel_dsk
    dependencies[kernel_name] = {a.name for a in arrays} | ({faces_name} if faces_dsk else set())
    outputs = []
    for j in range(len(out_dtypes)):
        out_name = f"{name}-out{j}-{token}"
        layers[out_name] = {
            (out_name, *idx): make_task(
                (out_name, *idx), operator.getitem, ref((kernel_name, *idx)), j
            )
            for idx in itertools.product(*map(range, grid))
        }
        dependencies[out_name] = {kernel_name}
        outputs.append(out_name)
    graph = HighLevelGraph(layers, dependencies)
    results = []
    for out_name, dtype in zip(outputs, out_dtypes):
        meta = first._meta.astype(np.dtype(dtype))
        results.append(da.Array(graph, out_name, chunks, meta=meta))
    return tuple(results)
