"""Divergence and vorticity of one block in one compiled pass (where numba is installed).

:func:`compiled_block` computes every row of the block but its first and last along ``y``
with :func:`daskgrad.core.compiled.vector_interior`: one pass that reads ``u`` and ``v`` once
per row for all four derivatives, the metric and the sums (the first and last columns too,
across the cut to the neighbours' faces along ``x``), where the array-module path
(:func:`daskgrad.vector_blocks.array_block`) makes ten passes over full-size temporaries. The
first and last rows, and the first and last columns at a grid's non-periodic end along ``x``
(the one-sided rules), are computed by that array-module path on three-point-thick strips of
the block, so each rule lives in one place. The same bits either way
(``tests/test_vector_compiled.py``).

It applies to float32/float64 numpy blocks whose two differentiated dims are the last two,
at least 8 points along each, with central differences (``nan_policy="propagate"``) and
without a mask; everything else returns ``None`` and takes the array-module path.

Examples
--------
>>> import numpy as np
>>> from daskgrad.core.spacing import axis_spacing
>>> from daskgrad.vector_blocks import vector_block, vector_recipe
>>> sx = axis_spacing(None, axis=1, size=8, edge_order=1)
>>> sy = axis_spacing(None, axis=0, size=8, edge_order=1)
>>> r = vector_recipe(("divergence",), 1, 0, sx, sy, np.dtype("f8"))
>>> u, v = np.arange(64.0).reshape(8, 8), np.zeros((8, 8))
>>> none = {1: (None, None), 0: (None, None)}
>>> vector_block(r, (0, 0), (u, v), (none, none))[0][3]
array([1., 1., 1., 1., 1., 1., 1., 1.])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from daskgrad.core import compiled
from daskgrad.core.kernels import fused_axis

__all__ = ["MIN_POINTS", "compiled_block"]

#: Points a block needs along each differentiated dim for the compiled pass (the strips at
#: its edges are three points thick and take their inner face from the block).
MIN_POINTS = 8

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

Faces = Mapping[int, tuple[Any, Any]]
NumpyBlock = Callable[[Any, Sequence[int], Sequence[Any], Sequence[Faces]], tuple[Any, ...]]


def _applies(recipe: Any, blocks: Sequence[Any]) -> bool:
    if not compiled.enabled() or recipe.outputs == ("advection",) or recipe.dx.one_sided:
        return False
    dtype = recipe.dtype
    if dtype not in _FLOATS or recipe.out_dtype != dtype:
        return False
    first = blocks[0]
    nd = first.ndim
    return (
        nd >= 2
        and {recipe.x_axis, recipe.y_axis} == {nd - 2, nd - 1}
        and all(isinstance(b, np.ndarray) and b.dtype == dtype for b in blocks)
        and min(first.shape[recipe.x_axis], first.shape[recipe.y_axis]) >= MIN_POINTS
    )


def _axis(part: Any, start: Sequence[int], shape: Sequence[int], dtype: np.dtype) -> Any:
    """``(mode, scalar, weights)`` of a derivative's axis over this block, or None."""
    spacing = part.spacings[0]
    a0 = int(start[spacing.axis])
    found = fused_axis(spacing.block(a0, a0 + shape[spacing.axis]), dtype)
    if found is None:
        return None
    mode, scalar, weights = found
    if weights is None:  # read by the kernel's signature only
        weights = np.zeros((3, shape[spacing.axis]), np.float64)
    return mode, scalar, weights


def _view(a: np.ndarray, x_last: bool) -> np.ndarray:
    """``a`` as ``(lead, ny, nx)`` (a view where ``a`` is C-contiguous)."""
    three = a.reshape(-1, *a.shape[-2:])
    return three if x_last else three.swapaxes(1, 2)


def compiled_block(
    recipe: Any,
    start: Sequence[int],
    blocks: Sequence[Any],
    faces: Sequence[Faces],
    numpy_block: NumpyBlock,
) -> tuple[Any, ...] | None:
    """The operators of one block (``vector_block``'s result), or ``None`` where the compiled
    pass does not apply; ``numpy_block`` is the array-module kernel used for the edges."""
    if not _applies(recipe, blocks):
        return None
    u, v = blocks
    dtype = recipe.dtype
    x_axis = _axis(recipe.dx, start, u.shape, dtype)
    y_axis = _axis(recipe.dy, start, u.shape, dtype)
    if x_axis is None or y_axis is None:
        return None
    y = recipe.y_axis
    y0, ny = int(start[y]), u.shape[y]
    cos = metric = None
    if recipe.cos is not None:
        cos = recipe.cos[y0 : y0 + ny].astype(dtype)
        metric = recipe.metric[y0 : y0 + ny].astype(dtype)
    outs = tuple(np.empty(u.shape, dtype) for _ in recipe.outputs)
    by_name = dict(zip(recipe.outputs, outs))
    x_last = recipe.x_axis == u.ndim - 1
    views = [None if by_name.get(n) is None else _view(by_name[n], x_last)
             for n in ("divergence", "vorticity")]  # fmt: skip
    x = recipe.x_axis
    x_faces = [_beside(face, x, x_last, k) for f in faces for k, face in enumerate(f[x])]
    compiled.vector_interior(
        _view(u, x_last), _view(v, x_last), views, x_axis, y_axis, cos, metric, x_faces
    )
    # A grid's non-periodic end along x: its columns take the one-sided rule from strips.
    _edges(recipe, start, blocks, faces, outs, numpy_block, any(f is None for f in x_faces))
    return outs


def _beside(face: Any, axis: int, x_last: bool, upper: int) -> np.ndarray | None:
    """The face's point next to the block, as ``(lead, ny)``; None at a grid's end."""
    if face is None:
        return None
    n = face.shape[axis]
    point = _take(face, axis, 0, 1) if upper else _take(face, axis, n - 1, n)
    return np.ascontiguousarray(_view(point, x_last)[:, :, 0])


def _take(a: Any, axis: int, lo: int, hi: int) -> Any:
    key = [slice(None)] * a.ndim
    key[axis] = slice(lo, hi)
    return a[tuple(key)]


def _edges(
    recipe: Any,
    start: Sequence[int],
    blocks: Sequence[Any],
    faces: Sequence[Faces],
    outs: tuple[Any, ...],
    numpy_block: NumpyBlock,
    x_edges: bool,
) -> None:
    """The first and last point along the y axis (and the x axis where ``x_edges``: the
    compiled pass computed those columns where the block has both its x faces), from
    three-point strips.

    A strip's inner face is the block's next point; its outer face is the block's own (or
    ``None`` at a grid's end, where the one-sided rule needs the strip's three points).
    """
    for axis in (recipe.y_axis, recipe.x_axis)[: 2 if x_edges else 1]:
        n = blocks[0].shape[axis]
        for lo in (0, n - 3):
            strips, strip_faces = [], []
            for b, f in zip(blocks, faces):
                strips.append(_take(b, axis, lo, lo + 3))
                cut: dict[int, tuple[Any, Any]] = {}
                for a, (lower, upper) in f.items():
                    if a == axis:
                        d = recipe.depth
                        inner_lower = lower if lo == 0 else _take(b, axis, lo - d, lo)
                        inner_upper = _take(b, axis, lo + 3, lo + 3 + d) if lo == 0 else upper
                        cut[a] = (inner_lower, inner_upper)
                    else:
                        cut[a] = tuple(
                            None if face is None else _take(face, axis, lo, lo + 3)
                            for face in (lower, upper)
                        )  # type: ignore[assignment]
                strip_faces.append(cut)
            at = list(start)
            at[axis] = int(start[axis]) + lo
            keep = 0 if lo == 0 else 2
            for out, got in zip(outs, numpy_block(recipe, at, strips, strip_faces)):
                _take(out, axis, lo + keep, lo + keep + 1)[...] = _take(got, axis, keep, keep + 1)
