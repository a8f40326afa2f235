"""Planning divergence, vorticity, Laplacian and advection: every argument checked before any data.

:func:`plan_derived` turns an xarray object, the operators asked for, the vector's components
``(u, v)``, the scalars and a :class:`~daskgrad.core.options.GradientOptions` into a
:class:`DerivedPlan`: the geometry (none, a sphere with 1-D latitude/longitude, or a curvilinear
grid), the two horizontal dims, per input variable the gradient planner's own
:class:`~daskgrad.records.VariablePlan` (spacing records, periodic seams, masks, the curvilinear
grid), and every output's name and CF attributes. The gradient planner
(:func:`daskgrad.plan.plan_gradients`) does the checks it knows (dims, periodic, mask, grid,
edge order); this module adds those of the operators: ``u`` and ``v`` on the same points, the
horizontal dims of the geometry, the basis of the vector on a curvilinear grid.

Which dims (``dim``):

* on a sphere, the latitude and longitude dims, on a curvilinear grid its two grid dims (x the
  coordinates' last dim): ``dim`` may be left out, or name them, x first (``["lon", "lat"]``);
* without geometry, ``dim=[x, y]`` (``u`` along ``x``, ``v`` along ``y``), by default the last
  two dims of ``u`` (as MetPy's ``x_dim=-1, y_dim=-2``). A Laplacian alone takes the dims of
  ``dim`` (default: every dim of the variable).

Examples
--------
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset({"u": (("y", "x"), np.zeros((3, 4))), "v": (("y", "x"), np.zeros((3, 4)))})
>>> p = plan_derived(ds, ["divergence", "vorticity"], u="u", v="v")
>>> p.kind, p.x_dim, p.y_dim, [f.name for f in p.fields]
('cartesian', 'x', 'y', ['divergence', 'vorticity'])
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import xarray as xr

from daskgrad.core.options import (
    DEFAULT_NAME,
    GradientOptions,
    OptionError,
    check_components,
    is_member,
)
from daskgrad.core.spacing import AxisSpacing
from daskgrad.geometry import CurvilinearAxes, SphericalAxes, find_variable_axes
from daskgrad.plan import GradientPlan, VariablePlan, plan_gradients
from daskgrad.vector_cf import derived_attrs, derived_name

__all__ = ["OPERATORS", "VECTOR_OPERATORS", "DerivedField", "DerivedPlan", "plan_derived"]

#: The derived fields, in the order they are written.
OPERATORS = ("divergence", "vorticity", "laplacian", "advection")
#: Those of the vector ``(u, v)``.
VECTOR_OPERATORS = ("divergence", "vorticity", "advection")
Kind = Literal["cartesian", "spherical", "curvilinear"]
XarrayObject = xr.DataArray | xr.Dataset

_FORMS = {
    "cartesian": "",
    "spherical": "flux form on the sphere",
    "curvilinear": "flux form, geographic derivatives through the grid's Jacobian",
}
_EAST = ("eastward", "northward")
_ALONG_GRID = ("x_", "_x_", "grid_")


@dataclass(frozen=True)
class DerivedField:
    """One derived output.

    Attributes
    ----------
    name
        The output name (:func:`daskgrad.vector_cf.derived_name`).
    operator
        ``divergence``, ``vorticity``, ``laplacian`` or ``advection``.
    var
        The scalar's key for a Laplacian or an advection (``None``: the DataArray itself, or
        no scalar).
    attrs
        Its CF attributes (:func:`daskgrad.vector_cf.derived_attrs`).
    """

    name: str
    operator: str
    var: Hashable | None
    attrs: dict[str, str]


@dataclass(frozen=True)
class DerivedPlan:
    """Every derived output of one call and what computes it, decided before any data.

    Attributes
    ----------
    fields
        The outputs, in :data:`OPERATORS` order (by scalar for a Laplacian or an advection).
    kind
        ``"cartesian"`` (no geometry), ``"spherical"`` (1-D latitude/longitude) or
        ``"curvilinear"`` (2-D latitude/longitude).
    u, v
        The vector's components (``None`` when no operator of the vector is asked for).
    x_dim, y_dim
        The horizontal dims (``None`` for a Laplacian alone without geometry: each variable's
        dims from ``dim``).
    variables
        Per input variable (by key), the gradient planner's plan of it along the dims.
    radius
        The sphere's radius.
    basis
        On a curvilinear grid, what ``u`` and ``v`` are: ``"geographic"`` (eastward,
        northward) or ``"grid"`` (along the grid's x and y lines); else ``None``.
    axes
        The latitude/longitude found (``None`` without geometry).
    dtype
        The dtype every input is computed in (integers as float64).
    edge_order, nan_policy
        The call's.
    gradient
        The gradient planner's plan (notes, left out).
    left_out
        Scalars of a default choice that do not fit an operator, with the reason.
    """

    fields: tuple[DerivedField, ...]
    kind: Kind
    u: Hashable | None
    v: Hashable | None
    x_dim: Hashable | None
    y_dim: Hashable | None
    variables: dict[Hashable | None, VariablePlan]
    radius: float
    basis: str | None
    axes: SphericalAxes | CurvilinearAxes | None
    dtype: np.dtype
    edge_order: int
    nan_policy: str
    gradient: GradientPlan = field(repr=False)
    left_out: dict[Hashable, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def spacing(self, key: Hashable | None, dim: Hashable) -> AxisSpacing:
        """The spacing record of variable ``key`` along ``dim`` (not on a curvilinear grid)."""
        vp = self.variables[key]
        plain = [f for f in vp.fields if f.role in (None, "lat", "lon")]
        for f, s in zip(plain, vp.axis_spacings):
            if f.dim == dim:
                return s
        raise KeyError(dim)


def check_operators(operators: Any) -> tuple[str, ...]:
    names = [operators] if isinstance(operators, str) else operators
    allowed = ", ".join(OPERATORS)
    if not isinstance(names, (list, tuple)) or not names:
        raise OptionError("derived", f"derived must list some of {allowed}; got {operators!r}")
    for name in names:
        if not isinstance(name, str) or name not in OPERATORS:
            raise OptionError("derived", f"derived: {name!r} is not one of {allowed}")
    if len(set(names)) != len(names):
        raise OptionError("derived", f"derived={operators!r} names an operator twice")
    return tuple(o for o in OPERATORS if o in names)


def _component(obj: XarrayObject, name: Any, argument: str) -> xr.DataArray:
    if not isinstance(obj, xr.Dataset):
        raise OptionError(
            argument,
            f"{argument}={name!r}: the vector operators need a Dataset holding u and v; call "
            "them on the Dataset (ds.grad.divergence(u='u', v='v'))",
        )
    if not is_member(name, obj.data_vars):
        where = " (it is a coordinate)" if is_member(name, obj.coords) else ""
        raise OptionError(
            argument,
            f"{argument}={name!r} is not a data variable of the Dataset{where}; its data "
            f"variables are {[str(k) for k in obj.data_vars]}",
        )
    return _real(obj[name], argument, name)


def _real(x: xr.DataArray, argument: str, name: Any) -> xr.DataArray:
    if x.dtype.kind not in "biuf":
        raise OptionError(
            argument,
            f"{argument} {name!r} has dtype {x.dtype}; the operators take real numbers "
            "(integer, bool or float)",
        )
    return x


def _scalar(obj: XarrayObject, var: Any) -> tuple[Hashable | None, xr.DataArray]:
    if isinstance(obj, xr.DataArray):
        if var is not None and var != obj.name:
            raise OptionError(
                "var",
                f"var={var!r}: a DataArray's operator applies to the DataArray itself; leave "
                "var=None",
            )
        return None, _real(obj, "var", obj.name)
    if var is None:
        raise OptionError(
            "var",
            f"var: name the variable of the Dataset (one of {[str(k) for k in obj.data_vars]})",
        )
    if not is_member(var, obj.data_vars):
        raise OptionError(
            "var",
            f"var={var!r} is not a data variable of the Dataset; its data variables are "
            f"{[str(k) for k in obj.data_vars]}",
        )
    return var, _real(obj[var], "var", var)


def _same_points(a: xr.DataArray, b: xr.DataArray, argument: str, what: str) -> None:
    if a.dims != b.dims or a.shape != b.shape:
        raise OptionError(
            argument,
            f"{what} has dims {dict(b.sizes)} but u has {dict(a.sizes)}; the operators need "
            "them on the same points in the same dim order (interpolate a staggered grid's "
            "components to one point first)",
        )


def _horizontal(
    ref: xr.DataArray, label: Hashable, options: GradientOptions, vector: bool
) -> tuple[Kind, Any, Hashable | None, Hashable | None]:
    """The geometry, its axes and the horizontal dims (x, y) of the reference variable."""
    dim = options.dim
    given: list[Any] | None = None
    if dim is not None:
        given = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    if options.geometry is None:
        if not vector:
            return "cartesian", None, None, None
        if given is None:
            if ref.ndim < 2:
                raise OptionError(
                    "dim", f"u {label!r} has one dim {ref.dims}; divergence and vorticity need two"
                )
            return "cartesian", None, ref.dims[-1], ref.dims[-2]
        if len(given) != 2 or given[0] == given[1]:
            raise OptionError(
                "dim", f"dim must name two dims, x then y (u along x, v along y); got {dim!r}"
            )
        for d in given:
            if d not in ref.dims:
                raise OptionError("dim", f"dim {d!r} is not a dim of {label!r} {ref.dims}")
        return "cartesian", None, given[0], given[1]
    try:
        axes = find_variable_axes(ref)
    except ValueError as err:
        raise OptionError("geometry", str(err)) from None
    if isinstance(axes, CurvilinearAxes):
        kind: Kind = "curvilinear"
        x, y = axes.dims[1], axes.dims[0]
    elif (
        isinstance(axes, SphericalAxes)
        and axes.lat is not None
        and axes.lon is not None
        and axes.lat_dim in ref.dims
        and axes.lon_dim in ref.dims
    ):
        kind, x, y = "spherical", axes.lon_dim, axes.lat_dim
    else:
        raise OptionError(
            "geometry",
            f"geometry='spherical': {label!r} {ref.dims} needs a latitude and a longitude "
            f"dim (coordinates: {list(ref.coords)})",
        )
    if given is not None:
        ok = given == [x, y] if vector else sorted(map(str, given)) == sorted(map(str, (x, y)))
        if not ok:
            order = "x first: " if vector else ""
            raise OptionError(
                "dim",
                f"dim={dim!r}: on this grid the operators run along {order}{[x, y]}; give "
                "those or leave dim out",
            )
    return kind, axes, x, y


def _basis(kind: Kind, components: Any, u: xr.DataArray, names: tuple[Any, Any]) -> str | None:
    """What ``u`` and ``v`` are on a curvilinear grid: the argument, or their standard names."""
    if kind != "curvilinear":
        return None
    if components is not None:
        return check_components(components)
    standard = str(u.attrs.get("standard_name", ""))
    if standard.startswith(_EAST) or "_eastward_" in standard:
        return "geographic"
    if any(part in standard for part in _ALONG_GRID) or standard.startswith("sea_water_x"):
        return "grid"
    raise OptionError(
        "components",
        f"u {names[0]!r} and v {names[1]!r} are on a curvilinear grid and their standard names "
        "do not say which way they point: give components='geographic' (eastward, northward) "
        "or components='grid' (along the grid's x and y lines, as models write them)",
    )


def _length_units(obj: XarrayObject, kind: Kind, dims: Sequence[Hashable]) -> str | None:
    """``m`` on a sphere; without geometry the coordinates' units when all dims share them."""
    if kind != "cartesian":
        return "m"
    units = set()
    for d in dims:
        coord = obj.coords.get(d)
        if coord is None or coord.dtype.kind in "mMO" or not coord.attrs.get("units"):
            return None
        units.add(str(coord.attrs["units"]))
    return units.pop() if len(units) == 1 else None


def plan_derived(
    obj: XarrayObject,
    operators: Any,
    *,
    u: Any = None,
    v: Any = None,
    scalars: Sequence[Any] = (),
    options: GradientOptions | None = None,
    components: Any = None,
    now: datetime.datetime | None = None,
    strict: bool = True,
) -> DerivedPlan:
    """Check every argument against ``obj`` and decide every derived output.

    Parameters
    ----------
    obj
        The Dataset (a DataArray for a Laplacian of itself), with ``options.grid`` already
        merged (:func:`daskgrad.grids.attach_grid`).
    operators
        Some of :data:`OPERATORS`.
    u, v
        The vector's components (names of data variables), for divergence, vorticity and
        advection.
    scalars
        The variables whose Laplacian and advection are asked for (``None``: the DataArray).
    options
        ``dim``, ``edge_order``, ``periodic``, ``geometry``, ``radius``, ``nan_policy``,
        ``mask`` and ``grid`` as for the gradient; ``variables`` and ``name`` are not used.
    components
        On a curvilinear grid, the basis of ``(u, v)``: ``"geographic"`` or ``"grid"``;
        ``None`` reads it from their standard names.
    now
        The time of the ``history`` line.
    strict
        ``False``: a scalar that does not fit (not on ``u``'s points for an advection, without
        the horizontal dims for a Laplacian) is left out, with the reason in
        :attr:`DerivedPlan.left_out` (a default choice of variables); else it is an error.

    Raises
    ------
    OptionError
        For any bad argument, naming it (``u``, ``v``, ``var``, ``dim``, ``components``,
        ``derived`` or an option of the gradient).
    """
    options = options or GradientOptions()
    now = now or datetime.datetime.now(datetime.timezone.utc)
    ops = check_operators(operators)
    vector = any(o in VECTOR_OPERATORS for o in ops)
    scalar_ops = [o for o in ops if o in ("laplacian", "advection")]
    inputs: dict[Hashable | None, xr.DataArray] = {}
    if vector:
        if is_member(u, [v]) and u is not None:
            raise OptionError("v", f"u and v name the same variable {u!r}")
        inputs[u] = _component(obj, u, "u")
        inputs[v] = _component(obj, v, "v")
        _same_points(inputs[u], inputs[v], "v", f"v {v!r}")
    candidates = [_scalar(obj, var) for var in (scalars if scalar_ops else ())]
    if scalar_ops and not candidates:
        raise OptionError("var", f"{' and '.join(scalar_ops)} need a variable (var)")
    ref_key = u if vector else candidates[0][0]
    ref = inputs[u] if vector else candidates[0][1]
    kind, axes, x_dim, y_dim = _horizontal(ref, ref_key, options, vector)
    keys: list[Hashable | None] = []
    left_out: dict[Hashable, str] = {}
    for key, x in candidates:
        try:
            if vector and "advection" in ops:
                _same_points(inputs[u], x, "var", f"{key!r}")
            elif x_dim is not None and not {x_dim, y_dim} <= set(x.dims):
                raise OptionError(
                    "var", f"{key!r} {x.dims} lacks the horizontal dims {[x_dim, y_dim]}"
                )
        except OptionError as err:
            if strict:
                raise
            left_out[key] = str(err)
            continue
        keys.append(key)
        inputs.setdefault(key, x)
    if scalar_ops and not keys and not vector:
        raise OptionError("var", f"no variable fits {' and '.join(scalar_ops)}: {left_out}")
    if kind == "spherical":
        periodic = options.periodic
        lat_dim = y_dim
        if periodic is not None and (
            periodic == lat_dim or (not isinstance(periodic, str) and is_member(lat_dim, periodic))
        ):
            raise OptionError(
                "periodic", f"periodic: the latitude dim {lat_dim!r} does not wrap on a sphere"
            )
    dims = options.dim if x_dim is None else [y_dim, x_dim]
    gopts = dataclasses.replace(
        options,
        dim=dims,
        variables=None if isinstance(obj, xr.DataArray) else list(inputs),
        components="geographic" if kind == "curvilinear" else "grid",
        name=DEFAULT_NAME,
    )
    gplan = plan_gradients(obj, gopts, now=now)
    variables = {vp.key: vp for vp in gplan.variables}
    for key in inputs:
        if key not in variables:  # a named variable without the dims is refused above
            raise OptionError("dim", f"{key!r} has none of the dims {dims}")
    basis = _basis(kind, components, inputs[u], (u, v)) if vector else None
    dtype = np.result_type(*(x.dtype for x in inputs.values()))
    if dtype.kind in "biu":
        dtype = np.dtype(np.float64)
    fields = []
    form = _FORMS[kind]
    for op in ops:
        targets = keys if op in ("laplacian", "advection") else [None]
        for key in targets:
            label = key if key is not None else (ref.name if ref.name is not None else "var")
            own = [x_dim, y_dim] if x_dim is not None else _own_dims(variables[key])
            attrs = derived_attrs(
                op,
                inputs[u].attrs if vector else None,
                inputs[v].attrs if vector else None,
                inputs[key].attrs if op in ("laplacian", "advection") else None,
                _length_units(obj, kind, own),
                u=u,
                v=v,
                var=label,
                form=form,
                edge_order=options.edge_order,
                now=now,
            )
            name = derived_name(op, label)
            if name in obj.coords or name in obj.dims:
                raise OptionError(
                    "derived",
                    f"the output name {name!r} is already a coordinate or dim; rename it first",
                )
            fields.append(DerivedField(name, op, key, attrs))
    return DerivedPlan(
        tuple(fields),
        kind,
        u if vector else None,
        v if vector else None,
        x_dim,
        y_dim,
        variables,
        float(options.radius),
        basis,
        axes,
        np.dtype(dtype),
        options.edge_order,
        options.nan_policy,
        gplan,
        left_out,
    )


def _own_dims(vp: VariablePlan) -> list[Hashable]:
    return [f.dim for f in vp.fields]
