"""The gradients of one block, exactly as :func:`daskgrad.accessor.build_gradients` computes them.

``build_gradients`` builds one lazy graph for the whole array. A batch run and
``ds.grad.to_zarr`` instead build each tile's tasks directly from the plan (never the whole
array's graph, :mod:`daskgrad.batch.tile_tasks`): every block is computed by one call of
:func:`block_fields`, from the block, the faces of its neighbours along each differentiated
axis and a :class:`BlockRecipe` made once per variable by :func:`block_recipe`. The numbers are
the engine's own: the same kernels (:func:`daskgrad.core.kernels.gradient_block`,
:func:`daskgrad.core.nan_runs.one_sided_block`) on the same operands, and the spherical metric's
same division (:func:`daskgrad.geometry.divide_along`), so a block written either way holds the
same bits.

What a block needs from outside itself is only local: the neighbours' faces (thickness 1, or
``edge_order`` for ``nan_policy="one-sided"``), the whole-axis spacing records (numpy's
uniform decision is taken once over the whole axis) and the latitude of its own points. Paths
whose numbers depend on more than that are left to the whole-array graph, and
:func:`block_recipe` says why: curvilinear grids, N-D or dask coordinates, and
``nan_policy="one-sided"`` on a periodic dim or where a run's uniformity is a whole-run question
(:func:`daskgrad.core.nan_runs.needs_run_bounds`).

Examples
--------
>>> import numpy as np, xarray as xr
>>> from daskgrad.core.options import GradientOptions
>>> from daskgrad.plan import plan_gradients
>>> a = xr.DataArray(np.arange(6.0) ** 2, dims="x", name="f")
>>> plan = plan_gradients(a, GradientOptions())
>>> recipe = block_recipe(a, plan, plan.variables[0], chunk_shape=(3,))
>>> lower = np.array([4.0])                     # the last point of the previous block
>>> block_fields(recipe, np.array([9.0, 16.0, 25.0]), (3,), {0: (lower, None)})
[array([6., 8., 9.])]
>>> a.differentiate("x").values[3:]
array([6., 8., 9.])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from daskgrad.core._compat import array_module
from daskgrad.core.kernels import gradient_block, working_dtypes
from daskgrad.core.mask import masked_dtype
from daskgrad.core.nan_runs import needs_run_bounds, one_sided_block, spacing_edge_order
from daskgrad.core.spacing import AxisSpacing
from daskgrad.geometry import SphericalAxes, divide_along, lon_metric

__all__ = ["BlockRecipe", "block_fields", "block_recipe"]

#: One halo face: the slabs a neighbour gives (``None`` at a non-periodic end of the array).
Faces = tuple[Any, Any]


@dataclass(frozen=True)
class BlockRecipe:
    """What every block of one variable is computed with (small: safe to put in a task).

    Attributes
    ----------
    names
        The output names, one per field.
    axes
        The axis each field differentiates along.
    spacings
        Each field's whole-axis spacing record (uniform ones without their coordinate arrays).
    roles
        Each field's metric: ``None``, ``"lat"`` (divide by the radius) or ``"lon"`` (divide by
        ``R cos(lat)`` along ``lat_axis``).
    one_sided
        ``nan_policy="one-sided"`` on floating or complex values.
    dtype
        The values' dtype (it decides the working and output dtypes by numpy's rules).
    radius
        The sphere's radius (spherical geometry).
    lat_axis, lon_denom
        Where latitude runs in the values, and ``R cos(lat)`` over the whole axis.
    """

    names: tuple[Hashable, ...]
    axes: tuple[int, ...]
    spacings: tuple[AxisSpacing, ...]
    roles: tuple[str | None, ...]
    one_sided: bool
    dtype: np.dtype
    radius: float = 0.0
    lat_axis: int | None = None
    lon_denom: np.ndarray | None = None

    def __repr__(self) -> str:
        return (
            f"BlockRecipe(names={self.names}, axes={self.axes}, roles={self.roles}, "
            f"one_sided={self.one_sided}, dtype={self.dtype})"
        )

    @property
    def depth(self) -> int:
        """Points each face holds: 1, or the edge order for one-sided differences."""
        if not self.one_sided:
            return 1
        return max((spacing_edge_order(s) for s in self.spacings), default=1)

    @property
    def out_dtype(self) -> np.dtype:
        return working_dtypes(self.dtype)[1]

    @property
    def periodic(self) -> tuple[int, ...]:
        """The differentiated axes that wrap around."""
        return tuple(s.axis for s in self.spacings if s.periodic)


def _lean(spacing: AxisSpacing) -> AxisSpacing:
    """A uniform axis's record without its coordinate arrays (the kernels use only the step)."""
    if spacing.uniform:
        return dataclasses.replace(spacing, diffs=None, coord=None)
    return spacing


def _chunks_fit(spacing: AxisSpacing, chunk: int, depth: int) -> str | None:
    """Why blocks of ``chunk`` points along this axis cannot be computed alone, else None."""
    n = spacing.size
    last = n - (-(-n // chunk) - 1) * chunk
    if chunk >= n:  # one block along the axis
        return None
    least = depth
    if spacing.three_point_edges:  # numpy's three-point edge needs two points in the end block
        least = max(least, 2)
    if chunk < least or last < least:
        return (
            f"blocks of {chunk} point(s) along {spacing.label or f'axis {spacing.axis}'} "
            f"(the last of {last}) are shorter than the {least} its differences need"
        )
    return None


def block_recipe(obj: Any, plan: Any, vp: Any, chunk_shape: Sequence[int]) -> BlockRecipe | str:
    """The recipe of one variable of ``plan``, or a sentence saying why a block of it cannot
    be computed from its neighbours' faces alone (then the whole-array graph is used).

    Parameters
    ----------
    obj
        The Dataset or DataArray the plan was made for.
    plan, vp
        The :class:`~daskgrad.plan.GradientPlan` and one of its variable plans. With a mask
        (``vp.mask``), the blocks given to :func:`block_fields` are the masked values
        (:func:`daskgrad.core.mask.apply_mask`).
    chunk_shape
        The blocks' shape (a regular grid: every block but the last along a dim is this long).
    """
    from daskgrad.plan import _variable

    if vp.curvilinear is not None:
        return "a curvilinear grid's fields come from the whole-array graph"
    if not all(type(s) is AxisSpacing for s in vp.axis_spacings):
        return "an N-D or dask coordinate's fields come from the whole-array graph"
    x = _variable(obj, vp.key)
    # A mask makes land NaN before the differences (daskgrad.core.mask): its dtype then.
    dtype = masked_dtype(x.dtype) if vp.mask is not None else np.dtype(x.dtype)
    one_sided = vp.nan_policy == "one-sided" and dtype.kind in "fc"
    spacings = tuple(vp.axis_spacings)
    for s in spacings:
        if one_sided and s.periodic:
            return f"nan_policy='one-sided' on periodic {s.label} needs the whole-array graph"
        if one_sided and needs_run_bounds(s):
            return (
                f"nan_policy='one-sided' on {s.label}, whose runs may be uniform on a "
                "non-uniform coordinate, needs the whole-array graph (a scan along the dim)"
            )
        depth = spacing_edge_order(s) if one_sided else 1
        problem = _chunks_fit(s, int(chunk_shape[s.axis]), depth)
        if problem:
            return problem
    plain = [f for f in vp.fields if f.role in (None, "lat", "lon")]
    roles = tuple(f.role for f in plain)
    lat_axis, denom = None, None
    if "lon" in roles:
        axes = vp.axes
        assert isinstance(axes, SphericalAxes) and axes.lat is not None  # checked by the plan
        denom = lon_metric(np.asarray(x.coords[axes.lat].values), plan.radius)
        lat_axis = x.get_axis_num(axes.lat_dim)
    return BlockRecipe(
        names=tuple(f.name for f in plain),
        axes=tuple(s.axis for s in spacings),
        spacings=tuple(_lean(s) for s in spacings),
        roles=roles,
        one_sided=one_sided,
        dtype=dtype,
        radius=float(plan.radius),
        lat_axis=lat_axis,
        lon_denom=denom,
    )


def _extended(block: Any, axis: int, faces: Faces, depth: int) -> Any:
    """The block widened by ``depth`` points each side along ``axis``: the neighbours' faces,
    NaN beyond a non-periodic end (as the whole-array graph's overlap pads it)."""
    xp = array_module(block)
    parts = []
    for face in faces[:1]:
        parts.append(face if face is not None else _nan_slab(xp, block, axis, depth))
    parts.append(block)
    for face in faces[1:]:
        parts.append(face if face is not None else _nan_slab(xp, block, axis, depth))
    return xp.concatenate(parts, axis=axis)


def _nan_slab(xp: Any, block: Any, axis: int, depth: int) -> Any:
    shape = list(block.shape)
    shape[axis] = depth
    return xp.full(tuple(shape), np.nan, dtype=block.dtype)


def block_fields(
    recipe: BlockRecipe,
    block: Any,
    start: Sequence[int],
    faces: Mapping[int, Faces],
) -> list[Any]:
    """The fields of one block, in ``recipe.names`` order.

    Parameters
    ----------
    recipe
        From :func:`block_recipe`.
    block
        The block's values (numpy or CuPy).
    start
        The global index of the block's first point along every axis.
    faces
        Per differentiated axis, ``(lower, upper)``: the last ``recipe.depth`` points of the
        previous block and the first ``recipe.depth`` of the next one along that axis (the
        wrapped neighbour on a periodic axis), ``None`` at a non-periodic end.

    Returns
    -------
    list
        One array per field, shaped like ``block``, of ``recipe.out_dtype``.
    """
    out = []
    for axis, spacing, role in zip(recipe.axes, recipe.spacings, recipe.roles):
        a0 = int(start[axis])
        n = block.shape[axis]
        if recipe.one_sided:
            depth = spacing_edge_order(spacing)
            ext = _extended(block, axis, _trimmed(faces[axis], axis, depth), depth)
            field = one_sided_block(ext, axis, spacing, a0, depth, None, recipe.dtype)
        else:
            lower, upper = _trimmed(faces[axis], axis, 1)
            (field,) = gradient_block(
                block, [(lower, upper)], [axis], [spacing.block(a0, a0 + n)], recipe.dtype
            )
        out.append(_metric(recipe, field, role, start, block.shape))
    return out


def _trimmed(faces: Faces, axis: int, depth: int) -> Faces:
    """Faces cut to ``depth`` points next to the block (a deeper face serves every field)."""
    lower, upper = faces

    def cut(face: Any, last: bool) -> Any:
        if face is None or face.shape[axis] == depth:
            return face
        key = [slice(None)] * face.ndim
        key[axis] = slice(face.shape[axis] - depth, None) if last else slice(0, depth)
        return face[tuple(key)]

    return cut(lower, True), cut(upper, False)


def _metric(
    recipe: BlockRecipe, field: Any, role: str | None, start: Sequence[int], shape: Sequence[int]
) -> Any:
    if role == "lat":
        return field / recipe.radius
    if role == "lon":
        assert recipe.lat_axis is not None and recipe.lon_denom is not None
        a0 = int(start[recipe.lat_axis])
        denom = recipe.lon_denom[a0 : a0 + shape[recipe.lat_axis]]
        return divide_along(field, denom, recipe.lat_axis)
    return field


def recipes_for(
    obj: Any, plan: Any, chunk_shapes: Mapping[Hashable, Sequence[int]]
) -> dict[Hashable, BlockRecipe | str]:
    """:func:`block_recipe` for every variable of ``plan``, by the name of its first output.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from daskgrad.core.options import GradientOptions
    >>> from daskgrad.plan import plan_gradients
    >>> ds = xr.Dataset({"T": (("y", "x"), np.zeros((4, 4)))})
    >>> plan = plan_gradients(ds, GradientOptions())
    >>> r = recipes_for(ds, plan, {"dT_dy": (2, 2)})["dT_dy"]
    >>> r.names, r.axes
    (('dT_dy', 'dT_dx'), (0, 1))
    """
    out: dict[Hashable, BlockRecipe | str] = {}
    for vp in plan.variables:
        first = vp.fields[0].name
        out[first] = block_recipe(obj, plan, vp, chunk_shapes[first])
    return out
