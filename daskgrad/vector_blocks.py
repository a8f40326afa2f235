"""Divergence, vorticity and advection of one block, from the blocks and their neighbours' faces.

The operators of :mod:`daskgrad.operators` are sums of first derivatives, each one
``numpy.gradient``'s numbers (:func:`daskgrad.blocks.block_fields`: the engine's kernels,
propagate or one-sided), combined with the metric of the geometry:

==============  =======================================  ==========================================
operator        no geometry                              sphere (radius ``a``, ``c = cos(lat)``)
==============  =======================================  ==========================================
divergence      ``Dx(u) + Dy(v)``                        ``(Dlon(u) + Dlat(v*c)) / (a*c)``
vorticity       ``Dx(v) - Dy(u)``                        ``(Dlon(v) - Dlat(u*c)) / (a*c)``
advection of f  ``-(u*Dx(f) + v*Dy(f))``                 ``-(u*(Dlon(f)/(a*c)) + v*(Dlat(f)/a))``
==============  =======================================  ==========================================

``D`` is ``numpy.gradient`` along one dim with that dim's coordinate (radians on the sphere),
and ``c`` and ``a*c`` are cast to the values' dtype first (float32 stays float32). Every
operation is the same, on the same operands in the same order, as the whole-array graph of
:mod:`daskgrad.operators` computes, so a block computed here holds the same bits
(``tests/test_vector.py``).

:class:`VectorRecipe` is made once per operator group; :func:`vector_block` is the kernel that
:func:`daskgrad.core.stencil.stencil_dask` (the lazy graph) and the batch runner's tile tasks
(:mod:`daskgrad.batch.derived_tasks`) call for every block.

Examples
--------
>>> import numpy as np
>>> from daskgrad.core.spacing import axis_spacing
>>> sx = axis_spacing(None, axis=1, size=4, edge_order=1)
>>> sy = axis_spacing(None, axis=0, size=3, edge_order=1)
>>> r = vector_recipe(("divergence",), 1, 0, sx, sy, np.dtype("f8"))
>>> u, v = np.arange(12.0).reshape(3, 4), np.zeros((3, 4))
>>> none = {1: (None, None), 0: (None, None)}
>>> vector_block(r, (0, 0), (u, v), (none, none))[0][0]
array([1., 1., 1., 1.])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from daskgrad.blocks import BlockRecipe, block_fields
from daskgrad.core._compat import array_module
from daskgrad.core.kernels import working_dtypes
from daskgrad.core.spacing import AxisSpacing

__all__ = [
    "VECTOR_OUTPUTS",
    "VectorRecipe",
    "array_block",
    "chunk_problem",
    "vector_block",
    "vector_recipe",
]

#: The operators a :class:`VectorRecipe` computes per block, in the order they are returned.
VECTOR_OUTPUTS = ("divergence", "vorticity", "advection")

Faces = Mapping[int, tuple[Any, Any]]


@dataclass(frozen=True)
class VectorRecipe:
    """What every block of one operator group is computed with (small: one graph node).

    Attributes
    ----------
    outputs
        The operators, in :data:`VECTOR_OUTPUTS` order: ``divergence`` and/or ``vorticity`` of
        ``(u, v)``, or ``advection`` of one scalar ``f`` by ``(u, v)``.
    x_axis, y_axis
        The axes of the values along which ``u`` and ``v`` point.
    dx, dy
        The derivative along each (one :class:`~daskgrad.blocks.BlockRecipe` each).
    dtype
        The values' dtype (float; integer values are made float64 first).
    cos, metric
        On a sphere, ``cos(lat)`` and ``a*cos(lat)`` along ``y_axis`` over the whole axis
        (float64; cast to the values' dtype when used); ``None`` without geometry.
    radius
        The sphere's radius (advection's ``Dlat(f) / a``); 0 without geometry.
    """

    outputs: tuple[str, ...]
    x_axis: int
    y_axis: int
    dx: BlockRecipe
    dy: BlockRecipe
    dtype: np.dtype
    cos: np.ndarray | None = None
    metric: np.ndarray | None = None
    radius: float = 0.0

    def __repr__(self) -> str:
        return (
            f"VectorRecipe(outputs={self.outputs}, x_axis={self.x_axis}, y_axis={self.y_axis}, "
            f"one_sided={self.dx.one_sided}, dtype={self.dtype}, sphere={self.cos is not None})"
        )

    @property
    def depth(self) -> int:
        """Points each face holds: 1, or the edge order for one-sided differences."""
        return max(self.dx.depth, self.dy.depth)

    @property
    def inputs(self) -> tuple[str, ...]:
        """The blocks :func:`vector_block` takes, in order."""
        return ("f", "u", "v") if self.outputs == ("advection",) else ("u", "v")

    @property
    def face_axes(self) -> tuple[tuple[int, ...], ...]:
        """Per input, the axes along which its neighbours' faces are needed."""
        both = (self.x_axis, self.y_axis)
        return (both, (), ()) if self.outputs == ("advection",) else (both, both)

    @property
    def out_dtype(self) -> np.dtype:
        return working_dtypes(self.dtype)[1]

    @property
    def periodic(self) -> tuple[int, ...]:
        """The axes that wrap around."""
        return tuple(s.axis for s in (*self.dx.spacings, *self.dy.spacings) if s.periodic)


def _lean(spacing: AxisSpacing) -> AxisSpacing:
    """A uniform axis's record without its coordinate arrays (the kernels use only the step)."""
    if spacing.uniform:
        return dataclasses.replace(spacing, diffs=None, coord=None)
    return spacing


def vector_recipe(
    outputs: Sequence[str],
    x_axis: int,
    y_axis: int,
    x_spacing: AxisSpacing,
    y_spacing: AxisSpacing,
    dtype: Any,
    *,
    one_sided: bool = False,
    lat_degrees: Any = None,
    radius: float = 0.0,
) -> VectorRecipe:
    """The :class:`VectorRecipe` of ``outputs`` (on a sphere when ``lat_degrees`` is given:
    the latitude along ``y_axis``, in degrees, and ``radius``)."""
    order = tuple(o for o in VECTOR_OUTPUTS if o in outputs)
    if not order or ("advection" in order and len(order) > 1):
        raise ValueError(f"a recipe computes divergence/vorticity or advection; got {outputs!r}")
    dtype = np.dtype(dtype)

    def one(axis: int, spacing: AxisSpacing) -> BlockRecipe:
        return BlockRecipe(("d",), (axis,), (_lean(spacing),), (None,), one_sided, dtype)

    cos = metric = None
    if lat_degrees is not None:
        lat = np.asarray(lat_degrees, dtype=np.float64)
        cos = np.cos(np.deg2rad(lat))
        metric = radius * cos  # daskgrad.geometry.lon_metric's numbers
    return VectorRecipe(
        order, x_axis, y_axis, one(x_axis, x_spacing), one(y_axis, y_spacing), dtype, cos,
        metric, float(radius),
    )  # fmt: skip


def chunk_problem(recipe: VectorRecipe, chunk_shape: Sequence[int]) -> str | None:
    """Why blocks of ``chunk_shape`` (a regular grid) cannot take their faces from their
    neighbours alone, else ``None``.

    Examples
    --------
    >>> from daskgrad.core.spacing import axis_spacing
    >>> s = axis_spacing(None, axis=0, size=6, edge_order=2)
    >>> r = vector_recipe(("vorticity",), 0, 0, s, s, np.dtype("f8"))
    >>> chunk_problem(r, (2,)), chunk_problem(r, (5,))
    (None, 'blocks of 5 point(s) along dim 0 (the last of 1) are shorter than the 2 its differences need')
    """
    for part in (recipe.dx, recipe.dy):
        spacing = part.spacings[0]
        n, chunk = spacing.size, int(chunk_shape[spacing.axis])
        if chunk >= n:
            continue
        last = n - (-(-n // chunk) - 1) * chunk
        least = max(recipe.depth, 2 if spacing.three_point_edges else 1)
        if chunk < least or last < least:
            where = spacing.label or f"axis {spacing.axis}"
            return (
                f"blocks of {chunk} point(s) along {where} (the last of {last}) are shorter "
                f"than the {least} its differences need"
            )
    return None


def _along(xp: Any, values: np.ndarray, dtype: np.dtype, ndim: int, axis: int) -> Any:
    """A 1-D host array as the values' real dtype, shaped to broadcast along ``axis``."""
    real = np.zeros((), dtype).real.dtype
    shape = [1] * ndim
    shape[axis] = -1
    return xp.asarray(values.astype(real, copy=False)).reshape(shape)


def _times_cos(
    recipe: VectorRecipe, block: Any, faces: tuple[Any, Any], a0: int
) -> tuple[Any, tuple[Any, Any]]:
    """``block * cos(lat)`` and its faces along the latitude times their own ``cos(lat)``."""
    assert recipe.cos is not None
    xp = array_module(block)
    axis, ndim = recipe.y_axis, block.ndim
    n = block.shape[axis]
    cos = recipe.cos
    out = block * _along(xp, cos[a0 : a0 + n], recipe.dtype, ndim, axis)
    lower, upper = faces
    if lower is not None:
        k = lower.shape[axis]
        lower = lower * _along(xp, cos[a0 - k : a0], recipe.dtype, ndim, axis)
    if upper is not None:
        k = upper.shape[axis]
        upper = upper * _along(xp, cos[a0 + n : a0 + n + k], recipe.dtype, ndim, axis)
    return out, (lower, upper)


def _derivative(part: BlockRecipe, block: Any, start: Sequence[int], faces: Any) -> Any:
    (field,) = block_fields(part, block, start, {part.axes[0]: faces})
    return field


def _per_metric(recipe: VectorRecipe, values: Any, a0: int, out: Any = None) -> Any:
    """``values / (a*cos(lat))`` into ``out`` (default: in place; the same bits as the division
    into a new array)."""
    assert recipe.metric is not None
    xp = array_module(values)
    n = values.shape[recipe.y_axis]
    denom = _along(xp, recipe.metric[a0 : a0 + n], recipe.dtype, values.ndim, recipe.y_axis)
    return xp.divide(values, denom, out=values if out is None else out)


#: Elements per slab of the kernel's loop along a dim it does not differentiate: the
#: derivatives of a slab stay in cache until they are combined into the outputs.
SLAB_ELEMENTS = 1 << 19


def _slab_axis(recipe: VectorRecipe, block: Any) -> int | None:
    for a in range(block.ndim):
        if a not in (recipe.x_axis, recipe.y_axis) and block.shape[a] > 1:
            return a
    return None


def vector_block(
    recipe: VectorRecipe,
    start: Sequence[int],
    blocks: Sequence[Any],
    faces: Sequence[Faces],
) -> tuple[Any, ...]:
    """The operators of one block, in ``recipe.outputs`` order.

    The block is computed in slabs along a dim that is not differentiated (its numbers do
    not depend on the cut), each slab's intermediate derivatives combined into the outputs
    while they are in cache.

    Parameters
    ----------
    recipe
        From :func:`vector_recipe`.
    start
        The global index of the block's first point along every axis.
    blocks
        The blocks of ``recipe.inputs`` (numpy or CuPy), one shape.
    faces
        Per input, ``{axis: (lower, upper)}`` along its :attr:`VectorRecipe.face_axes`: the
        last ``recipe.depth`` points of the previous block and the first of the next one (the
        wrapped neighbour on a periodic axis), ``None`` at a non-periodic end.
    """
    from daskgrad.vector_compiled import compiled_block  # it calls back into this module

    fast = compiled_block(recipe, start, blocks, faces, array_block)
    return fast if fast is not None else array_block(recipe, start, blocks, faces)


def array_block(
    recipe: VectorRecipe,
    start: Sequence[int],
    blocks: Sequence[Any],
    faces: Sequence[Faces],
) -> tuple[Any, ...]:
    """:func:`vector_block` with the array module (numpy, CuPy), slab by slab."""
    first = blocks[0]
    xp = array_module(first)
    outs = tuple(xp.empty(first.shape, dtype=recipe.out_dtype) for _ in recipe.outputs)
    axis = _slab_axis(recipe, first)
    n = 1 if axis is None else first.shape[axis]
    step = n if axis is None else max(1, SLAB_ELEMENTS // max(1, first.size // n))
    for s0 in range(0, n, step):
        if axis is None:
            _slab(recipe, start, blocks, faces, outs)
            break
        key = [slice(None)] * first.ndim
        key[axis] = slice(s0, min(n, s0 + step))
        sl = tuple(key)

        def cut(face: Any, sl: tuple = sl) -> Any:
            return None if face is None else face[sl]

        _slab(
            recipe,
            start,
            [b[sl] for b in blocks],
            [{a: (cut(lo), cut(hi)) for a, (lo, hi) in f.items()} for f in faces],
            tuple(o[sl] for o in outs),
        )
    return outs


def _slab(
    recipe: VectorRecipe,
    start: Sequence[int],
    blocks: Sequence[Any],
    faces: Sequence[Faces],
    outs: tuple[Any, ...],
) -> None:
    """The operators of one slab of a block, written into ``outs``."""
    x, y = recipe.x_axis, recipe.y_axis
    y0 = int(start[y])
    sphere = recipe.cos is not None
    if recipe.outputs == ("advection",):
        f, u, v = blocks
        gx = _derivative(recipe.dx, f, start, faces[0][x])
        gy = _derivative(recipe.dy, f, start, faces[0][y])
        if sphere:  # the gradient's own fields: d/dx = Dlon / (a cos), d/dy = Dlat / a
            gx = _per_metric(recipe, gx, y0)
            gy = gy / recipe.radius
        xp = array_module(gx)
        xp.multiply(u, gx, out=gx)
        xp.multiply(v, gy, out=gy)
        xp.add(gx, gy, out=gx)
        xp.negative(gx, out=outs[0])
        return
    u, v = blocks
    fu, fv = faces
    for name, target in zip(recipe.outputs, outs):
        # divergence: Dx(u) + Dy(v c); vorticity: Dx(v) - Dy(u c); c = 1 without geometry
        along_x, along_y, fx, fy = (u, v, fu, fv) if name == "divergence" else (v, u, fv, fu)
        first = _derivative(recipe.dx, along_x, start, fx[x])
        weighted, wfaces = _times_cos(recipe, along_y, fy[y], y0) if sphere else (along_y, fy[y])
        second = _derivative(recipe.dy, weighted, start, wfaces)
        xp = array_module(first)
        combine = xp.add if name == "divergence" else xp.subtract
        if sphere:
            combine(first, second, out=first)
            _per_metric(recipe, first, y0, out=target)
        else:
            combine(first, second, out=target)
