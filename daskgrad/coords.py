"""Spacing from xarray coordinates: the numbers, the units and the period of one dim.

Pure logic, no dask and no data: everything here looks at 1-D coordinates only, so it is cheap
and runs before any graph is built. The accessor (:mod:`daskgrad.accessor`) turns the
:class:`DimSpacing` records into :class:`~daskgrad.core.spacing.AxisSpacing` records for the engine.

Rules
-----
* The spacing of a dim comes from its *dimension coordinate*, the 1-D coordinate named like the
  dim. Other coordinates along the dim, and 2-D (curvilinear) coordinates, are not spacings;
  they are ignored (the spherical geometry in :mod:`daskgrad.geometry` may ask for them).
* Numeric coordinates are passed on unchanged (same values, same dtype), which is exactly what
  ``xarray.DataArray.differentiate`` hands to ``numpy.gradient``; that makes the results bit for
  bit equal to ``differentiate``.
* A dim without coordinate has step 1: it is given the coordinate ``arange(n)`` (int64), as
  ``differentiate`` does, so the numbers agree there too.
* datetime64 and timedelta64 coordinates become float64 numbers in ``datetime_unit``: the offsets
  ``x - x[0]`` are computed exactly, as int64 timedelta64 in the coordinate's own unit, and then
  divided once by ``numpy.timedelta64(1, datetime_unit)`` (numpy's timedelta division: one
  rounding of each int64 to float64, one rounding of the quotient). For an increasing
  coordinate this is the same arithmetic as ``differentiate(..., datetime_unit=...)``.
* cftime (and Python ``datetime``) coordinates follow the same rule: the offsets from the first
  value are exact ``datetime.timedelta`` objects, turned into exact integer microseconds, and
  divided once by one ``datetime_unit``.
* ``Y`` and ``M`` are refused as ``datetime_unit``: years and months have no fixed length.
"""

from __future__ import annotations

import datetime
import math
import numbers
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import xarray as xr

from daskgrad.core.options import OptionError, check_datetime_unit
from daskgrad.core.spacing import inferred_period


def _unit(datetime_unit: str) -> np.timedelta64:
    """One ``datetime_unit`` as a timedelta64 (the unit is checked by :mod:`daskgrad.core.options`)."""
    return np.timedelta64(1, datetime_unit)  # type: ignore[call-overload]


__all__ = [
    "DimSpacing",
    "coordinate_numbers",
    "dim_spacing",
]

# How each datetime_unit is written in a ``units`` attribute (UDUNITS spelling): numpy's "m" is
# minutes, which a reader of "K/m" would take for metres, so it is written "min".
_UNIT_ATTR = {
    "W": "week",
    "D": "day",
    "h": "h",
    "m": "min",
    "s": "s",
    "ms": "ms",
    "us": "us",
    "ns": "ns",
    "ps": "ps",
    "fs": "fs",
    "as": "as",
}

CoordKind = Literal["numeric", "datetime", "cftime", "none"]


@dataclass(frozen=True)
class DimSpacing:
    """The spacing of one dim, ready for :func:`daskgrad.core.spacing.axis_spacing`.

    Attributes
    ----------
    dim
        The dim name.
    values
        The 1-D coordinate as numbers (numpy array of length ``size``): the numeric coordinate
        unchanged, datetimes converted to float64 in ``datetime_unit``, ``arange(size)`` for a
        dim without coordinate.
    kind
        ``"numeric"``, ``"datetime"`` (datetime64 and timedelta64), ``"cftime"`` or ``"none"``.
    units
        The units of ``values`` for the output's ``units`` attribute, or ``None`` when unknown.
    periodic
        Whether the dim wraps around.
    period
        The signed period in the units of ``values`` (negative for a decreasing coordinate, so
        that the extended coordinate ``[x[-1] - period, *x, x[0] + period]`` stays monotonic),
        or ``None`` when not periodic.
    """

    dim: Hashable
    values: np.ndarray
    kind: CoordKind
    units: str | None
    periodic: bool = False
    period: float | None = None

    @property
    def size(self) -> int:
        """The length of the dim."""
        return len(self.values)


def dimension_coordinate(obj: xr.DataArray | xr.Dataset, dim: Hashable) -> xr.DataArray | None:
    """The 1-D coordinate named ``dim`` along ``dim``, or ``None`` when the dim has none."""
    if dim not in obj.coords:
        return None
    coord = obj.coords[dim]
    if coord.dims != (dim,):
        return None
    return coord


def _is_datetime_object(value: Any) -> bool:
    if isinstance(value, datetime.datetime):
        return True
    module = type(value).__module__.split(".")[0]
    return module == "cftime"


def _object_offsets_us(values: np.ndarray, label: str) -> np.ndarray:
    """Exact integer microseconds of ``values - values[0]`` for datetime-like objects."""
    first = values[0]
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        try:
            delta = v - first
        except TypeError as err:
            raise ValueError(
                f"coordinate of {label} mixes datetime kinds or calendars ({first!r} and {v!r})"
            ) from err
        out[i] = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return out


def coordinate_numbers(
    values: Any, *, datetime_unit: str = "s", label: str = "the coordinate"
) -> tuple[np.ndarray, CoordKind]:
    """A 1-D coordinate as numbers, and which kind of coordinate it was.

    Parameters
    ----------
    values
        1-D array-like: numbers, datetime64, timedelta64, or cftime / ``datetime`` objects.
    datetime_unit
        The unit datetimes are counted in (see :data:`DATETIME_UNITS`).
    label
        How error messages name the coordinate.

    Returns
    -------
    numbers : numpy.ndarray
        Numeric input unchanged (same dtype); datetimes as float64 offsets from the first
        value, in ``datetime_unit``.
    kind : {"numeric", "datetime", "cftime"}

    Raises
    ------
    ValueError
        NaT or missing values in a datetime coordinate, or a coordinate that is neither numeric
        nor datetime-like.

    Examples
    --------
    >>> t = np.array(["2000-01-01T00", "2000-01-01T06", "2000-01-02T00"], dtype="M8[h]")
    >>> coordinate_numbers(t, datetime_unit="h")
    (array([ 0.,  6., 24.]), 'datetime')
    >>> coordinate_numbers(t, datetime_unit="D")[0]
    array([0.  , 0.25, 1.  ])
    >>> coordinate_numbers([0, 1, 3])
    (array([0, 1, 3]), 'numeric')
    """
    datetime_unit = check_datetime_unit(datetime_unit)
    values = np.asarray(values)
    kind = values.dtype.kind
    if kind in "iuf":
        return values, "numeric"
    if kind in "mM":
        if np.isnat(values).any():
            raise ValueError(f"coordinate of {label} holds NaT; a spacing needs every value")
        # int64 offsets in the coordinate's own unit: exact (barring int64 overflow).
        offsets = values - values[0]
        return offsets / _unit(datetime_unit), "datetime"
    if kind == "O" and values.size and all(_is_datetime_object(v) for v in values.ravel()):
        micro = _object_offsets_us(values, label).astype("m8[us]")
        return micro / _unit(datetime_unit), "cftime"
    raise ValueError(
        f"coordinate of {label} must hold numbers, datetime64, timedelta64 or cftime dates; "
        f"got dtype {values.dtype}"
    )


def period_number(period: Any, *, kind: CoordKind, datetime_unit: str, label: str) -> float | None:
    """A user's period as a number in the coordinate's units (``None`` stays ``None``).

    Numbers are taken as they are (in ``datetime_unit`` for time coordinates); a
    ``numpy.timedelta64`` or ``datetime.timedelta`` is accepted for time coordinates and
    converted to ``datetime_unit``.

    Examples
    --------
    >>> period_number(360, kind="numeric", datetime_unit="s", label="'lon'")
    360
    >>> period_number(np.timedelta64(1, "D"), kind="datetime", datetime_unit="h", label="'t'")
    24.0
    """
    if period is None:
        return None
    if isinstance(period, (datetime.timedelta, np.timedelta64)):
        if kind not in ("datetime", "cftime"):
            raise OptionError(
                "periodic",
                f"periodic period of dim {label} is a time delta ({period!r}) but the dim's "
                "coordinate is not a time; give a number",
            )
        value = np.timedelta64(period) / _unit(datetime_unit)
        if not value > 0:
            raise OptionError(
                "periodic", f"periodic period of dim {label} must be positive; got {period!r}"
            )
        return float(value)
    if isinstance(period, bool) or not isinstance(period, (numbers.Real, np.integer, np.floating)):
        raise OptionError(
            "periodic",
            f"periodic period of dim {label} must be a positive number or None; got {period!r}",
        )
    if not (math.isfinite(float(period)) and float(period) > 0):
        raise OptionError(
            "periodic",
            f"periodic period of dim {label} must be a finite positive number; got {period!r}",
        )
    return period  # type: ignore[return-value]  # a real number, kept as given


def resolve_period(values: np.ndarray, period: Any, label: str) -> Any:
    """The signed period to extend ``values`` with, after checking it fits the coordinate.

    ``None`` gives ``n * step`` for a uniform coordinate (numpy's uniformity test: every
    difference equal to the first) and an error otherwise. A given period must be longer than
    the coordinate's span ``|x[-1] - x[0]|``; it gets the sign of the coordinate's direction.

    Examples
    --------
    >>> resolve_period(np.arange(0.0, 360.0, 90.0), None, "'lon'")
    np.float64(360.0)
    >>> resolve_period(np.array([270.0, 180.0, 90.0, 0.0]), 360.0, "'lon'")
    -360.0
    """
    n = len(values)
    x = values.astype(np.float64) if values.dtype.kind in "iu" else values
    if period is None:
        # Inferred here, in the coordinate's own units, and not left to the engine: a spherical
        # longitude is converted to radians afterwards, where a uniform degree grid need not
        # stay exactly uniform.
        return inferred_period(np.diff(x) if n >= 2 else x[:0], n, f"dim {label}")
    span = x[-1] - x[0] if n else 0
    if not abs(span) < period:
        raise OptionError(
            "periodic",
            f"periodic period of dim {label} is {period!r}, but its coordinate already spans "
            f"{float(abs(span))!r} (from {float(x[0])!r} to {float(x[-1])!r}); the period must be "
            "longer than that",
        )
    return -period if span < 0 else period


def coordinate_units(coord: xr.DataArray | None, kind: CoordKind, datetime_unit: str) -> str | None:
    """The units of a dim's numbers: the coordinate's ``units`` attribute, or the datetime unit."""
    if kind in ("datetime", "cftime"):
        return _UNIT_ATTR[datetime_unit]
    if coord is None:
        return None
    units = coord.attrs.get("units")
    return str(units) if units not in (None, "") else None


def dim_spacing(
    obj: xr.DataArray | xr.Dataset,
    dim: Hashable,
    *,
    datetime_unit: str = "s",
    periodic: bool = False,
    period: Any = None,
    coord_name: Hashable | None = None,
) -> DimSpacing:
    """The spacing record of ``dim``: coordinate numbers, kind, units and period.

    Parameters
    ----------
    obj
        The DataArray or Dataset that owns the dim.
    dim
        A dim of ``obj``.
    datetime_unit
        Unit for datetime64 / timedelta64 / cftime coordinates.
    periodic, period
        Whether the dim wraps around, and its period in the coordinate's units (``None``: ``n``
        times the step of a uniform coordinate; a dim without coordinate has period ``n``).
    coord_name
        Take the numbers from this 1-D coordinate along ``dim`` instead of the dimension
        coordinate (the spherical geometry uses it for a latitude that is not the dim's own
        coordinate).

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset(coords={"x": ("x", [0.0, 1.0, 3.0], {"units": "m"})})
    >>> s = dim_spacing(ds, "x")
    >>> s.values, s.kind, s.units
    (array([0., 1., 3.]), 'numeric', 'm')
    >>> dim_spacing(ds, "x", periodic=True, period=4.0).period
    4.0
    """
    label = repr(dim)
    coord = dimension_coordinate(obj, dim) if coord_name is None else obj.coords[coord_name]
    if coord is None:
        values: np.ndarray = np.arange(obj.sizes[dim])
        kind: CoordKind = "none"
    else:
        values, kind = coordinate_numbers(coord.values, datetime_unit=datetime_unit, label=label)
    units = coordinate_units(coord, kind, datetime_unit)
    if not periodic:
        return DimSpacing(dim, values, kind, units)
    number = period_number(period, kind=kind, datetime_unit=datetime_unit, label=label)
    if number is None and kind == "none":
        number = len(values) * np.float64(1.0)  # step 1, period n (one point included)
    return DimSpacing(dim, values, kind, units, True, resolve_period(values, number, label))
