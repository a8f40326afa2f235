"""Planning a ``grad`` call: every argument checked and every output decided, before any data.

:func:`plan_gradients` turns an xarray object and a :class:`~daskgrad.core.options.GradientOptions`
into a :class:`GradientPlan`: the chosen variables and dims, each dim's spacing (from the
coordinates, via :mod:`daskgrad.coords` and :mod:`daskgrad.geometry`), each output's name and
attributes, and the engine's per-axis spacing records. Coordinates are read (they are small);
data variables are not. Every error is an :class:`~daskgrad.core.options.OptionError` naming the
argument it is about.
"""

from __future__ import annotations

import datetime
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import xarray as xr

from daskgrad.arguments import choose_variables, kind_of, periodic_map, requested_dims
from daskgrad.cf import DerivativeKind, derivative_attrs
from daskgrad.coords import DimSpacing, dim_spacing
from daskgrad.core.options import GradientOptions, OptionError, check_name_template
from daskgrad.core.spacing import axis_spacing
from daskgrad.geometry import (
    CurvilinearAxes,
    SphericalAxes,
    find_lat_lon,
    find_variable_axes,
    to_radians,
)
from daskgrad.grids import attach_grid, fixed_in_time
from daskgrad.masks import MaskPart, resolve_mask
from daskgrad.records import CurvilinearPart, FieldRole, GradientField, GradientPlan, VariablePlan

__all__ = [
    "CurvilinearPart",
    "GradientField",
    "GradientPlan",
    "MaskPart",
    "VariablePlan",
    "check_storable",
    "plan_gradients",
]


XarrayObject = xr.DataArray | xr.Dataset
Role = Literal["lat", "lon"]
_VariablePlan = VariablePlan


# -- the plan ---------------------------------------------------------------------------------


def _field_attrs(
    obj: XarrayObject,
    x: xr.DataArray,
    label: Hashable,
    d: Hashable,
    s: DimSpacing,
    role: Role | None,
    options: GradientOptions,
    axes: SphericalAxes | None,
    now: datetime.datetime,
) -> dict[str, str]:
    """The CF attributes of ``d label / d d`` (:func:`daskgrad.cf.derivative_attrs`)."""
    if role is not None and axes is not None:
        coord_name = axes.lat if role == "lat" else axes.lon
        kind: DerivativeKind = "north" if role == "lat" else "east"
    else:
        coord_name = d if d in obj.coords else None
        kind = "time" if s.kind in ("datetime", "cftime") else "plain"
    coord_attrs = dict(obj.coords[coord_name].attrs) if coord_name is not None else None
    return derivative_attrs(
        x.attrs,
        coord_attrs,
        var=label,
        dim=d,
        kind=kind,
        datetime_unit=options.datetime_unit,
        spherical=options.geometry == "spherical",
        edge_order=options.edge_order,
        now=now,
    )


def _variable(obj: XarrayObject, key: Hashable | None) -> xr.DataArray:
    """``obj[key]``, or the DataArray itself for ``key=None``."""
    if key is None:
        assert isinstance(obj, xr.DataArray)
        return obj
    return obj[key]


def _dim_spacings(
    obj: XarrayObject,
    dims: Sequence[Hashable],
    options: GradientOptions,
    axes: SphericalAxes | None,
    periods: Mapping[Hashable, Any],
    cache: dict[tuple, DimSpacing],
) -> tuple[dict[Hashable, DimSpacing], dict[Hashable, Role | None]]:
    """Each dim's coordinate numbers (radians for spherical lat/lon) and its role; ``cache``
    holds those already made, by dim and coordinate."""
    spacings: dict[Hashable, DimSpacing] = {}
    roles: dict[Hashable, Role | None] = {}
    for d in dims:
        role = axes.role(d) if axes is not None else None
        coord_name = (
            None if axes is None or role is None else (axes.lat if role == "lat" else axes.lon)
        )
        if (d, coord_name) not in cache:
            try:
                s = dim_spacing(
                    obj,
                    d,
                    datetime_unit=options.datetime_unit,
                    periodic=d in periods,
                    period=periods.get(d),
                    coord_name=coord_name,
                )
            except OptionError:
                raise
            except ValueError as err:  # the dim's coordinate cannot be a spacing
                raise OptionError("dim", str(err)) from None
            cache[d, coord_name] = to_radians(s) if role is not None else s
        spacings[d] = cache[d, coord_name]
        roles[d] = role
    return spacings, roles


def _variable_axes(x: xr.DataArray) -> SphericalAxes | CurvilinearAxes | None:
    """The latitude/longitude of one variable (its own coordinates), errors under geometry."""
    try:
        return find_variable_axes(x)
    except ValueError as err:
        raise OptionError("geometry", str(err)) from None


def _check_lon_has_lat(
    obj: XarrayObject, x: xr.DataArray, label: Hashable, d: Hashable, axes: SphericalAxes | None
) -> None:
    if axes is None or axes.lat is None:
        try:  # the object's latitude, which this variable lacks
            axes = find_variable_axes(obj)  # type: ignore[assignment]
        except ValueError:
            axes = None
        if not isinstance(axes, SphericalAxes) or axes.lat is None:
            raise OptionError(
                "geometry",
                f"geometry='spherical': d/d{d} needs the latitude, but no latitude coordinate "
                f"was found (coordinates: {list(obj.coords)})",
            )
    if axes.lat_dim not in x.dims:
        raise OptionError(
            "geometry",
            f"geometry='spherical': variable {label!r} has the longitude dim {d!r} but not the "
            f"latitude dim {axes.lat_dim!r}; d/dx on a sphere needs the latitude of every point",
        )


def _variable_plan(
    obj: XarrayObject,
    key: Hashable | None,
    label: Hashable,
    x: xr.DataArray,
    own: Sequence[Hashable],
    spacings: Mapping[Hashable, DimSpacing],
    roles: Mapping[Hashable, Role | None],
    options: GradientOptions,
    axes: SphericalAxes | None,
    now: datetime.datetime,
) -> _VariablePlan:
    """The fields of one variable along its requested dims, and the engine's spacing records."""
    fields = []
    records = []
    for d in own:
        if roles[d] == "lon":
            _check_lon_has_lat(obj, x, label, d, axes)
        s = spacings[d]
        attrs = _field_attrs(obj, x, label, d, s, roles[d], options, axes, now)
        out_name = options.name.format(var=label, dim=d)
        fields.append(GradientField(out_name, label, d, s, roles[d], attrs))
        try:
            records.append(
                axis_spacing(
                    s.values,
                    axis=x.get_axis_num(d),
                    size=s.size,
                    edge_order=options.edge_order,
                    label=f"dim {d!r}",
                    periodic=s.periodic,
                    period=s.period,
                )
            )
        except OptionError:
            raise
        except ValueError as err:  # too few points for edge_order, or a bad coordinate
            raise OptionError("dim", str(err)) from None
    return _VariablePlan(key, tuple(fields), tuple(records))


def plan_gradients(
    obj: XarrayObject,
    options: GradientOptions | None = None,
    *,
    now: datetime.datetime | None = None,
) -> GradientPlan:
    """Check every option against ``obj`` and decide every output of a ``grad`` call.

    Coordinates are read (they are small); data variables are not. ``now`` is the time the
    outputs' ``history`` attribute records (default: now; a batch run passes its start).
    ``options.grid`` is merged first (:func:`daskgrad.grids.attach_grid`); pass the merged
    object to :func:`daskgrad.accessor.build_gradients` to keep the grid's coordinates on the
    outputs.

    Raises
    ------
    OptionError
        For any bad argument, with a message naming the argument, the value and what is
        allowed, and ``.argument`` set to the keyword it is about.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"T": (("y", "x"), np.zeros((3, 4)))}, coords={"x": [0.0, 1.0, 2.0, 4.0]})
    >>> plan_gradients(ds, GradientOptions(dim="x")).names
    ['dT_dx']
    """
    options = options or GradientOptions()
    now = now or datetime.datetime.now(datetime.timezone.utc)
    named_mask = options.mask if isinstance(options.mask, str) and options.mask != "auto" else None
    obj = attach_grid(obj, options.grid, mask=named_mask)
    choice = choose_variables(obj, options.variables, mask=named_mask)
    arrays: list[xr.DataArray] = [_variable(obj, key) for key, _, _ in choice.chosen]
    dims = requested_dims(obj, options.dim, arrays)
    periods = periodic_map(obj, options.periodic, dims)
    spherical = options.geometry == "spherical"
    found = [_variable_axes(x) if spherical else None for x in arrays]
    if spherical and all(a is None for a in found):
        find_lat_lon_or_fail(obj)  # says that there is no latitude or longitude at all
    left_out = dict(choice.left_out)
    notes = list(choice.notes)
    cache: dict[tuple, DimSpacing] = {}
    var_plans = []
    all_fields: list[GradientField] = []
    for (key, label, named), x, axes in zip(choice.chosen, arrays, found):
        own = [d for d in dims if d in x.dims]
        if not own:
            if named and options.dim is not None:
                raise OptionError(
                    "variables",
                    f"variables: {label!r} has none of the requested dims {dims} (its dims are "
                    f"{list(x.dims)})",
                )
            left_out[label] = f"none of the dims {list(map(str, dims))}" if x.ndim else "no dims"
            continue
        if spherical and axes is None:
            _check_not_on_a_grid(obj, x, label, own, found)
        grid_dims = axes.dims if isinstance(axes, CurvilinearAxes) else ()
        partial = [d for d in own if d in grid_dims]
        whole = any(
            isinstance(a, CurvilinearAxes) and all(d in dims for d in a.dims) for a in found
        )
        if len(partial) == 1 and options.components == "geographic" and not named and whole:
            # a staggered variable sharing one grid dim with another's requested grid (WRF's U)
            left_out[label] = (
                f"only {partial[0]!r} of its grid dims {list(map(str, grid_dims))} requested; "
                "components='geographic' needs both"
            )
            continue
        on_sphere = axes if isinstance(axes, SphericalAxes) else None
        plain_own = [d for d in own if d not in grid_dims]
        spacings, roles = _dim_spacings(obj, plain_own, options, on_sphere, periods, cache)
        mask = resolve_mask(obj, x, label, options.mask)
        nan_policy = "one-sided" if mask is not None else options.nan_policy
        if mask is None and options.mask == "auto":
            notes.extend(_unmasked_note(obj, x, label))
        vp = _variable_plan(obj, key, label, x, plain_own, spacings, roles, options, on_sphere, now)
        if isinstance(axes, CurvilinearAxes) and any(d in grid_dims for d in own):
            vp = _with_curvilinear(vp, obj, x, label, own, axes, options, nan_policy, now)
        var_plans.append(replace(vp, mask=mask, nan_policy=nan_policy, axes=axes))
        all_fields.extend(vp.fields)

    _check_names(obj, all_fields, options.name)
    return GradientPlan(
        tuple(all_fields),
        options.geometry,
        options.radius,
        next((a for a in found if a is not None), None),
        tuple(var_plans),
        options.nan_policy,
        left_out,
        tuple(notes),
    )


def _check_not_on_a_grid(
    obj: XarrayObject,
    x: xr.DataArray,
    label: Hashable,
    own: Sequence[Hashable],
    found: Sequence[Any],
) -> None:
    """A variable along one dim of a curvilinear grid (another variable's, or the object's
    one grid), without the other."""
    try:
        grids = [*found, find_variable_axes(obj)]
    except ValueError:  # several grids in the object: the other variables' are enough
        grids = list(found)
    for axes in grids:
        if isinstance(axes, CurvilinearAxes):
            on = [d for d in own if d in axes.dims]
            missing = [d for d in axes.dims if d not in x.dims]
            if on and missing:
                raise OptionError(
                    "dim",
                    f"variable {label!r} has the grid dim {on[0]!r} but not {missing[0]!r}; a "
                    f"derivative on the curvilinear grid of {axes.lat!r}/{axes.lon!r} needs both",
                )


def _unmasked_note(obj: XarrayObject, x: xr.DataArray, label: Hashable) -> list[str]:
    """A note for a variable ``mask="auto"`` leaves unmasked although a model mask shares a
    grid dim with it (say a mask whose dims are named otherwise)."""
    from daskgrad.masks import AUTO_MASKS

    near = [
        f"{n} {tuple(obj[n].dims)}"
        for names in AUTO_MASKS.values()
        for n in names
        if n in obj.coords or n in getattr(obj, "data_vars", ())
        if any(d in x.dims and obj.sizes[d] > 1 for d in obj[n].dims)
    ]
    if not near:
        return []
    return [
        f"mask='auto': no mask fits {label!r} {tuple(x.dims)} (near: {', '.join(near)}); it is "
        "differentiated without one"
    ]


def _with_curvilinear(
    vp: _VariablePlan,
    obj: XarrayObject,
    x: xr.DataArray,
    label: Hashable,
    own: Sequence[Hashable],
    axes: CurvilinearAxes,
    options: GradientOptions,
    nan_policy: str,
    now: datetime.datetime,
) -> _VariablePlan:
    """``vp`` with the fields of ``label`` along the curvilinear grid dims it has, in ``own``'s
    order (the geographic pair where the first grid dim is)."""
    ydim, xdim = axes.dims
    requested = [d for d in own if d in axes.dims]
    missing = [d for d in axes.dims if d not in x.dims]
    if missing:
        raise OptionError(
            "dim",
            f"variable {label!r} has the grid dim {requested[0]!r} but not {missing[0]!r}; a "
            f"derivative on the curvilinear grid of {axes.lat!r}/{axes.lon!r} needs both",
        )
    if options.components == "geographic" and len(requested) < 2:
        raise OptionError(
            "components",
            f"components='geographic' needs both grid dims {list(axes.dims)} in dim (got "
            f"{requested}); eastward and northward each mix the two",
        )
    periodic = periodic_map(obj, options.periodic, own)
    for d in requested:
        if d in periodic and periodic[d] is not None:
            raise OptionError(
                "periodic",
                f"periodic: the curvilinear grid dim {d!r} wraps by its index; give it without a "
                f"period (periodic=[{d!r}]), got {periodic[d]!r}",
            )
        if d in periodic and options.components == "grid":
            raise OptionError(
                "periodic",
                f"periodic grid dim {d!r} is supported with components='geographic' only",
            )
    if nan_policy != "propagate" and options.components == "grid":
        masked = options.nan_policy == "propagate"
        raise OptionError(
            "mask" if masked else "nan_policy",
            f"{'a mask' if masked else f'nan_policy={nan_policy!r}'} on a curvilinear grid needs "
            "components='geographic' (grid components use N-D coordinates, not yet NaN-aware)",
        )
    part = CurvilinearPart(
        axes.lat,
        axes.lon,
        axes.dims,
        (x.get_axis_num(ydim), x.get_axis_num(xdim)),
        tuple(x.get_axis_num(d) for d in requested if d in periodic),
        options.components,
        options.edge_order,
        fixed_in_time(x, axes.lat, axes.dims),
        fixed_in_time(x, axes.lon, axes.dims),
    )
    if options.components == "geographic":
        outputs: list[tuple[Hashable, FieldRole, DerivativeKind, Hashable]] = [
            ("east", "east", "east", axes.lon),
            ("north", "north", "north", axes.lat),
        ]
    else:
        outputs = [
            (d, "grid", "y" if d == ydim else "x", axes.lat if d == ydim else axes.lon)
            for d in requested
        ]
    made = []
    for dim, role, kind, coord in outputs:
        attrs = derivative_attrs(
            x.attrs,
            dict(obj.coords[coord].attrs),
            var=label,
            dim=dim,
            kind=kind,
            spherical=True,
            edge_order=options.edge_order,
            now=now,
        )
        made.append(
            GradientField(options.name.format(var=label, dim=dim), label, dim, None, role, attrs)
        )
    plain = iter(vp.fields)
    fields: list[GradientField] = []
    for d in own:
        if d not in axes.dims:
            fields.append(next(plain))
        elif d == requested[0]:
            fields.extend(made)
    return _VariablePlan(vp.key, tuple(fields), vp.axis_spacings, part)


def find_lat_lon_or_fail(obj: XarrayObject) -> SphericalAxes | CurvilinearAxes:
    """:func:`daskgrad.geometry.find_lat_lon`, its errors filed under ``geometry``."""
    try:
        return find_lat_lon(obj)
    except ValueError as err:
        raise OptionError("geometry", str(err)) from None


def _check_names(obj: XarrayObject, fields: Sequence[GradientField], name: str) -> None:
    used = check_name_template(name)
    seen: dict[Hashable, GradientField] = {}
    for f in fields:
        if f.name in seen:
            other = seen[f.name]
            missing = " and ".join(f"{{{k}}}" for k in ("var", "dim") if k not in used)
            hint = f"; add {missing} to it" if missing else ""
            raise OptionError(
                "name",
                f"name={name!r} gives the same output name {f.name!r} to the gradient of "
                f"{other.var!r} along {other.dim!r} and of {f.var!r} along {f.dim!r}{hint}",
            )
        if f.name in obj.coords or f.name in obj.dims:
            raise OptionError(
                "name",
                f"name={name!r} gives the output name {f.name!r}, which is already a "
                f"coordinate or dim of the {kind_of(obj)}; choose another template",
            )
        seen[f.name] = f


def check_storable(plan: GradientPlan) -> None:
    """Refuse output names that zarr would read as nested groups (``/`` or ``\\`` in them).

    The template itself cannot hold them (:func:`daskgrad.core.options.check_name_template`), so
    such a name comes from a variable's name.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"a/b": ("x", np.zeros(3))})
    >>> check_storable(plan_gradients(ds))
    Traceback (most recent call last):
    ...
    daskgrad.core.options.OptionError: variables: 'a/b' contains '/', which zarr reads as a group separator in the output name 'da/b_dx'; rename it or leave it out
    """
    for f in plan.fields:
        for sep in ("/", "\\"):
            if isinstance(f.name, str) and sep in f.name:
                raise OptionError(
                    "variables",
                    f"variables: {f.var!r} contains {sep!r}, which zarr reads as a group "
                    f"separator in the output name {f.name!r}; rename it or leave it out",
                )
