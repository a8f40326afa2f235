"""The vocabulary of gradient options: one definition for the function, the accessor and the config.

Every rule about an option's value lives here once: the allowed edge orders, the datetime units,
the geometries, the default sphere radius, the output-name template. :class:`GradientOptions`
is the frozen record of one call's options; the accessor's methods take exactly its fields, and
the batch runner builds one from the YAML config. A bad value raises :class:`OptionError`, a
``ValueError`` that carries the name of the argument it is about, so the batch runner can map it
to its config key instead of reading the message.

This module imports nothing heavier than numpy, so the config can use it.

Examples
--------
>>> opts = GradientOptions(dim="x", edge_order=2)
>>> opts.edge_order, opts.name
(2, 'd{var}_d{dim}')
>>> GradientOptions(edge_order=3)
Traceback (most recent call last):
...
daskgrad.core.options.OptionError: edge_order must be 1 or 2; got 3
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import string
import typing
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "COMPONENTS",
    "DATETIME_UNITS",
    "DEFAULT_NAME",
    "DEFAULT_RADIUS",
    "EDGE_ORDERS",
    "GEOMETRIES",
    "NAN_POLICIES",
    "GradientOptions",
    "OptionError",
    "check_components",
    "check_datetime_unit",
    "check_edge_order",
    "check_geometry",
    "check_grid",
    "check_mask",
    "check_name_template",
    "check_nan_policy",
    "check_radius",
    "is_member",
]

DatetimeUnit = Literal["W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"]
#: numpy's fixed-length datetime units (``Y`` and ``M`` have no fixed length: refused).
DATETIME_UNITS: tuple[str, ...] = typing.get_args(DatetimeUnit)
#: Mean Earth radius in metres (IUGG), the default sphere radius.
DEFAULT_RADIUS = 6371008.8
#: The accuracies of the one-sided edge differences, as in numpy.gradient.
EDGE_ORDERS = (1, 2)
#: The geometries besides plain (cartesian) coordinates.
GEOMETRIES = ("spherical",)
#: The default output-name template.
DEFAULT_NAME = "d{var}_d{dim}"

NanPolicy = Literal["propagate", "one-sided"]
#: What NaN values do: spread to their neighbours' derivatives as in numpy (``propagate``), or
#: end the runs of valid values, which are differentiated alone (``one-sided``).
NAN_POLICIES: tuple[str, ...] = typing.get_args(NanPolicy)

Components = Literal["grid", "geographic"]
#: The derivatives on a curvilinear spherical grid: along the grid lines per metre (``grid``),
#: or eastward and northward (``geographic``).
COMPONENTS: tuple[str, ...] = typing.get_args(Components)

Geometry = Literal["spherical"] | None


class OptionError(ValueError):
    """A bad value for one option.

    Parameters
    ----------
    argument
        The keyword the problem is about (``"edge_order"``, ``"dim"``, ``"variables"``...).
    message
        One line naming the value received and what is allowed.

    Examples
    --------
    >>> err = OptionError("radius", "radius must be positive; got -1")
    >>> err.argument, str(err)
    ('radius', 'radius must be positive; got -1')
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument


def is_member(value: Any, allowed: Any) -> bool:
    """``value in allowed``, False where that cannot be asked (an unhashable value, an array).

    Examples
    --------
    >>> is_member("x", ("x", "y")), is_member(["x"], {"x": 1})
    (True, False)
    """
    try:
        return value in allowed
    except (TypeError, ValueError):  # unhashable, or an array whose truth is ambiguous
        return False


def check_edge_order(edge_order: Any) -> int:
    """``edge_order`` as an int if it is 1 or 2 (not ``True``, not ``1.0``).

    Examples
    --------
    >>> check_edge_order(2)
    2
    """
    # bool is refused although True == 1; 1.0 and numpy integers are taken, as numpy takes them.
    if isinstance(edge_order, bool) or not is_member(edge_order, EDGE_ORDERS):
        raise OptionError("edge_order", f"edge_order must be 1 or 2; got {edge_order!r}")
    return int(edge_order)


def check_datetime_unit(datetime_unit: Any) -> str:
    """``datetime_unit`` if numpy knows it as a fixed-length unit.

    Examples
    --------
    >>> check_datetime_unit("h")
    'h'
    >>> check_datetime_unit("M")
    Traceback (most recent call last):
    ...
    daskgrad.core.options.OptionError: datetime_unit='M' is not allowed: months have no fixed length, so they are not a step size; use one of W, D, h, m, s, ms, us, ns, ps, fs, as
    """
    allowed = ", ".join(DATETIME_UNITS)
    if isinstance(datetime_unit, str) and datetime_unit in ("Y", "M"):
        what = "years" if datetime_unit == "Y" else "months"
        raise OptionError(
            "datetime_unit",
            f"datetime_unit={datetime_unit!r} is not allowed: {what} have no fixed length, "
            f"so they are not a step size; use one of {allowed}",
        )
    if not isinstance(datetime_unit, str) or datetime_unit not in DATETIME_UNITS:
        raise OptionError(
            "datetime_unit", f"datetime_unit must be one of {allowed}; got {datetime_unit!r}"
        )
    return datetime_unit


def check_geometry(geometry: Any) -> Geometry:
    """``None`` or ``"spherical"``.

    Examples
    --------
    >>> check_geometry("spherical")
    'spherical'
    """
    if geometry is not None and geometry not in GEOMETRIES:
        raise OptionError("geometry", f"geometry must be None or 'spherical'; got {geometry!r}")
    return geometry


def check_nan_policy(nan_policy: Any) -> str:
    """``"propagate"`` or ``"one-sided"``.

    Examples
    --------
    >>> check_nan_policy("one-sided")
    'one-sided'
    >>> check_nan_policy("omit")
    Traceback (most recent call last):
    ...
    daskgrad.core.options.OptionError: nan_policy must be 'propagate' or 'one-sided'; got 'omit'
    """
    if not isinstance(nan_policy, str) or nan_policy not in NAN_POLICIES:
        raise OptionError(
            "nan_policy", f"nan_policy must be 'propagate' or 'one-sided'; got {nan_policy!r}"
        )
    return nan_policy


def check_components(components: Any) -> str:
    """``"grid"`` or ``"geographic"``.

    Examples
    --------
    >>> check_components("geographic")
    'geographic'
    """
    if not isinstance(components, str) or components not in COMPONENTS:
        raise OptionError(
            "components", f"components must be 'grid' or 'geographic'; got {components!r}"
        )
    return components


def check_mask(mask: Any) -> Any:
    """``mask`` if it has one of its forms: ``None``, ``"auto"``, a variable name, or a
    DataArray (checked against the data when the call is planned, :mod:`daskgrad.masks`).

    Examples
    --------
    >>> check_mask("auto")
    'auto'
    >>> check_mask(0.5)
    Traceback (most recent call last):
    ...
    daskgrad.core.options.OptionError: mask must be None, 'auto', a variable name or a boolean DataArray (True = wet); got float 0.5
    """
    is_dataarray = (
        hasattr(mask, "dims") and hasattr(mask, "dtype") and not hasattr(mask, "data_vars")
    )
    if mask is None or isinstance(mask, str) or is_dataarray:
        return mask
    raise OptionError(
        "mask",
        "mask must be None, 'auto', a variable name or a boolean DataArray (True = wet); got "
        f"{type(mask).__name__} {_short(mask)}",
    )


def check_grid(grid: Any) -> Any:
    """``grid`` if it is ``None`` or a Dataset (its contents are checked against the data when
    the call is planned, :func:`daskgrad.grids.attach_grid`).

    Examples
    --------
    >>> check_grid("static.nc")
    Traceback (most recent call last):
    ...
    daskgrad.core.options.OptionError: grid must be None or an xarray.Dataset holding the grid's coordinates (e.g. xarray.open_dataset('ocean_static.nc')); got str 'static.nc'
    """
    if grid is None or (hasattr(grid, "data_vars") and hasattr(grid, "coords")):
        return grid
    raise OptionError(
        "grid",
        "grid must be None or an xarray.Dataset holding the grid's coordinates (e.g. "
        f"xarray.open_dataset('ocean_static.nc')); got {type(grid).__name__} {_short(grid)}",
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_radius(radius: Any) -> float:
    """The radius as a float if it is a finite positive number of metres.

    Examples
    --------
    >>> check_radius(6.371e6)
    6371000.0
    """
    if isinstance(radius, bool) or not isinstance(radius, numbers.Real):
        raise OptionError("radius", f"radius must be a positive number of metres; got {radius!r}")
    value = float(radius)
    if not (math.isfinite(value) and value > 0):
        raise OptionError(
            "radius", f"radius must be a finite positive number of metres; got {radius!r}"
        )
    return value


def check_name_template(name: Any) -> frozenset[str]:
    """The fields an output-name template uses, if it is a valid one.

    A template uses only the plain fields ``{var}`` and ``{dim}`` (no ``!conversion`` or
    ``:format``) and no ``/`` or ``\\``, which zarr would read as group separators, so a store
    written with it could never be complete. Whether two outputs get the same name is checked
    where the outputs are known (a template without ``{var}`` is fine for one variable).

    Examples
    --------
    >>> sorted(check_name_template("d{var}_d{dim}"))
    ['dim', 'var']
    >>> check_name_template("{var}/{dim}")
    Traceback (most recent call last):
    ...
    daskgrad.core.options.OptionError: name='{var}/{dim}' contains '/', which zarr reads as a group separator; write e.g. 'd{var}_d{dim}'
    """
    example = "write e.g. 'd{var}_d{dim}'"
    if not isinstance(name, str):
        raise OptionError(
            "name",
            f"name must be a format string using {{var}} and {{dim}}; {example}; got {name!r}",
        )
    try:
        parsed = [f for f in string.Formatter().parse(name) if f[1] is not None]
    except ValueError as err:
        raise OptionError(
            "name", f"name={name!r} is not a valid template ({err}); {example}"
        ) from None
    for _, field, spec, conversion in parsed:
        if field not in ("var", "dim"):
            raise OptionError(
                "name", f"name={name!r} uses the field {{{field}}}; only {{var}} and {{dim}} exist"
            )
        if spec or conversion:
            raise OptionError(
                "name",
                f"name={name!r}: write plain {{var}} and {{dim}} (no !conversion or :format)",
            )
    for sep in ("/", "\\"):
        if sep in name:
            raise OptionError(
                "name",
                f"name={name!r} contains {sep!r}, which zarr reads as a group separator; {example}",
            )
    return frozenset(f[1] for f in parsed if f[1] is not None)


Dims = Hashable | Sequence[Hashable] | None
Periodic = Hashable | Sequence[Hashable] | Mapping[Hashable, Any] | None


@dataclass(frozen=True)
class GradientOptions:
    """The options of one gradient call on an xarray object (``ds.grad.*`` and a batch run).

    The single-value options are checked when the record is made; ``dim``, ``variables`` and
    ``periodic`` are checked against the object when the call is planned
    (:func:`daskgrad.accessor.plan_gradients`).

    Attributes
    ----------
    dim
        A dim name or a list of them; ``None`` means every dim of each variable.
    variables
        Dataset only: a data variable name or a list of them, taken exactly as named. The
        default is every integer, float or complex data variable except those another variable
        names as its ``bounds``, ``cell_measures``, ``ancillary_variables``, ``grid_mapping``,
        ``coordinates`` or ``formula_terms``, flags (``flag_values``/``flag_meanings``) and the
        models' masks (:mod:`daskgrad.roles`). Each is differentiated along each requested dim
        it has.
    edge_order
        1 or 2, as in ``numpy.gradient``.
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
        metre, d/dx = 1/(R cos(lat)) d/dlon and d/dy = 1/R d/dlat (radians). 2-D latitude and
        longitude over two grid dims (a curvilinear grid) give the derivatives ``components``
        asks for.
    radius
        Sphere radius in metres for ``geometry="spherical"``.
    name
        Output name template with the fields ``{var}`` and ``{dim}``; an unnamed DataArray is
        ``var``.
    nan_policy
        ``"propagate"`` (numpy's numbers: a NaN spreads to its neighbours' derivatives) or
        ``"one-sided"``: along each dim, each run of consecutive non-NaN values is
        differentiated exactly as ``numpy.gradient`` differentiates that run alone (one-sided
        at the run's ends, e.g. at a coastline); runs shorter than ``edge_order + 1`` and NaN
        points give NaN.
    components
        On a curvilinear spherical grid: ``"grid"`` (derivatives along each grid dim per metre
        of great-circle distance, named by the grid dims) or ``"geographic"`` (eastward and
        northward derivatives, named with ``east`` and ``north`` for ``{dim}``).
    mask
        Land as a coastline: ``None`` (no mask), a variable or coordinate name
        (``"mask_rho"``), a boolean DataArray (True = wet) or ``"auto"`` (ROMS
        ``mask_rho``/``mask_u``/``mask_v``/``mask_psi``, NEMO ``tmask``/``umask``/``vmask``,
        MOM6 ``wet``/``wet_u``/``wet_v`` by each variable's grid). It broadcasts against each
        variable; a masked variable is differentiated with ``nan_policy="one-sided"`` and land
        is NaN in the result (integers become float64). See :mod:`daskgrad.masks`.
    grid
        A second Dataset holding the grid (MOM6's ``ocean_static.nc``, NEMO's
        ``mesh_mask.nc``): the latitude/longitude coordinates and masks the data lacks are
        taken from it. See :func:`daskgrad.grids.attach_grid`.

    Examples
    --------
    >>> GradientOptions.from_call("lat", {"geometry": "spherical"}).geometry
    'spherical'
    >>> GradientOptions.from_call(None, {"edge_ordr": 2})
    Traceback (most recent call last):
    ...
    TypeError: unexpected keyword argument 'edge_ordr' (did you mean 'edge_order'?)
    """

    dim: Dims = None
    variables: Hashable | Sequence[Hashable] | None = None
    edge_order: int = 1
    datetime_unit: str = "s"
    periodic: Periodic = None
    geometry: Geometry = None
    radius: float = DEFAULT_RADIUS
    name: str = DEFAULT_NAME
    nan_policy: NanPolicy = "propagate"
    components: Components = "grid"
    mask: Hashable | Any = None
    grid: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "edge_order", check_edge_order(self.edge_order))
        object.__setattr__(self, "datetime_unit", check_datetime_unit(self.datetime_unit))
        object.__setattr__(self, "geometry", check_geometry(self.geometry))
        object.__setattr__(self, "radius", check_radius(self.radius))
        check_name_template(self.name)
        check_nan_policy(self.nan_policy)
        check_components(self.components)
        check_mask(self.mask)
        check_grid(self.grid)

    @classmethod
    def keywords(cls) -> tuple[str, ...]:
        """The option names after ``dim``, in order (the accessor's keyword-only arguments)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.name != "dim")

    @classmethod
    def from_call(cls, dim: Dims, keywords: Mapping[str, Any]) -> GradientOptions:
        """The record for a call's ``dim`` and keyword arguments; unknown keywords are a
        ``TypeError`` naming the nearest known one, as Python's own message would."""
        known = cls.keywords()
        for key in keywords:
            if key not in known:
                import difflib

                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(f"unexpected keyword argument {key!r}{hint}")
        return cls(dim=dim, **keywords)
