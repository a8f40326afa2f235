"""The ``grad`` accessor on ``xarray.DataArray`` and ``xarray.Dataset``.

``import daskgrad`` registers it. The accessor object holds only the wrapped object and hands
every call to the module functions below, which do three things in order:

1. :func:`plan_gradients` checks every argument against the object, before any data is touched,
   and decides each output: its name, the spacing of its dim (from the coordinates, via
   :mod:`daskgrad.coords` and :mod:`daskgrad.geometry`), its attributes;
2. :func:`lazy_gradients` runs the engine (:func:`daskgrad.gradient.differentiate_axes`) once per
   variable for all its requested dims, so a dask input is read once;
3. :func:`compute_gradients` loads the result; :func:`gradients_to_zarr` streams it to a store.

For numeric coordinates every field is bit for bit ``obj[var].differentiate(dim,
edge_order=...)`` of the loaded (numpy-backed) object: the engine receives the same coordinate
array that ``differentiate`` hands to ``numpy.gradient``.
"""

from __future__ import annotations

import string
from collections.abc import Hashable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr

from daskgrad._compat import array_module
from daskgrad.coords import DimSpacing, check_datetime_unit, dim_spacing
from daskgrad.geometry import (
    DEFAULT_RADIUS,
    SphericalAxes,
    check_radius,
    find_lat_lon,
    lon_metric,
    to_radians,
)
from daskgrad.gradient import differentiate_axes
from daskgrad.paths import check_zarr_target
from daskgrad.spacing import AxisSpacing, axis_spacing

__all__ = [
    "GradAccessor",
    "GradientField",
    "GradientPlan",
    "build_gradients",
    "compute_gradients",
    "gradients_to_zarr",
    "lazy_gradients",
    "plan_gradients",
]

#: dtype kinds the accessor differentiates: integers, floats, complex.
NUMERIC_KINDS = "iufc"
#: The name of an unnamed DataArray in the output names.
UNNAMED = "var"
_ZARR_MODES = ("w-", "w")

Dims = Hashable | Sequence[Hashable] | None
Periodic = Hashable | Sequence[Hashable] | Mapping[Hashable, Any] | None
Geometry = Literal["spherical"] | None
XarrayObject = xr.DataArray | xr.Dataset


@dataclass(frozen=True)
class GradientField:
    """One output field: ``d var / d dim``.

    Attributes
    ----------
    name
        The output variable name.
    var
        The input variable name (``"var"`` for an unnamed DataArray).
    dim
        The dim differentiated along.
    spacing
        The dim's coordinate numbers, units and period (radians for spherical lat/lon).
    role
        ``"lat"``/``"lon"`` for a spherical latitude/longitude dim, else ``None``.
    attrs
        The output attributes (``long_name`` and, when known, ``units``).
    """

    name: Hashable
    var: Hashable
    dim: Hashable
    spacing: DimSpacing
    role: Literal["lat", "lon"] | None
    attrs: dict[str, str]


@dataclass(frozen=True)
class _VariablePlan:
    key: Hashable | None  # None: the DataArray itself
    fields: tuple[GradientField, ...]
    axis_spacings: tuple[AxisSpacing, ...]


@dataclass(frozen=True)
class GradientPlan:
    """Every output of one call, decided and checked before any data is read.

    Attributes
    ----------
    fields
        The outputs in order: by variable, then by requested dim.
    geometry
        ``"spherical"`` or ``None``.
    radius
        Sphere radius in metres.
    axes
        The latitude/longitude coordinates found for spherical geometry (else ``None``).
    variables
        Per input variable, its fields and the engine's per-axis spacing records (internal).
    """

    fields: tuple[GradientField, ...]
    geometry: Geometry
    radius: float
    axes: SphericalAxes | None
    variables: tuple[_VariablePlan, ...]

    @property
    def names(self) -> list[Hashable]:
        """The output variable names, in order."""
        return [f.name for f in self.fields]


# -- argument checks --------------------------------------------------------------------------


def _check_edge_order(edge_order: Any) -> int:
    if isinstance(edge_order, bool) or edge_order not in (1, 2):
        raise ValueError(f"edge_order must be 1 or 2; got {edge_order!r}")
    return int(edge_order)


def _check_geometry(geometry: Any) -> Geometry:
    if geometry is not None and geometry != "spherical":
        raise ValueError(f"geometry must be None or 'spherical'; got {geometry!r}")
    return geometry


def _template_fields(name: Any) -> set[str]:
    if not isinstance(name, str):
        raise ValueError(
            f"name must be a format string using {{var}} and {{dim}}, e.g. 'd{{var}}_d{{dim}}'; "
            f"got {name!r}"
        )
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(name) if f is not None}
        unknown = sorted(fields - {"var", "dim"})
        if not unknown:
            name.format(var="v", dim="d")
    except (ValueError, KeyError, IndexError, AttributeError) as err:
        raise ValueError(
            f"name={name!r} is not a valid template: {err}; use only the fields {{var}} and "
            "{dim}, e.g. 'd{var}_d{dim}'"
        ) from None
    if unknown:
        raise ValueError(
            f"name={name!r} uses the field(s) {unknown}; only {{var}} and {{dim}} are allowed, "
            "e.g. 'd{var}_d{dim}'"
        )
    return fields


def _is_member(value: Any, container: Any) -> bool:
    try:
        return value in container
    except TypeError:  # unhashable
        return False


def _kind(obj: XarrayObject) -> str:
    return "Dataset" if isinstance(obj, xr.Dataset) else "DataArray"


def _is_numeric(x: xr.DataArray) -> bool:
    return x.dtype.kind in NUMERIC_KINDS


def _choose_variables(
    obj: XarrayObject, variables: Any
) -> list[tuple[Hashable | None, Hashable, bool]]:
    """``(key, label, named)`` per chosen variable: key for ``obj[key]`` (None: the DataArray)."""
    if isinstance(obj, xr.DataArray):
        if variables is not None:
            raise ValueError(
                f"variables is for Datasets; a DataArray is differentiated itself, so leave "
                f"variables=None (got {variables!r})"
            )
        label = obj.name if obj.name is not None else UNNAMED
        if not _is_numeric(obj):
            raise ValueError(
                f"the DataArray {label!r} has dtype {obj.dtype}; the accessor differentiates "
                "integer, float and complex data"
            )
        return [(None, label, True)]
    available = list(obj.data_vars)
    if variables is None:
        chosen = [(k, k, False) for k in available if _is_numeric(obj[k])]
        if not chosen:
            raise ValueError(
                f"the Dataset has no numeric data variable to differentiate (data variables: "
                f"{available}); integer, float and complex variables are differentiated"
            )
        return chosen
    if isinstance(variables, str) or (
        not isinstance(variables, (list, tuple)) and _is_member(variables, obj.data_vars)
    ):
        names = [variables]
    else:
        names = variables
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError(
            f"variables must be None, a variable name or a non-empty list of names; got "
            f"{variables!r}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"variables={variables!r} names a variable more than once")
    for v in names:
        if v not in obj.data_vars:
            where = " (it is a coordinate)" if v in obj.coords else ""
            raise ValueError(
                f"variables: {v!r} is not a data variable of the Dataset{where}; the data "
                f"variables are {available}"
            )
        if not _is_numeric(obj[v]):
            raise ValueError(
                f"variables: {v!r} has dtype {obj[v].dtype}; the accessor differentiates "
                "integer, float and complex variables"
            )
    return [(v, v, True) for v in names]


def _requested_dims(obj: XarrayObject, dim: Any, chosen: Sequence[xr.DataArray]) -> list[Hashable]:
    all_dims = list(obj.dims)
    if dim is None:
        seen: dict[Hashable, None] = {}
        for x in chosen:
            seen.update(dict.fromkeys(x.dims))
        return list(seen)
    if isinstance(dim, str) or (not isinstance(dim, (list, tuple)) and _is_member(dim, obj.dims)):
        dims = [dim]
    elif isinstance(dim, (list, tuple)):
        dims = list(dim)
    else:
        raise ValueError(f"dim must be None, a dim name or a list of dim names; got {dim!r}")
    if not dims:
        raise ValueError("dim is an empty list; give dim names, or None for every dim")
    for d in dims:
        if d not in obj.dims:
            raise ValueError(f"dim {d!r} is not a dim of the {_kind(obj)}; its dims are {all_dims}")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dim={dim!r} names a dim more than once")
    have = {d for x in chosen for d in x.dims}
    for d in dims:
        if d not in have:
            raise ValueError(
                f"dim {d!r} is in none of the chosen variables "
                f"{[x.name for x in chosen]}; their dims are {sorted(have, key=str)}"
            )
    return dims


def _periodic_map(
    obj: XarrayObject, periodic: Any, dims: Sequence[Hashable]
) -> dict[Hashable, Any]:
    if periodic is None:
        return {}
    if isinstance(periodic, Mapping):
        mapping = dict(periodic)
    elif isinstance(periodic, str) or (
        not isinstance(periodic, (list, tuple, set, frozenset)) and _is_member(periodic, obj.dims)
    ):
        mapping = {periodic: None}
    elif isinstance(periodic, (list, tuple, set, frozenset)):
        mapping = dict.fromkeys(periodic)
    else:
        raise ValueError(
            "periodic must be None, a dim name, a list of dim names or a dict {dim: period}; "
            f"got {periodic!r}"
        )
    for d in mapping:
        if d not in obj.dims:
            raise ValueError(
                f"periodic dim {d!r} is not a dim of the {_kind(obj)}; its dims are {list(obj.dims)}"
            )
        if d not in dims:
            raise ValueError(
                f"periodic dim {d!r} is not among the differentiated dims {list(dims)}; add it "
                "to dim or drop it from periodic"
            )
    return mapping


# -- the plan ---------------------------------------------------------------------------------


def _field_units(var_units: Any, coord_units: str | None) -> str | None:
    if var_units in (None, "") or coord_units is None:
        return None
    return f"{var_units}/{coord_units}"


def plan_gradients(
    obj: XarrayObject,
    dim: Dims = None,
    *,
    edge_order: int = 1,
    variables: Hashable | Sequence[Hashable] | None = None,
    datetime_unit: str = "s",
    periodic: Periodic = None,
    geometry: Geometry = None,
    radius: float = DEFAULT_RADIUS,
    name: str = "d{var}_d{dim}",
) -> GradientPlan:
    """Check every argument and decide every output of a ``grad`` call; read no data.

    The arguments are those of :meth:`GradAccessor.lazy`. Coordinates are read (they are
    small); data variables are not.

    Raises
    ------
    ValueError
        For any bad argument, with a message naming the argument, the value and what is allowed.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"T": (("y", "x"), np.zeros((3, 4)))}, coords={"x": [0.0, 1.0, 2.0, 4.0]})
    >>> plan_gradients(ds, "x").names
    ['dT_dx']
    """
    edge_order = _check_edge_order(edge_order)
    datetime_unit = check_datetime_unit(datetime_unit)
    geometry = _check_geometry(geometry)
    radius = check_radius(radius)
    fields_used = _template_fields(name)

    chosen = _choose_variables(obj, variables)
    arrays = [obj if key is None else obj[key] for key, _, _ in chosen]
    dims = _requested_dims(obj, dim, arrays)
    periodic_map = _periodic_map(obj, periodic, dims)

    axes = find_lat_lon(obj) if geometry == "spherical" else None
    spacings: dict[Hashable, DimSpacing] = {}
    roles: dict[Hashable, Literal["lat", "lon"] | None] = {}
    for d in dims:
        role = axes.role(d) if axes is not None else None
        coord_name = None if role is None else (axes.lat if role == "lat" else axes.lon)
        s = dim_spacing(
            obj,
            d,
            datetime_unit=datetime_unit,
            periodic=d in periodic_map,
            period=periodic_map.get(d),
            coord_name=coord_name,
        )
        spacings[d] = to_radians(s) if role is not None else s
        roles[d] = role

    var_plans = []
    all_fields: list[GradientField] = []
    for (key, label, named), x in zip(chosen, arrays):
        own = [d for d in dims if d in x.dims]
        if not own:
            if named and dim is not None:
                raise ValueError(
                    f"variables: {label!r} has none of the requested dims {dims} (its dims are "
                    f"{list(x.dims)})"
                )
            continue
        fields = []
        records = []
        for d in own:
            if roles[d] == "lon":
                if axes is None or axes.lat is None:
                    raise ValueError(
                        f"geometry='spherical': d/d{d} needs the latitude, but no latitude "
                        f"coordinate was found (coordinates: {list(obj.coords)})"
                    )
                if axes.lat_dim not in x.dims:
                    raise ValueError(
                        f"geometry='spherical': variable {label!r} has the longitude dim {d!r} "
                        f"but not the latitude dim {axes.lat_dim!r}; d/dx on a sphere needs "
                        "the latitude of every point"
                    )
            s = spacings[d]
            out_name = name.format(var=label, dim=d)
            attrs = {"long_name": f"gradient of {label} along {d}"}
            units = _field_units(x.attrs.get("units"), s.units)
            if units is not None:
                attrs["units"] = units
            fields.append(GradientField(out_name, label, d, s, roles[d], attrs))
            records.append(
                axis_spacing(
                    s.values,
                    axis=x.get_axis_num(d),
                    size=s.size,
                    edge_order=edge_order,
                    label=f"dim {d!r}",
                    periodic=s.periodic,
                    period=s.period,
                )
            )
        var_plans.append(_VariablePlan(key, tuple(fields), tuple(records)))
        all_fields.extend(fields)

    _check_names(obj, all_fields, name, fields_used)
    return GradientPlan(tuple(all_fields), geometry, radius, axes, tuple(var_plans))


def _check_names(
    obj: XarrayObject, fields: Sequence[GradientField], name: str, used: set[str]
) -> None:
    seen: dict[Hashable, GradientField] = {}
    for f in fields:
        if f.name in seen:
            other = seen[f.name]
            missing = " and ".join(f"{{{k}}}" for k in ("var", "dim") if k not in used)
            hint = f"; add {missing} to it" if missing else ""
            raise ValueError(
                f"name={name!r} gives the same output name {f.name!r} to the gradient of "
                f"{other.var!r} along {other.dim!r} and of {f.var!r} along {f.dim!r}{hint}"
            )
        if f.name in obj.coords or f.name in obj.dims:
            raise ValueError(
                f"name={name!r} gives the output name {f.name!r}, which is already a "
                f"coordinate or dim of the {_kind(obj)}; choose another template"
            )
        seen[f.name] = f


# -- building the result ----------------------------------------------------------------------


def _real_dtype(dtype: np.dtype) -> np.dtype:
    return np.zeros((), dtype).real.dtype


def _divide_block(block: Any, denom: np.ndarray, axis: int, block_info: Any = None) -> Any:
    start, stop = block_info[0]["array-location"][axis]
    return _divide_along(block, denom[start:stop], axis)


def _divide_along(values: Any, denom: np.ndarray, axis: int) -> Any:
    """``values / denom`` with the 1-D ``denom`` running along ``axis``; keeps the dtype."""
    denom = denom.astype(_real_dtype(values.dtype), copy=False)
    if isinstance(values, da.Array):
        return values.map_blocks(
            _divide_block, denom=denom, axis=axis, dtype=values.dtype, meta=values._meta
        )
    xp = array_module(values)
    shape = [1] * values.ndim
    shape[axis] = -1
    return values / xp.asarray(denom).reshape(shape)


def _apply_metric(values: Any, field: GradientField, x: xr.DataArray, plan: GradientPlan) -> Any:
    if field.role == "lat":
        return values / plan.radius
    if field.role == "lon":
        axes = plan.axes
        assert axes is not None and axes.lat is not None  # checked by plan_gradients
        denom = lon_metric(np.asarray(x.coords[axes.lat].values), plan.radius)
        return _divide_along(values, denom, x.get_axis_num(axes.lat_dim))
    return values


def build_gradients(obj: XarrayObject, plan: GradientPlan, numpy_chunks: bool = False) -> xr.Dataset:
    """The gradient fields that ``plan`` describes, lazy where ``obj`` is dask-backed.

    ``numpy_chunks`` cuts numpy-backed variables into dask's ``"auto"`` chunks first (for
    writing block by block).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.array([0.0, 1.0, 4.0]), dims="x", name="f")
    >>> build_gradients(a, plan_gradients(a))["df_dx"].values
    array([1., 2., 3.])
    """
    out: dict[Hashable, xr.DataArray] = {}
    for vp in plan.variables:
        x = obj if vp.key is None else obj[vp.key]
        data = x.data
        if numpy_chunks and not isinstance(data, da.Array):
            data = da.from_array(
                data, chunks=da.core.normalize_chunks("auto", data.shape, dtype=data.dtype)
            )
        results = differentiate_axes(data, vp.axis_spacings)
        for field, values in zip(vp.fields, results):
            values = _apply_metric(values, field, x, plan)
            out[field.name] = xr.DataArray(
                values, dims=x.dims, coords=x.coords, attrs=dict(field.attrs), name=field.name
            )
    attrs = dict(obj.attrs) if isinstance(obj, xr.Dataset) else {}
    return xr.Dataset(out, coords=obj.coords, attrs=attrs)


def lazy_gradients(
    obj: XarrayObject,
    dim: Dims = None,
    *,
    edge_order: int = 1,
    variables: Hashable | Sequence[Hashable] | None = None,
    datetime_unit: str = "s",
    periodic: Periodic = None,
    geometry: Geometry = None,
    radius: float = DEFAULT_RADIUS,
    name: str = "d{var}_d{dim}",
) -> xr.Dataset:
    """The gradient fields of ``obj``, unevaluated where the input is dask-backed.

    See :meth:`GradAccessor.lazy` for the arguments. dask-backed variables give lazy dask
    results with the input's chunks; numpy-backed ones are computed now.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.array([0.0, 1.0, 4.0, 9.0]), dims="x", name="f").chunk(2)
    >>> g = lazy_gradients(a)
    >>> g["df_dx"].chunks
    ((2, 2),)
    >>> g["df_dx"].values
    array([1., 2., 4., 5.])
    """
    plan = plan_gradients(
        obj,
        dim,
        edge_order=edge_order,
        variables=variables,
        datetime_unit=datetime_unit,
        periodic=periodic,
        geometry=geometry,
        radius=radius,
        name=name,
    )
    return build_gradients(obj, plan)


def compute_gradients(obj: XarrayObject, dim: Dims = None, **kwargs: Any) -> xr.Dataset:
    """The gradient fields of ``obj``, loaded in memory (one dask compute for all fields).

    See :meth:`GradAccessor.compute` for the arguments.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray([0.0, 1.0, 4.0], dims="x", coords={"x": [0.0, 1.0, 2.0]})
    >>> compute_gradients(a)["dvar_dx"].values
    array([1., 2., 3.])
    """
    return lazy_gradients(obj, dim, **kwargs).compute()


def _regular(values: da.Array) -> da.Array:
    """Rechunk to a regular grid (equal chunks, a shorter last one) if the chunks are not."""
    regular = []
    for cs in values.chunks:
        size = max(cs) if cs else 0
        ok = all(c == cs[0] for c in cs[:-1]) and cs[-1] <= cs[0]
        regular.append(cs if ok else da.core.normalize_chunks(size, (sum(cs),))[0])
    target = tuple(regular)
    return values if target == values.chunks else values.rechunk(target)


def gradients_to_zarr(
    obj: XarrayObject,
    store: str | PathLike | MutableMapping | Any,
    dim: Dims = None,
    *,
    mode: Literal["w-", "w"] = "w-",
    **kwargs: Any,
) -> None:
    """Write the gradient fields of ``obj`` to a zarr store, block by block, in bounded memory.

    Each zarr chunk is one dask block and is written by one task, tile by tile within the
    memory of the workers (or of ``dask.config`` ``daskgrad.memory-limit`` on threads; see
    :mod:`daskgrad.stream`). Irregular dask chunks are first rechunked to a regular grid
    (values unchanged); a numpy-backed input is cut into dask's ``"auto"`` chunks. See
    :meth:`GradAccessor.to_zarr` for the arguments.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> a = xr.DataArray(np.arange(6.0) ** 2, dims="x", name="f").chunk(3)
    >>> path = tempfile.mkdtemp() + "/g.zarr"
    >>> gradients_to_zarr(a, path)
    >>> xr.open_zarr(path)["df_dx"].values
    array([1., 2., 4., 6., 8., 9.])
    """
    check_zarr_target(obj, store, name=kwargs.get("name"), variables=kwargs.get("variables"))
    if mode not in _ZARR_MODES:
        raise ValueError(
            f"mode must be 'w-' (refuse an existing store) or 'w' (overwrite it); got {mode!r}"
        )
    from daskgrad.stream import write_gradients

    plan = plan_gradients(obj, dim, **kwargs)
    result = build_gradients(obj, plan, numpy_chunks=True).drop_encoding()
    for v in list(result.data_vars):
        result[v] = result[v].copy(data=_regular(result[v].data))
    write_gradients(obj, plan, result, store, mode)


# -- the accessor -----------------------------------------------------------------------------


@xr.register_dataset_accessor("grad")
@xr.register_dataarray_accessor("grad")
class GradAccessor:
    """``obj.grad``: numpy.gradient of xarray objects along named dims, using the coordinates.

    Holds only the wrapped object; every method delegates to a module function of
    :mod:`daskgrad.accessor`.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> import daskgrad
    >>> ds = xr.Dataset(
    ...     {"T": ("x", np.array([0.0, 1.0, 4.0, 9.0]), {"units": "K"})},
    ...     coords={"x": ("x", [0.0, 1.0, 2.0, 3.0], {"units": "m"})},
    ... )
    >>> g = ds.grad.compute("x")
    >>> g["dT_dx"].values, g["dT_dx"].attrs["units"]
    (array([1., 2., 4., 5.]), 'K/m')
    """

    def __init__(self, obj: XarrayObject) -> None:
        self._obj = obj

    def lazy(
        self,
        dim: Dims = None,
        *,
        edge_order: int = 1,
        variables: Hashable | Sequence[Hashable] | None = None,
        datetime_unit: str = "s",
        periodic: Periodic = None,
        geometry: Geometry = None,
        radius: float = DEFAULT_RADIUS,
        name: str = "d{var}_d{dim}",
    ) -> xr.Dataset:
        """The gradient fields, unevaluated (dask-backed where the input is).

        Parameters
        ----------
        dim
            A dim name or a list of them; ``None`` means every dim of each variable.
        edge_order
            1 or 2, as in ``numpy.gradient``.
        variables
            Dataset only: a data variable name or a list of them (default: every integer,
            float or complex data variable). Each is differentiated along each requested dim
            it has.
        datetime_unit
            Unit in which datetime64/timedelta64/cftime coordinates become numbers: one of
            W D h m s ms us ns ps fs as (``Y``/``M`` are refused: no fixed length).
        periodic
            Dims whose grid wraps around: a name, a list, or ``{dim: period}`` (period in the
            coordinate's units, in ``datetime_unit`` for times, in degrees for a spherical
            longitude; ``None`` infers ``n * step`` from a uniform coordinate; a dim without
            coordinate has period ``n``).
        geometry
            ``None`` or ``"spherical"``: latitude/longitude dims in degrees give derivatives per
            metre, d/dx = 1/(R cos(lat)) d/dlon and d/dy = 1/R d/dlat (radians).
        radius
            Sphere radius in metres for ``geometry="spherical"``.
        name
            Output name template with the fields ``{var}`` and ``{dim}``; an unnamed DataArray
            is ``var``.

        Returns
        -------
        xarray.Dataset
            One variable per (variable, dim), with the input's coordinates, ``long_name`` and
            ``units`` attributes, and the Dataset's attributes. numpy-backed variables are
            computed now, dask-backed ones stay lazy with the input's chunks.

        Raises
        ------
        ValueError
            Any bad argument, before any data is read.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> import daskgrad
        >>> a = xr.DataArray(np.arange(8.0) ** 2, dims="x", name="f").chunk(1)
        >>> g = a.grad.lazy()
        >>> type(g["df_dx"].data).__name__, g["df_dx"].chunks == a.chunks
        ('Array', True)
        """
        return lazy_gradients(
            self._obj,
            dim,
            edge_order=edge_order,
            variables=variables,
            datetime_unit=datetime_unit,
            periodic=periodic,
            geometry=geometry,
            radius=radius,
            name=name,
        )

    def compute(
        self,
        dim: Dims = None,
        *,
        edge_order: int = 1,
        variables: Hashable | Sequence[Hashable] | None = None,
        datetime_unit: str = "s",
        periodic: Periodic = None,
        geometry: Geometry = None,
        radius: float = DEFAULT_RADIUS,
        name: str = "d{var}_d{dim}",
    ) -> xr.Dataset:
        """The gradient fields, loaded in memory. Arguments as in :meth:`lazy`.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> import daskgrad
        >>> a = xr.DataArray(np.array([1.0, 2.0, 4.0, 7.0]), dims="t", name="f")
        >>> a.grad.compute()["df_dt"].values
        array([1. , 1.5, 2.5, 3. ])
        """
        return compute_gradients(
            self._obj,
            dim,
            edge_order=edge_order,
            variables=variables,
            datetime_unit=datetime_unit,
            periodic=periodic,
            geometry=geometry,
            radius=radius,
            name=name,
        )

    def to_zarr(
        self,
        store: str | PathLike | MutableMapping | Any,
        dim: Dims = None,
        *,
        edge_order: int = 1,
        variables: Hashable | Sequence[Hashable] | None = None,
        datetime_unit: str = "s",
        periodic: Periodic = None,
        geometry: Geometry = None,
        radius: float = DEFAULT_RADIUS,
        name: str = "d{var}_d{dim}",
        mode: Literal["w-", "w"] = "w-",
    ) -> None:
        """Stream the gradient fields to a zarr store, one dask block per zarr chunk.

        Parameters
        ----------
        store
            A path or a zarr store.
        mode
            ``"w-"`` refuses an existing store, ``"w"`` overwrites it.

        Other arguments as in :meth:`lazy`. Irregular dask chunks are rechunked to a regular
        grid first (values unchanged); a numpy-backed input is cut into dask ``"auto"``
        chunks. The resumable, fault-tolerant writer is ``daskgrad run``.

        Examples
        --------
        >>> import tempfile, numpy as np, xarray as xr
        >>> import daskgrad
        >>> a = xr.DataArray(np.arange(4.0) ** 2, dims="x", name="f").chunk(2)
        >>> path = tempfile.mkdtemp() + "/g.zarr"
        >>> a.grad.to_zarr(path)
        >>> xr.open_zarr(path)["df_dx"].encoding["chunks"]
        (2,)
        """
        gradients_to_zarr(
            self._obj,
            store,
            dim,
            mode=mode,
            edge_order=edge_order,
            variables=variables,
            datetime_unit=datetime_unit,
            periodic=periodic,
            geometry=geometry,
            radius=radius,
            name=name,
        )
