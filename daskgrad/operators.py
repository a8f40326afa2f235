"""Divergence, vorticity, Laplacian and advection: lazy, with the metric terms of the geometry.

Every operator is a sum of first derivatives, each one the engine's
(``numpy.gradient``'s numbers, with the dim's coordinate, periodic seams and
``nan_policy="one-sided"`` coasts as for the gradient), in **flux form**:

* no geometry: ``div = Dx(u) + Dy(v)``, ``vort = Dx(v) - Dy(u)``,
  ``lap(f) = sum over dims of Dd(Dd(f))``, ``adv(f) = -(u*Dx(f) + v*Dy(f))``;
* on a sphere of radius ``a`` (``c = cos(lat)``, derivatives per radian):
  ``div = (Dlon(u) + Dlat(v*c)) / (a*c)``, ``vort = (Dlon(v) - Dlat(u*c)) / (a*c)``;
  ``lap(f)`` is the divergence of the gradient ``(Dlon(f)/(a*c), Dlat(f)/a)`` (so
  ``1/(a^2 c) d/dlat(c df/dlat) + 1/(a^2 c^2) d2f/dlon2``), and ``adv(f) = -(u*gx + v*gy)``
  with that gradient;
* on a curvilinear grid: the eastward and northward derivatives ``E``, ``N`` of
  :func:`daskgrad.core.curvilinear.geographic_components` (the grid's Jacobian) replace
  ``Dlon/(a*c)`` and ``Dlat/a``: ``div = E(u) + N(v*c)/c``, ``vort = E(v) - N(u*c)/c``, with
  ``u, v`` eastward and northward (grid-relative components are first turned east and north
  along the grid lines' directions, found with the same Jacobian).

The derivative of the product ``v*c`` is taken, not expanded into ``c*Dlat(v) - v*sin(lat)``:
the flux form's central differences telescope (a discrete Gauss theorem: the ``c``-weighted
sum of the divergence over a latitude band is its boundary fluxes), it has no ``tan(lat)`` term,
and its exactness on the sphere's solid-body rotation (zero divergence) holds point by point
when the steps in latitude and longitude are equal (``tests/test_vector.py``).

Two routes give the same bits (tested): on a sphere or without geometry, divergence, vorticity
and advection run as one fused task per block (:mod:`daskgrad.vector_blocks` on
:func:`daskgrad.core.stencil.stencil_dask`: every input block read once, the derivatives kept
inside the task); curvilinear grids, the Laplacian (a derivative of derivatives) and
one-sided differences that need more than the neighbours' faces are composed from the
engine's lazy arrays. Either way nothing is computed until asked, and numpy-backed inputs give
numpy-backed results.

Examples
--------
>>> import numpy as np, xarray as xr
>>> x = np.arange(4.0)
>>> ds = xr.Dataset({"u": (("y", "x"), np.tile(x, (3, 1))), "v": (("y", "x"), np.zeros((3, 4)))},
...                 coords={"x": x, "y": [0.0, 1.0, 2.0]})
>>> fields = derived_fields(ds, ["divergence"], u="u", v="v")
>>> fields["divergence"].values[0]
array([1., 1., 1., 1.])
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from daskgrad.core.curvilinear import geographic_components
from daskgrad.core.gradient import differentiate_axes
from daskgrad.core.mask import mask_array
from daskgrad.core.nan_runs import needs_run_bounds
from daskgrad.core.options import GradientOptions, OptionError
from daskgrad.core.spacing import AxisSpacing
from daskgrad.core.stencil import fit_chunks, stencil_dask
from daskgrad.geometry import SphericalAxes
from daskgrad.grids import attach_grid
from daskgrad.vector_blocks import VectorRecipe, vector_block, vector_recipe
from daskgrad.vector_plan import DerivedPlan, plan_derived

__all__ = [
    "OPERATOR_OPTIONS",
    "build_derived",
    "derived_fields",
    "fused_recipe",
    "operator_field",
    "operator_inputs",
]

#: The options of ``compute`` that the operators take (``components`` is the vector's basis).
OPERATOR_OPTIONS = (
    "edge_order", "periodic", "geometry", "radius", "nan_policy", "components", "mask", "grid",
)  # fmt: skip


# -- the inputs -------------------------------------------------------------------------------


def operator_inputs(obj: Any, dplan: DerivedPlan) -> dict[Hashable | None, Any]:
    """Each input variable as the operators compute with it: dask (numpy inputs as one
    chunk), land made NaN where it has a mask, in the plan's dtype."""
    out: dict[Hashable | None, Any] = {}
    for key, vp in dplan.variables.items():
        x = obj if key is None else obj[key]
        data = x.data
        if not isinstance(data, da.Array):
            data = da.from_array(np.asarray(data), chunks=-1)
        if vp.mask is not None:  # land becomes NaN, block by block (daskgrad.core.mask)
            data = mask_array(data, vp.mask.broadcastable())
        if data.dtype != dplan.dtype:
            data = data.astype(dplan.dtype)
        out[key] = data
    return out


def _nan_policy(dplan: DerivedPlan, keys: Sequence[Hashable | None]) -> str:
    return (
        "one-sided"
        if any(dplan.variables[k].nan_policy == "one-sided" for k in keys)
        else "propagate"
    )


def _lat_degrees(obj: Any, dplan: DerivedPlan, key: Hashable | None) -> np.ndarray | None:
    if dplan.kind != "spherical":
        return None
    axes = dplan.axes
    assert isinstance(axes, SphericalAxes)
    x = obj if key is None else obj[key]
    return np.asarray(x.coords[axes.lat].values)


# -- the fused route --------------------------------------------------------------------------


def fused_recipe(
    obj: Any, dplan: DerivedPlan, outputs: Sequence[str], keys: Sequence[Hashable | None]
) -> VectorRecipe | str:
    """The recipe of one fused operator group (``keys``: its inputs, ``f`` first for an
    advection, then ``u`` and ``v``), or why it is composed from the engine's arrays instead."""
    if dplan.kind == "curvilinear":
        return "a curvilinear grid's operators are composed from the geographic derivatives"
    ref = keys[0]
    sx, sy = dplan.spacing(ref, dplan.x_dim), dplan.spacing(ref, dplan.y_dim)
    if not all(type(s) is AxisSpacing for s in (sx, sy)):
        return "an N-D or dask coordinate's operators are composed from the engine's arrays"
    one_sided = _nan_policy(dplan, keys) == "one-sided"
    for s in (sx, sy):
        if one_sided and (s.periodic or needs_run_bounds(s)):
            return (
                f"nan_policy='one-sided' on {s.label} (periodic, or runs that may be uniform "
                "on a non-uniform coordinate) is composed from the engine's arrays"
            )
    x = obj if ref is None else obj[ref]
    return vector_recipe(
        outputs,
        x.get_axis_num(dplan.x_dim),
        x.get_axis_num(dplan.y_dim),
        sx,
        sy,
        dplan.dtype,
        one_sided=one_sided,
        lat_degrees=_lat_degrees(obj, dplan, ref),
        radius=dplan.radius,
    )


def _kernel(recipe: VectorRecipe, start: Any, blocks: Any, faces: Any) -> tuple[Any, ...]:
    return vector_block(recipe, start, blocks, faces)


def _fused(recipe: VectorRecipe, arrays: Sequence[da.Array]) -> tuple[da.Array, ...]:
    """The recipe's outputs as one task per block, in the inputs' chunks."""
    chunks = list(arrays[0].chunks)
    for axis, part in ((recipe.x_axis, recipe.dx), (recipe.y_axis, recipe.dy)):
        spacing = part.spacings[0]
        least = max(recipe.depth, 2 if spacing.three_point_edges else 1)
        chunks[axis] = fit_chunks(chunks[axis], least)
    work = [a.rechunk(tuple(chunks)) if tuple(chunks) != a.chunks else a for a in arrays]
    outs = stencil_dask(
        _kernel,
        recipe,
        work,
        recipe.face_axes,
        recipe.depth,
        [recipe.out_dtype] * len(recipe.outputs),
        periodic=recipe.periodic,
        name="-".join(recipe.outputs),
    )
    if work[0].chunks != arrays[0].chunks:
        outs = tuple(o.rechunk(arrays[0].chunks) for o in outs)
    return outs


# -- the composed route -----------------------------------------------------------------------


def _along(values: np.ndarray, dtype: np.dtype, ndim: int, axis: int) -> np.ndarray:
    real = np.zeros((), dtype).real.dtype
    shape = [1] * ndim
    shape[axis] = -1
    return values.astype(real, copy=False).reshape(shape)


class _Composed:
    """The operators of one plan from the engine's lazy arrays (any geometry)."""

    def __init__(self, obj: Any, dplan: DerivedPlan, arrays: Mapping[Hashable | None, Any]):
        self.obj, self.plan, self.arrays = obj, dplan, arrays
        ref = dplan.u if dplan.u is not None else next(iter(dplan.variables))
        self.ref = ref
        x = obj if ref is None else obj[ref]
        self.ndim = x.ndim
        self.dtype = dplan.dtype
        self.policy = _nan_policy(dplan, list(dplan.variables))
        if dplan.kind == "spherical":
            lat = _lat_degrees(obj, dplan, ref)
            axis = x.get_axis_num(dplan.y_dim)
            cos = np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64)))
            self.cos = _along(cos, self.dtype, self.ndim, axis)
            self.metric = _along(dplan.radius * cos, self.dtype, self.ndim, axis)
        elif dplan.kind == "curvilinear":
            part = dplan.variables[ref].curvilinear
            assert part is not None and part.lat_coord is not None and part.lon_coord is not None
            self.part = part
            self.lat, self.lon = part.lat_coord.data, part.lon_coord.data
            lat = self.lat
            cos = (da if isinstance(lat, da.Array) else np).cos(
                (da if isinstance(lat, da.Array) else np).deg2rad(lat.astype(np.float64))
            )
            self.cos = self._on_axes(cos.astype(np.zeros((), self.dtype).real.dtype))

    def _on_axes(self, grid: Any) -> Any:
        """A ``(ny, nx)`` grid array placed on the values' grid axes (length 1 elsewhere)."""
        ay, ax = self.part.axes
        if ay > ax:
            grid = grid.T
        shape = [1] * self.ndim
        shape[min(ay, ax)], shape[max(ay, ax)] = grid.shape
        return grid.reshape(shape)

    def _d(self, values: Any, key: Hashable | None, dim: Hashable) -> Any:
        (out,) = differentiate_axes(values, [self.plan.spacing(key, dim)], self.policy)
        return out

    def _geo(self, values: Any) -> tuple[Any, Any]:
        part = self.part
        return geographic_components(
            values,
            self.lat,
            self.lon,
            part.axes,
            self.plan.radius,
            part.edge_order,
            periodic=part.periodic,
            nan_policy=self.policy,
        )

    def gradient(self, key: Hashable | None) -> tuple[Any, Any]:
        """``(d/dx, d/dy)`` of a scalar per unit of distance (the gradient's own fields)."""
        f = self.arrays[key]
        p = self.plan
        if p.kind == "curvilinear":
            return self._geo(f)
        gx, gy = self._d(f, key, p.x_dim), self._d(f, key, p.y_dim)
        if p.kind == "spherical":
            return gx / self.metric, gy / p.radius
        return gx, gy

    def geographic_vector(self) -> tuple[Any, Any]:
        """``(u, v)`` eastward and northward (turned from grid-relative where they are)."""
        p = self.plan
        u, v = self.arrays[p.u], self.arrays[p.v]
        if p.kind != "curvilinear" or p.basis == "geographic":
            return u, v
        ex, nx_, ey, ny_ = self._grid_directions()
        return u * ex + v * ey, u * nx_ + v * ny_

    def _grid_directions(self) -> tuple[Any, ...]:
        """The unit vectors (east, north parts) of the grid's x and y directions: the
        normalised geographic gradients of the x and y indices (orthogonal grids)."""
        part = self.part
        ny, nx = self.lat.shape
        iy, ix = np.meshgrid(np.arange(ny, dtype=np.float64), np.arange(nx, dtype=np.float64),
                             indexing="ij")  # fmt: skip
        wraps = [k for k, a in enumerate(part.axes) if a in part.periodic]
        out = []
        for k, index in ((1, ix), (0, iy)):
            east, north = self._index_gradient(index, k, wraps)
            norm = (da if isinstance(east, da.Array) else np).hypot(east, north)
            real = np.zeros((), self.dtype).real.dtype
            out += [
                self._on_axes((east / norm).astype(real)),
                self._on_axes((north / norm).astype(real)),
            ]
        return tuple(out)

    def _index_gradient(self, index: np.ndarray, k: int, wraps: list[int]) -> tuple[Any, Any]:
        """The direction of the geographic gradient of a grid index (east, north parts).

        On a periodic grid axis the index jumps at the seam, so the direction comes from
        ``cos(t) grad(sin t) - sin(t) grad(cos t)`` with ``t = 2 pi index / n`` instead, which
        points the same way and has no seam."""
        part = self.part

        def geo(values: np.ndarray) -> tuple[Any, Any]:
            return geographic_components(
                values, self.lat, self.lon, (0, 1), self.plan.radius,
                part.edge_order, periodic=wraps,
            )  # fmt: skip

        if k not in wraps:
            return geo(index)
        t = 2.0 * np.pi * index / index.shape[k]
        (se, sn), (ce, cn) = geo(np.sin(t)), geo(np.cos(t))
        return np.cos(t) * se - np.sin(t) * ce, np.cos(t) * sn - np.sin(t) * cn

    def flux(self, along_x: Any, along_y: Any, key: Hashable | None, sign: str) -> Any:
        """``Dx(along_x) +/- Dy(along_y * c) / c`` in the plan's geometry."""
        p = self.plan
        combine = np.add if sign == "+" else np.subtract
        if p.kind == "curvilinear":
            first, _ = self._geo(along_x)
            _, second = self._geo(along_y * self.cos)
            return combine(first, second / self.cos)
        first = self._d(along_x, key, p.x_dim)
        weighted = along_y * self.cos if p.kind == "spherical" else along_y
        total = combine(first, self._d(weighted, key, p.y_dim))
        return total / self.metric if p.kind == "spherical" else total

    def divergence(self) -> Any:
        u, v = self.geographic_vector()
        return self.flux(u, v, self.ref, "+")

    def vorticity(self) -> Any:
        u, v = self.geographic_vector()
        return self.flux(v, u, self.ref, "-")

    def advection(self, key: Hashable | None) -> Any:
        u, v = self.geographic_vector()
        gx, gy = self.gradient(key)
        return -(u * gx + v * gy)

    def laplacian(self, key: Hashable | None) -> Any:
        p = self.plan
        if p.x_dim is None:  # no geometry: the second derivative along each of its dims
            f = self.arrays[key]
            total = None
            for field in p.variables[key].fields:
                term = self._d(self._d(f, key, field.dim), key, field.dim)
                total = term if total is None else total + term
            return total
        gx, gy = self.gradient(key)
        return self.flux(gx, gy, key, "+")


# -- building ---------------------------------------------------------------------------------


def build_derived(obj: Any, dplan: DerivedPlan, *, fused: bool = True) -> dict[str, xr.DataArray]:
    """The fields of ``dplan`` as DataArrays, lazy where the inputs are dask-backed.

    ``fused=False`` composes every operator from the engine's arrays (the same bits; tests).
    """
    arrays = operator_inputs(obj, dplan)
    composed = _Composed(obj, dplan, arrays)
    results: dict[str, Any] = {}
    by_op: dict[str, list] = {}
    for f in dplan.fields:
        by_op.setdefault(f.operator, []).append(f)
    pair = [f for f in dplan.fields if f.operator in ("divergence", "vorticity")]
    if pair:
        keys = [dplan.u, dplan.v]
        recipe = fused_recipe(obj, dplan, [f.operator for f in pair], keys) if fused else ""
        if isinstance(recipe, VectorRecipe):
            outs = _fused(recipe, [arrays[k] for k in keys])
            results.update({f.name: o for f, o in zip(pair, outs)})
        else:
            results.update({f.name: getattr(composed, f.operator)() for f in pair})
    for f in by_op.get("laplacian", []):
        results[f.name] = composed.laplacian(f.var)
    for f in by_op.get("advection", []):
        keys = [f.var, dplan.u, dplan.v]
        recipe = fused_recipe(obj, dplan, ["advection"], keys) if fused else ""
        if isinstance(recipe, VectorRecipe):
            (results[f.name],) = _fused(recipe, [arrays[k] for k in keys])
        else:
            results[f.name] = composed.advection(f.var)
    out = {}
    for f in dplan.fields:
        key = dplan.u if f.var is None and dplan.u is not None else f.var
        x = obj if key is None else obj[key]
        values = results[f.name]
        if not isinstance(x.data, da.Array):
            values = values.compute()
        out[f.name] = xr.DataArray(values, dims=x.dims, coords=x.coords, attrs=dict(f.attrs),
                                   name=f.name)  # fmt: skip
    return out


def _split_options(keywords: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """The operator keywords as GradientOptions fields, and the vector's basis."""
    for key in keywords:
        if key not in OPERATOR_OPTIONS:
            close = difflib.get_close_matches(key, OPERATOR_OPTIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"unexpected keyword argument {key!r}{hint}")
    options = {k: v for k, v in keywords.items() if k != "components"}
    return options, keywords.get("components")


def derived_fields(
    obj: Any,
    operators: Sequence[str],
    *,
    u: Any = None,
    v: Any = None,
    scalars: Sequence[Any] = (),
    options: GradientOptions | None = None,
    components: Any = None,
    fused: bool = True,
) -> dict[str, xr.DataArray]:
    """Plan and build some derived fields of ``obj`` (``options.grid`` merged first); the
    plan's notes are issued as ``UserWarning``."""
    options = options or GradientOptions()
    named = options.mask if isinstance(options.mask, str) and options.mask != "auto" else None
    obj = attach_grid(obj, options.grid, mask=named)
    dplan = plan_derived(
        obj, operators, u=u, v=v, scalars=scalars, options=options, components=components
    )
    for note in dplan.gradient.notes:
        warnings.warn(note, UserWarning, stacklevel=4)
    return build_derived(obj, dplan, fused=fused)


def operator_field(
    obj: Any,
    operator: str,
    *,
    dim: Any = None,
    u: Any = None,
    v: Any = None,
    var: Any = None,
    keywords: Mapping[str, Any],
) -> xr.DataArray:
    """One operator of the accessor (``ds.grad.divergence(...)`` and the others)."""
    fields, components = _split_options(keywords)
    options = GradientOptions(dim=dim, **fields)
    scalars = [var] if operator in ("laplacian", "advection") else []
    if operator in ("laplacian", "advection") and var is None and isinstance(obj, xr.Dataset):
        raise OptionError(
            "var",
            f"var: name the variable of the Dataset (one of {[str(k) for k in obj.data_vars]})",
        )
    (field,) = derived_fields(
        obj, [operator], u=u, v=v, scalars=scalars, options=options, components=components
    ).values()
    return field
