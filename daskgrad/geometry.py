"""Spherical geometry: latitude/longitude derivatives per metre on a sphere.

With angles in radians and a sphere of radius ``R``,

* ``d/dy = 1/R d/dlat``,
* ``d/dx = 1/(R cos(lat)) d/dlon``.

The latitude and longitude coordinates are found by their CF attributes first
(``standard_name`` ``latitude``/``longitude``, then ``units`` such as ``degrees_north`` /
``degrees_east``), then by their names (``lat``/``latitude``, ``lon``/``longitude``, any case).
They are 1-D coordinates in degrees (:class:`SphericalAxes`), or both 2-D over the same two grid
dims, a curvilinear grid (:class:`CurvilinearAxes`, differentiated by
:mod:`daskgrad.core.curvilinear`). Angles are converted with ``numpy.deg2rad``, the period of a
periodic longitude too (360 degrees becomes 2 pi).

Real files, as they come:

* **Each variable its own grid.** The planner asks per variable, on ``ds[var]``, whose
  coordinates are those on the variable's dims only: a ROMS ``u(eta_u, xi_u)`` finds
  ``lat_u``/``lon_u``, a WRF ``U`` on ``west_east_stag`` finds ``XLAT_U``/``XLONG_U``, a MOM6
  ``uo(yh, xq)`` finds ``geolat_u``/``geolon_u`` (never the tracer points' coordinates, half a
  cell away).
* **2-D before 1-D.** Where a variable has both 2-D latitude/longitude over two of its dims and
  1-D ones, the 2-D pair is the grid: models write the 1-D ones as nominal axes (MOM6's
  ``xh``/``yh``, wrong on a tripolar grid's north).
* **A time dim.** A latitude/longitude with more than two dims (WRF's ``XLAT(Time,
  south_north, west_east)``) is a grid over its last two dims; the leading dims are
  :attr:`CurvilinearAxes.lead`, along which the grid must not move
  (:func:`daskgrad.grids.fixed_in_time` checks it).

Pure logic on coordinates only: no dask, no data.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import xarray as xr

from daskgrad.coords import DimSpacing
from daskgrad.core._compat import array_module

__all__ = [
    "CurvilinearAxes",
    "SphericalAxes",
    "divide_along",
    "find_lat_lon",
    "find_variable_axes",
    "lon_metric",
    "match_level",
    "to_radians",
]


_LAT_UNITS = {
    "degrees_north", "degree_north", "degrees_n", "degree_n", "degreesn", "degreen",
}  # fmt: skip
_LON_UNITS = {
    "degrees_east", "degree_east", "degrees_e", "degree_e", "degreese", "degreee",
}  # fmt: skip
_DEGREE_UNITS = {"degrees", "degree", "deg", "°"} | _LAT_UNITS | _LON_UNITS
# Names models give them (NEMO, MOM6, ROMS, WRF) when attributes say nothing.
_LAT_NAMES = {
    "lat", "latitude", "nav_lat", "geolat", "geolat_u", "geolat_v", "geolat_c",
    "lat_rho", "lat_u", "lat_v", "lat_psi", "xlat", "xlat_u", "xlat_v",
}  # fmt: skip
_LON_NAMES = {
    "lon", "longitude", "nav_lon", "geolon", "geolon_u", "geolon_v", "geolon_c",
    "lon_rho", "lon_u", "lon_v", "lon_psi", "xlong", "xlong_u", "xlong_v",
}  # fmt: skip

Role = Literal["lat", "lon"]


@dataclass(frozen=True)
class SphericalAxes:
    """Where latitude and longitude live in a Dataset or DataArray.

    Attributes
    ----------
    lat, lon
        Names of the 1-D latitude and longitude coordinates (``None`` when absent).
    lat_dim, lon_dim
        The dims those coordinates run along.
    """

    lat: Hashable | None
    lat_dim: Hashable | None
    lon: Hashable | None
    lon_dim: Hashable | None

    def role(self, dim: Hashable) -> Role | None:
        """``"lat"``, ``"lon"`` or ``None`` for a dim."""
        if dim == self.lat_dim:
            return "lat"
        if dim == self.lon_dim:
            return "lon"
        return None


@dataclass(frozen=True)
class CurvilinearAxes:
    """2-D latitude and longitude over two grid dims (NEMO, MOM6, ROMS, WRF style).

    Attributes
    ----------
    lat, lon
        Names of the latitude and longitude coordinates (degrees).
    dims
        The two grid dims, in the coordinates' order (the last two of ``lat.dims``).
    lead
        The coordinates' other dims, before the grid dims (WRF's ``Time``): the grid must be
        the same along them.
    """

    lat: Hashable
    lon: Hashable
    dims: tuple[Hashable, Hashable]
    lead: tuple[Hashable, ...] = ()


def _text(value: Any) -> str:
    return str(value).strip().lower() if value is not None else ""


def match_level(name: Hashable, coord: xr.DataArray, role: Role) -> int | None:
    """How surely ``coord`` is a latitude (``role="lat"``) or longitude: 0 by CF
    ``standard_name``, 1 by CF ``units``, 2 by its name; ``None``: it is not one.

    Examples
    --------
    >>> import xarray as xr
    >>> match_level("XLAT_U", xr.DataArray([1.0], attrs={"units": "degree_north"}), "lat")
    1
    >>> match_level("lat_u", xr.DataArray([1.0]), "lat"), match_level("h", xr.DataArray([1.0]), "lat")
    (2, None)
    """
    standard = "latitude" if role == "lat" else "longitude"
    if _text(coord.attrs.get("standard_name")) == standard:
        return 0
    if _text(coord.attrs.get("units")) in (_LAT_UNITS if role == "lat" else _LON_UNITS):
        return 1
    if isinstance(name, str) and name.lower() in (_LAT_NAMES if role == "lat" else _LON_NAMES):
        return 2
    return None


def _candidates(obj: xr.DataArray | xr.Dataset, role: Role) -> list[tuple[int, Hashable, Any]]:
    found = []
    for name, coord in obj.coords.items():
        level = match_level(name, coord, role)
        if level is not None:
            found.append((level, name, coord))
    return found


def _check_degrees(name: Hashable, coord: xr.DataArray, what: str) -> None:
    units = coord.attrs.get("units")
    if units is not None and _text(units) not in _DEGREE_UNITS:
        raise ValueError(
            f"geometry='spherical' needs {what} in degrees; coordinate {name!r} has units={units!r}"
        )


def _grid_pair(obj: xr.DataArray | xr.Dataset) -> CurvilinearAxes | None:
    """A latitude and a longitude with two or more dims, ending in the same two grid dims."""
    best = []
    for role in ("lat", "lon"):
        found = [(lv, n, c) for lv, n, c in _candidates(obj, role) if c.ndim >= 2]
        if not found:
            return None
        top = min(lv for lv, _, _ in found)
        chosen = [(n, c) for lv, n, c in found if lv == top]
        if len(chosen) > 1:
            what = "latitude" if role == "lat" else "longitude"
            raise ValueError(
                f"geometry='spherical' needs one 1-D or 2-D {what} coordinate; found "
                f"{[(n, c.dims) for n, c in chosen]}"
            )
        best.append(chosen[0])
    (lat, lat_c), (lon, lon_c) = best
    if set(lat_c.dims) != set(lon_c.dims) or set(lat_c.dims[-2:]) != set(lon_c.dims[-2:]):
        raise ValueError(
            f"geometry='spherical': latitude {lat!r} has dims {lat_c.dims} and longitude "
            f"{lon!r} has dims {lon_c.dims}; a curvilinear grid has both over the same two dims"
        )
    _check_degrees(lat, lat_c, "latitude")
    _check_degrees(lon, lon_c, "longitude")
    grid = lat_c.dims[-2:]
    return CurvilinearAxes(lat, lon, (grid[0], grid[1]), tuple(lat_c.dims[:-2]))


def _find(
    obj: xr.DataArray | xr.Dataset, role: Role
) -> tuple[Hashable | None, tuple[Hashable, ...] | None]:
    what = "latitude" if role == "lat" else "longitude"
    candidates = _candidates(obj, role)
    if not candidates:
        return None, None
    best = min(level for level, _, _ in candidates)
    chosen = [(name, coord) for level, name, coord in candidates if level == best]
    one_d = [(name, coord) for name, coord in chosen if coord.ndim == 1]
    if not one_d:
        two_d = [(name, coord) for name, coord in chosen if coord.ndim >= 2]
        if len(two_d) != 1:
            name, coord = chosen[0]
            raise ValueError(
                f"geometry='spherical' needs one 1-D or 2-D {what} coordinate; found "
                f"{[(n, c.dims) for n, c in chosen]}"
            )
        one_d = two_d
    if len(one_d) > 1:
        # Prefer a dimension coordinate over other coordinates along a dim.
        dim_coords = [(n, c) for n, c in one_d if c.dims == (n,)]
        if len(dim_coords) != 1:
            names = [n for n, _ in one_d]
            raise ValueError(
                f"geometry='spherical' found several {what} coordinates {names}; "
                "keep one, or mark it with the attribute standard_name="
                f"{'latitude' if role == 'lat' else 'longitude'!r}"
            )
        one_d = dim_coords
    name, coord = one_d[0]
    _check_degrees(name, coord, what)
    return name, coord.dims


def find_lat_lon(obj: xr.DataArray | xr.Dataset) -> SphericalAxes | CurvilinearAxes:
    """Find the latitude and longitude coordinates of ``obj`` and their dims.

    Both 1-D give :class:`SphericalAxes`; both 2-D (or more, with leading dims such as a time)
    over the same two grid dims give :class:`CurvilinearAxes`, and win over 1-D ones.

    Raises
    ------
    ValueError
        When neither is found, when one is 1-D and the other 2-D, when they are ambiguous, not
        in degrees, or outside [-90, 90] (latitude).

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset(coords={"latitude": [0.0, 10.0], "x": ("x", [0, 90], {"units": "degrees_east"})})
    >>> find_lat_lon(ds)
    SphericalAxes(lat='latitude', lat_dim='latitude', lon='x', lon_dim='x')
    >>> import numpy as np
    >>> grid = xr.Dataset(coords={"nav_lat": (("y", "x"), np.zeros((2, 3))),
    ...                           "nav_lon": (("y", "x"), np.zeros((2, 3)))})
    >>> find_lat_lon(grid)
    CurvilinearAxes(lat='nav_lat', lon='nav_lon', dims=('y', 'x'), lead=())
    """
    found = find_variable_axes(obj)
    if found is None:
        raise ValueError(
            "geometry='spherical' found no latitude or longitude coordinate; mark them with "
            "standard_name 'latitude'/'longitude' or units 'degrees_north'/'degrees_east', or "
            f"name them lat/lon; the coordinates are {list(obj.coords)}"
        )
    return found


def find_variable_axes(obj: xr.DataArray | xr.Dataset) -> SphericalAxes | CurvilinearAxes | None:
    """:func:`find_lat_lon`, but ``None`` where ``obj`` has no latitude and no longitude.

    Given ``ds[var]`` it finds the grid of that variable: the coordinates on its own dims.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> deg = {"units": "degree_north"}
    >>> ds = xr.Dataset(
    ...     {"u": (("eta_u", "xi_u"), np.zeros((2, 2))), "t": (("eta_rho", "xi_rho"), np.zeros((2, 3)))},
    ...     coords={"lat_rho": (("eta_rho", "xi_rho"), np.zeros((2, 3)), deg),
    ...             "lon_rho": (("eta_rho", "xi_rho"), np.zeros((2, 3))),
    ...             "lat_u": (("eta_u", "xi_u"), np.zeros((2, 2)), deg),
    ...             "lon_u": (("eta_u", "xi_u"), np.zeros((2, 2)))})
    >>> find_variable_axes(ds["u"])
    CurvilinearAxes(lat='lat_u', lon='lon_u', dims=('eta_u', 'xi_u'), lead=())
    >>> find_variable_axes(ds["t"].isel(xi_rho=0, drop=True).drop_vars(["lat_rho", "lon_rho"]))
    """
    pair = _grid_pair(obj)
    if pair is not None:
        _check_latitude_range(obj, pair.lat)
        return pair
    lat, lat_dims = _find(obj, "lat")
    lon, lon_dims = _find(obj, "lon")
    if lat is None and lon is None:
        return None
    if lat is not None:
        _check_latitude_range(obj, lat)
    if (lat_dims and len(lat_dims) >= 2) or (lon_dims and len(lon_dims) >= 2):
        if lat is None or lon is None or lat_dims is None or lon_dims is None:
            raise ValueError(
                "geometry='spherical': a 2-D (curvilinear) grid needs both 2-D latitude and "
                f"longitude; found latitude {lat!r} and longitude {lon!r}"
            )
        if len(lat_dims) < 2 or set(lat_dims) != set(lon_dims):
            raise ValueError(
                f"geometry='spherical': latitude {lat!r} has dims {lat_dims} and longitude "
                f"{lon!r} has dims {lon_dims}; a curvilinear grid has both over the same two dims"
            )
        return CurvilinearAxes(lat, lon, (lat_dims[-2], lat_dims[-1]), tuple(lat_dims[:-2]))
    lat_dim = lat_dims[0] if lat_dims else None
    lon_dim = lon_dims[0] if lon_dims else None
    if lat is not None and lat_dim == lon_dim:
        raise ValueError(
            f"geometry='spherical': latitude {lat!r} and longitude {lon!r} run along the "
            f"same dim {lat_dim!r}"
        )
    return SphericalAxes(lat, lat_dim, lon, lon_dim)


def _check_latitude_range(obj: xr.DataArray | xr.Dataset, lat: Hashable) -> None:
    coord = obj.coords[lat]
    if coord.ndim >= 2 and coord.chunks is not None:
        return  # a lazy grid stays lazy (daskgrad.core.curvilinear checks numpy ones)
    values = np.asarray(coord.values)
    if values.dtype.kind not in "iuf" or not (np.abs(values) <= 90).all():
        raise ValueError(
            f"geometry='spherical' needs latitude {lat!r} in degrees within [-90, 90]; "
            f"got values from {values.min()!r} to {values.max()!r}"
        )


def to_radians(spacing: DimSpacing) -> DimSpacing:
    """The spacing of a latitude or longitude dim with its coordinate (and period) in radians.

    The units become ``"m"``: the metric of the sphere turns radians into metres.

    Examples
    --------
    >>> from daskgrad.coords import DimSpacing
    >>> s = DimSpacing("lon", np.array([0.0, 180.0]), "numeric", "degrees_east", True, 360.0)
    >>> r = to_radians(s)
    >>> r.values[1] == np.pi, r.period == 2 * np.pi, r.units
    (np.True_, np.True_, 'm')
    """
    values = spacing.values
    if spacing.kind not in ("numeric",) or values.dtype.kind not in "iuf":
        raise ValueError(
            f"geometry='spherical' needs a numeric coordinate for dim {spacing.dim!r}; got "
            f"dtype {values.dtype}"
        )
    period = None if spacing.period is None else np.deg2rad(spacing.period)
    return replace(spacing, values=np.deg2rad(values), units="m", period=period)


def lon_metric(lat_degrees: Any, radius: float) -> np.ndarray:
    """``R cos(lat)``: the divisor that turns d/dlon (per radian) into d/dx (per metre).

    Examples
    --------
    >>> lon_metric([0.0, 60.0], 2.0)
    array([2., 1.])
    """
    return radius * np.cos(np.deg2rad(np.asarray(lat_degrees, dtype=np.float64)))


def divide_along(values: Any, denom: np.ndarray, axis: int) -> Any:
    """``values / denom`` with the 1-D host array ``denom`` running along ``axis``.

    ``denom`` is cast to the real dtype of ``values`` first, so float32 values stay float32;
    the array module (NumPy or CuPy) is the values' own. The one division of the spherical
    metric, for a whole array and for one block alike.

    Examples
    --------
    >>> divide_along(np.ones((2, 2), np.float32), np.array([1.0, 4.0]), 0)
    array([[1.  , 1.  ],
           [0.25, 0.25]], dtype=float32)
    """
    real = np.zeros((), values.dtype).real.dtype
    shape = [1] * values.ndim
    shape[axis] = -1
    xp = array_module(values)
    return values / xp.asarray(denom.astype(real, copy=False)).reshape(shape)
