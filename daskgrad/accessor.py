"""The ``grad`` accessor on ``xarray.DataArray`` and ``xarray.Dataset``.

``import daskgrad`` registers it. The accessor object holds only the wrapped object and hands
every call to the module functions below, which do three things in order:

1. :func:`daskgrad.plan.plan_gradients` checks every option against the object, before any data
   is touched, and decides each output;
2. :func:`build_gradients` runs the engine (:func:`daskgrad.core.gradient.differentiate_axes`) once
   per variable for all its requested dims, so a dask input is read once;
3. :func:`compute_gradients` loads the result; :func:`gradients_to_zarr` streams it to a store.

The options are the fields of :class:`daskgrad.core.options.GradientOptions`; the methods' keyword
arguments are generated from it, so they are written once.

For numeric coordinates every field is bit for bit ``obj[var].differentiate(dim,
edge_order=...)`` of the loaded (numpy-backed) object: the engine receives the same coordinate
array that ``differentiate`` hands to ``numpy.gradient``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import warnings
from collections.abc import Callable, Hashable, Mapping, MutableMapping
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import dask.array as da
import numpy as np
import xarray as xr

from daskgrad.core.curvilinear import geographic_components, grid_components
from daskgrad.core.gradient import differentiate_axes
from daskgrad.core.mask import mask_array
from daskgrad.core.options import Dims, GradientOptions, OptionError
from daskgrad.geometry import SphericalAxes, divide_along, lon_metric
from daskgrad.grids import attach_grid
from daskgrad.operators import build_derived
from daskgrad.plan import (
    GradientField,
    GradientPlan,
    XarrayObject,
    _variable,
    check_storable,
    plan_gradients,
)
from daskgrad.vector_accessor import OperatorMethods
from daskgrad.vector_plan import DerivedPlan
from daskgrad.vector_request import plan_with_derived

if TYPE_CHECKING:  # the batch layer is imported where to_zarr runs, not with the accessor
    from daskgrad.batch.encoding import Encoding

__all__ = [
    "GradAccessor",
    "build_gradients",
    "compute_gradients",
    "gradients_to_zarr",
    "lazy_gradients",
    "planned",
]

_ZARR_MODES = ("w-", "w")


# -- building the result ----------------------------------------------------------------------


def _divide_block(block: Any, denom: np.ndarray, axis: int, block_info: Any = None) -> Any:
    start, stop = block_info[0]["array-location"][axis]
    return divide_along(block, denom[start:stop], axis)


def _divide_along(values: Any, denom: np.ndarray, axis: int) -> Any:
    """``values / denom`` with the 1-D ``denom`` running along ``axis``; keeps the dtype."""
    if isinstance(values, da.Array):
        return da.map_blocks(
            _divide_block, values, denom=denom, axis=axis, dtype=values.dtype, meta=values._meta
        )
    return divide_along(values, denom, axis)


def _apply_metric(
    values: Any, field: GradientField, x: xr.DataArray, vp: Any, plan: GradientPlan
) -> Any:
    if field.role == "lat":
        return values / plan.radius
    if field.role == "lon":
        axes = vp.axes
        assert isinstance(axes, SphericalAxes) and axes.lat is not None  # checked by the plan
        denom = lon_metric(np.asarray(x.coords[axes.lat].values), plan.radius)
        return _divide_along(values, denom, x.get_axis_num(axes.lat_dim))
    return values


_CURVILINEAR_ROLES = ("grid", "east", "north")


def _curvilinear_results(
    obj: XarrayObject, data: Any, vp: Any, plan: GradientPlan
) -> dict[Hashable, Any]:
    """The fields of a variable on a curvilinear grid, by output name."""
    part = vp.curvilinear
    lat, lon = part.lat_coord.data, part.lon_coord.data  # over the grid dims, fixed in time
    if part.components == "geographic":
        east, north = geographic_components(
            data,
            lat,
            lon,
            part.axes,
            plan.radius,
            part.edge_order,
            periodic=part.periodic,
            nan_policy=vp.nan_policy,
        )
        by_role = {"east": east, "north": north}
        return {f.name: by_role[f.role] for f in vp.fields if f.role in by_role}
    grid = grid_components(data, lat, lon, part.axes, plan.radius, part.edge_order)
    along = dict(zip(part.grid_dims, grid))
    return {f.name: along[f.dim] for f in vp.fields if f.role == "grid"}


def build_gradients(
    obj: XarrayObject, plan: GradientPlan, numpy_chunks: bool = False
) -> xr.Dataset:
    """The gradient fields that ``plan`` describes, lazy where ``obj`` is dask-backed.

    ``numpy_chunks`` cuts numpy-backed variables into dask's ``"auto"`` chunks first (for
    writing block by block).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.array([0.0, 1.0, 4.0]), dims="x", name="f")
    >>> build_gradients(a, plan_gradients(a, GradientOptions()))["df_dx"].values
    array([1., 2., 3.])
    """
    out: dict[Hashable, xr.DataArray] = {}
    for vp in plan.variables:
        x = _variable(obj, vp.key)
        data = x.data
        if numpy_chunks and not isinstance(data, da.Array):
            data = da.from_array(
                data, chunks=da.core.normalize_chunks("auto", data.shape, dtype=data.dtype)
            )
        if vp.mask is not None:  # land becomes NaN, block by block (daskgrad.core.mask)
            data = mask_array(data, vp.mask.broadcastable())
        plain = [f for f in vp.fields if f.role not in _CURVILINEAR_ROLES]
        results = dict(
            zip((f.name for f in plain), differentiate_axes(data, vp.axis_spacings, vp.nan_policy))
        )
        if vp.curvilinear is not None:
            results.update(_curvilinear_results(obj, data, vp, plan))
        for field in vp.fields:
            values = _apply_metric(results[field.name], field, x, vp, plan)
            out[field.name] = xr.DataArray(
                values, dims=x.dims, coords=x.coords, attrs=dict(field.attrs), name=field.name
            )
    attrs = dict(obj.attrs) if isinstance(obj, xr.Dataset) else {}
    return xr.Dataset(out, coords=obj.coords, attrs=attrs)


def lazy_gradients(
    obj: XarrayObject,
    options: GradientOptions,
    derived: Any = None,
    vector: Any = None,
    gradients: bool = True,
) -> xr.Dataset:
    """The gradient fields of ``obj``, unevaluated where the input is dask-backed.

    dask-backed variables give lazy dask results with the input's chunks; numpy-backed ones
    are computed now. ``derived`` adds derived fields (divergence, vorticity, laplacian,
    advection; :func:`daskgrad.vector_request.plan_with_derived`) of the vector ``vector`` and of
    the chosen variables; ``gradients=False`` leaves the gradients out.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.array([0.0, 1.0, 4.0, 9.0]), dims="x", name="f").chunk(2)
    >>> g = lazy_gradients(a, GradientOptions())
    >>> g["df_dx"].chunks
    ((2, 2),)
    >>> g["df_dx"].values
    array([1., 2., 4., 5.])
    """
    if derived is None and gradients:
        return build_gradients(*planned(obj, options))
    obj, plan, dplan = planned_with_derived(obj, options, derived, vector, gradients)
    return _with_derived(obj, plan, dplan)


def _with_derived(obj: XarrayObject, plan: GradientPlan | None, dplan: DerivedPlan) -> xr.Dataset:
    out = build_gradients(obj, plan) if plan is not None else xr.Dataset(coords=obj.coords)
    if isinstance(obj, xr.Dataset):
        out.attrs = dict(obj.attrs)
    return out.assign(build_derived(obj, dplan))


def planned_with_derived(
    obj: XarrayObject, options: GradientOptions, derived: Any, vector: Any, gradients: bool
) -> tuple[XarrayObject, GradientPlan | None, DerivedPlan]:
    """:func:`planned` with derived fields: the gradients' plan (``None`` for
    ``gradients=False``) and the derived fields' plan; notes issued as ``UserWarning``."""
    named = options.mask if isinstance(options.mask, str) and options.mask != "auto" else None
    obj = attach_grid(obj, options.grid, mask=named)
    plan, dplan = plan_with_derived(obj, options, derived, vector, gradients)
    notes = list(plan.notes if plan is not None else ()) + list(dplan.gradient.notes)
    for note in dict.fromkeys(notes):
        warnings.warn(note, UserWarning, stacklevel=4)
    return obj, plan, dplan


def planned(obj: XarrayObject, options: GradientOptions) -> tuple[XarrayObject, GradientPlan]:
    """``obj`` with ``options.grid`` merged into it, and the plan of the call on it.

    The plan's notes (a named variable the default leaves out, a variable ``mask="auto"``
    leaves unmasked) are issued as ``UserWarning``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"f": ("x", np.arange(3.0)), "x_bnds": (("x", "b"), np.zeros((3, 2)))},
    ...                 coords={"x": ("x", [0.0, 1.0, 2.0], {"bounds": "x_bnds"})})
    >>> _, plan = planned(ds, GradientOptions())
    >>> plan.names, plan.left_out
    (['df_dx'], {'x_bnds': "the cell bounds of 'x'"})
    """
    named = options.mask if isinstance(options.mask, str) and options.mask != "auto" else None
    obj = attach_grid(obj, options.grid, mask=named)
    plan = plan_gradients(obj, options)
    for note in plan.notes:
        warnings.warn(note, UserWarning, stacklevel=4)
    return obj, plan


def compute_gradients(obj: XarrayObject, options: GradientOptions) -> xr.Dataset:
    """The gradient fields of ``obj``, loaded in memory (one dask compute for all fields).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray([0.0, 1.0, 4.0], dims="x", coords={"x": [0.0, 1.0, 2.0]})
    >>> compute_gradients(a, GradientOptions())["dvar_dx"].values
    array([1., 2., 3.])
    """
    return lazy_gradients(obj, options).compute()


def gradients_to_zarr(
    obj: XarrayObject,
    store: str | PathLike | MutableMapping | Any,
    options: GradientOptions,
    mode: Literal["w-", "w"] = "w-",
    encoding: Encoding | Mapping[str, Any] | None = None,
    derived: Any = None,
    vector: Any = None,
    gradients: bool = True,
) -> None:
    """Write the gradient fields of ``obj`` to a zarr store, block by block, in bounded memory.

    Each zarr chunk is one dask block and is written by one task, tile by tile within the
    memory of the workers (or of ``dask.config`` ``daskgrad.memory-limit`` on threads; see
    :mod:`daskgrad.batch.stream`). Irregular dask chunks are first rechunked to a regular grid
    (values unchanged); a numpy-backed input is cut into dask's ``"auto"`` chunks.
    ``encoding`` is the batch config's ``output.encoding`` (codec, level, shuffle, dtype,
    shards, zarr_format, per-variable overrides), as a mapping or an
    :class:`~daskgrad.batch.encoding.Encoding`.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> a = xr.DataArray(np.arange(6.0) ** 2, dims="x", name="f").chunk(3)
    >>> path = tempfile.mkdtemp() + "/g.zarr"
    >>> gradients_to_zarr(a, path, GradientOptions())
    >>> xr.open_zarr(path)["df_dx"].values
    array([1., 2., 4., 6., 8., 9.])
    """
    from daskgrad.batch.paths import check_zarr_target
    from daskgrad.batch.stream import write_gradients

    check_zarr_target(obj, store)
    if mode not in _ZARR_MODES:
        raise ValueError(
            f"mode must be 'w-' (refuse an existing store) or 'w' (overwrite it); got {mode!r}"
        )
    layout = _encoding(encoding)
    if derived is None and gradients:
        obj, plan = planned(obj, options)
        check_storable(plan)
        write_gradients(obj, plan, store, mode, layout)
        return
    obj, maybe, dplan = planned_with_derived(obj, options, derived, vector, gradients)
    if maybe is not None:
        check_storable(maybe)
    write_gradients(obj, maybe, store, mode, layout, derived=dplan)


def _encoding(encoding: Encoding | Mapping[str, Any] | None) -> Encoding:
    """``encoding`` as the batch config reads ``output.encoding``; errors name the key."""
    from daskgrad.batch.encoding import Encoding

    if isinstance(encoding, Encoding):
        return encoding
    try:
        return Encoding.model_validate(dict(encoding or {}))
    except (TypeError, ValueError) as err:  # pydantic's ValidationError is a ValueError
        errors: list[Any] = getattr(err, "errors", list)()
        if errors:
            where = ".".join(map(str, errors[0]["loc"]))
            reason = str(errors[0]["msg"]).removeprefix("Value error, ")
            reason += f", got {errors[0].get('input')!r}" if "got" not in reason else ""
            message = f"encoding.{where}: {reason}" if where else f"encoding: {reason}"
        else:
            message = f"encoding must be a mapping of output.encoding's keys; got {encoding!r}"
        raise OptionError("encoding", message) from None


# -- the accessor -----------------------------------------------------------------------------

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _options_doc() -> str:
    """The Attributes section of :class:`GradientOptions`, as a Parameters section."""
    doc = inspect.getdoc(GradientOptions) or ""
    found = re.search(r"Attributes\n-+\n(.*?)\n\n(?:Examples|$)", doc, re.S)
    body = found.group(1) if found else ""
    return "\n".join("        " + line if line else "" for line in body.splitlines())


def _takes_options(method: _Method) -> _Method:
    """Give ``method(self, ..., dim=None, **options)`` the fields of :class:`GradientOptions` as
    its keyword-only arguments, in ``help()`` and ``inspect.signature``, and their documentation
    in place of ``{options}`` in its docstring."""
    sig = inspect.signature(method)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    hints = {f.name: f.type for f in dataclasses.fields(GradientOptions)}
    defaults = {f.name: f.default for f in dataclasses.fields(GradientOptions)}
    options = [
        inspect.Parameter(
            k, inspect.Parameter.KEYWORD_ONLY, default=defaults[k], annotation=hints[k]
        )
        for k in GradientOptions.keywords()
    ]
    leading = [p for p in params if p.kind is not p.KEYWORD_ONLY]
    own = [p for p in params if p.kind is p.KEYWORD_ONLY]
    method.__signature__ = sig.replace(parameters=[*leading, *options, *own])  # type: ignore[attr-defined]
    if method.__doc__:
        method.__doc__ = method.__doc__.replace("{options}", _options_doc().strip())
    return method


@xr.register_dataset_accessor("grad")
@xr.register_dataarray_accessor("grad")
class GradAccessor(OperatorMethods):
    """``obj.grad``: numpy.gradient of xarray objects along named dims, using the coordinates.

    Holds only the wrapped object; every method delegates to a module function of
    :mod:`daskgrad.accessor`. The keyword arguments of every method are the fields of
    :class:`daskgrad.core.options.GradientOptions`. The operators (``divergence``,
    ``vorticity``, ``laplacian``, ``advection``) come from
    :class:`daskgrad.vector_accessor.OperatorMethods`.

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
    (array([1., 2., 4., 5.]), 'K m-1')
    """

    def __init__(self, obj: XarrayObject) -> None:
        self._obj = obj

    @_takes_options
    def lazy(
        self,
        dim: Dims = None,
        *,
        derived: Any = None,
        vector: Any = None,
        gradients: bool = True,
        **options: Any,
    ) -> xr.Dataset:
        """The gradient fields, unevaluated (dask-backed where the input is).

        Parameters
        ----------
        {options}
        derived
            Derived fields to add: some of ``"divergence"``, ``"vorticity"`` (of ``vector``),
            ``"laplacian"``, ``"advection"`` (of each chosen variable), named ``divergence``,
            ``vorticity``, ``laplacian_<var>``, ``advection_<var>``; on a sphere and on a
            curvilinear grid over its horizontal dims (see :meth:`divergence`).
        vector
            ``{"u": name, "v": name}``, optionally with ``"dims": [x, y]`` (no geometry;
            default the last two dims of ``u``) and ``"components"`` (a curvilinear grid's
            basis of the vector, as :meth:`divergence` takes it).
        gradients
            ``False``: only the derived fields.

        Returns
        -------
        xarray.Dataset
            One variable per (variable, dim), with the input's coordinates, ``long_name`` and
            ``units`` attributes, and the Dataset's attributes. numpy-backed variables are
            computed now, dask-backed ones stay lazy with the input's chunks.

        Raises
        ------
        daskgrad.core.options.OptionError
            A ``ValueError`` for any bad argument, before any data is read; its ``argument``
            names the keyword.
        TypeError
            An unknown keyword.

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
            self._obj, GradientOptions.from_call(dim, options), derived, vector, gradients
        )

    @_takes_options
    def compute(
        self,
        dim: Dims = None,
        *,
        derived: Any = None,
        vector: Any = None,
        gradients: bool = True,
        **options: Any,
    ) -> xr.Dataset:
        """The gradient fields, loaded in memory. Arguments as in :meth:`lazy` (``derived``,
        ``vector`` and ``gradients`` too).

        Parameters
        ----------
        {options}

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> import daskgrad
        >>> a = xr.DataArray(np.array([1.0, 2.0, 4.0, 7.0]), dims="t", name="f")
        >>> a.grad.compute()["df_dt"].values
        array([1. , 1.5, 2.5, 3. ])
        """
        return lazy_gradients(
            self._obj, GradientOptions.from_call(dim, options), derived, vector, gradients
        ).compute()

    @_takes_options
    def to_zarr(
        self,
        store: str | PathLike | MutableMapping | Any,
        dim: Dims = None,
        *,
        mode: Literal["w-", "w"] = "w-",
        encoding: Encoding | Mapping[str, Any] | None = None,
        derived: Any = None,
        vector: Any = None,
        gradients: bool = True,
        **options: Any,
    ) -> None:
        """Stream the gradient fields to a zarr store, one dask block per zarr chunk.

        Irregular dask chunks are rechunked to a regular grid first (values unchanged); a
        numpy-backed input is cut into dask ``"auto"`` chunks. The resumable, fault-tolerant
        writer is ``daskgrad run``.

        Parameters
        ----------
        store
            A path or a zarr store.
        {options}
        mode
            ``"w-"`` refuses an existing store, ``"w"`` overwrites it.
        encoding
            How the outputs are stored, with the keys of the batch config's ``output.encoding``:
            ``{"codec": "zstd", "level": 3}``, ``{"dtype": "float32"}``,
            ``{"shards": "256MiB"}``, ``{"zarr_format": 2}``, ``{"variables": {name: {...}}}``.
            Default: blosc lz4 with bit shuffle, the input's float dtype, no shards, zarr v3.
        derived, vector, gradients
            Derived fields written beside (or, with ``gradients=False``, instead of) the
            gradients, in the same bounded tiles, as in :meth:`lazy`.

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
            GradientOptions.from_call(dim, options),
            mode,
            encoding,
            derived,
            vector,
            gradients,
        )
