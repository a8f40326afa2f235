"""Curvilinear spherical grids: derivatives per metre from 2-D latitude/longitude coordinates.

For ``lat(y, x)`` and ``lon(y, x)`` in degrees over two grid dims (NEMO, MOM6, ROMS and WRF
style grids) on a sphere of radius ``R`` (default :data:`daskgrad.core.options.DEFAULT_RADIUS`):

* **grid components** (:func:`grid_components`): the derivative along each grid line per metre
  of great-circle distance. The coordinate of a grid line is the cumulative great-circle
  distance between consecutive points, starting at 0 (:func:`grid_distance`); the derivative
  is then ``numpy.gradient`` with that N-D coordinate, line by line (:mod:`daskgrad.core.ndcoords`).
* **geographic components** (:func:`geographic_components`): the eastward and northward
  derivatives. With ``i, j`` the grid indices, the local map ``(i, j) -> (x, y) = (R cos(lat)
  lon, R lat)`` (angles in radians) has the Jacobian ``[[x_i, x_j], [y_i, y_j]]``, and the chain
  rule ``f_i = f_x x_i + f_y y_i``, ``f_j = f_x x_j + f_y y_j`` is solved per point (a 2x2
  inverse), so non-orthogonal grids are handled. ``f_i, f_j`` and ``lat_i, lat_j`` are
  ``daskgrad`` gradients with unit step along the grid dims; ``lon_i, lon_j`` are the same
  formulas written on the longitude *differences* wrapped into (-180, 180], so a seam (a jump
  of 360 degrees between neighbours) does not break them. Grid dims listed in ``periodic`` wrap
  around (a global grid whose x closes on itself).

Where ``cos(lat) = 0`` (a grid point on a pole) or the grid folds (a zero Jacobian), the
geographic components are inf or NaN: there is no east there.

Everything is lazy for dask inputs (values, latitude or longitude): nothing is computed when
the functions are called.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dask.array as da
import numpy as np

from daskgrad.core.gradient import _as_array, differentiate_axes, gradient
from daskgrad.core.options import DEFAULT_RADIUS, check_edge_order, check_radius
from daskgrad.core.spacing import axis_spacing

__all__ = ["geographic_components", "grid_components", "grid_distance"]


def _xp(*arrays: Any) -> Any:
    """``dask.array`` when any argument is a dask array, else ``numpy``."""
    return da if any(isinstance(a, da.Array) for a in arrays) else np


def _take(a: Any, axis: int, start: int | None, stop: int | None) -> Any:
    key = [slice(None)] * a.ndim
    key[axis] = slice(start, stop)
    return a[tuple(key)]


def _check_lat_lon(lat: Any, lon: Any) -> tuple[Any, Any]:
    lat, lon = _as_array(lat), _as_array(lon)
    if lat.shape != lon.shape:
        raise ValueError(
            f"lat and lon must have the same shape, got lat {lat.shape} and lon {lon.shape}"
        )
    for name, a in (("lat", lat), ("lon", lon)):
        if np.dtype(a.dtype).kind not in "iuf":
            raise TypeError(f"{name} must hold real numbers in degrees, got dtype {a.dtype}")
    if not isinstance(lat, da.Array) and not (np.abs(lat) <= 90).all():
        raise ValueError(
            f"lat must be in degrees within [-90, 90], got values from {np.min(lat)!r} to "
            f"{np.max(lat)!r}"
        )
    return lat, lon


def grid_distance(lat: Any, lon: Any, axis: int, radius: float = DEFAULT_RADIUS) -> Any:
    """Cumulative great-circle distance along ``axis`` of a latitude/longitude grid, in metres.

    The distance between consecutive points uses the atan2 form of the great-circle formula
    (accurate for tiny and near-antipodal separations, indifferent to a longitude seam); the
    first point of every line is at 0.

    Parameters
    ----------
    lat, lon
        Latitude and longitude in degrees, of the same shape (numpy or dask; 2-D for a grid).
    axis
        The axis of ``lat``/``lon`` along which to accumulate.
    radius
        The sphere's radius in metres.

    Returns
    -------
    array
        The distance coordinate, shaped like ``lat`` (lazy, with ``lat``'s chunks, for dask;
        the sum runs on one chunk along ``axis`` so its bits are numpy's).

    Examples
    --------
    >>> lat = np.zeros((1, 3))
    >>> lon = np.array([[179.0, -180.0, -179.0]])
    >>> d = grid_distance(lat, lon, axis=1, radius=180 / np.pi)  # one degree is one metre
    >>> np.round(d, 12).tolist()
    [[0.0, 1.0, 2.0]]
    """
    lat, lon = _check_lat_lon(lat, lon)
    radius = check_radius(radius)
    if not isinstance(axis, (int, np.integer)) or not -lat.ndim <= axis < lat.ndim:
        raise ValueError(f"axis must be an axis of lat/lon (ndim {lat.ndim}), got {axis!r}")
    axis = int(axis) % lat.ndim
    xp = _xp(lat, lon)
    phi, lam = xp.deg2rad(lat.astype(np.float64)), xp.deg2rad(lon.astype(np.float64))
    phi1, phi2 = _take(phi, axis, None, -1), _take(phi, axis, 1, None)
    dlam = _take(lam, axis, 1, None) - _take(lam, axis, None, -1)
    cos1, cos2, sin1, sin2 = xp.cos(phi1), xp.cos(phi2), xp.sin(phi1), xp.sin(phi2)
    num = xp.hypot(cos2 * xp.sin(dlam), cos1 * sin2 - sin1 * cos2 * xp.cos(dlam))
    den = sin1 * sin2 + cos1 * cos2 * xp.cos(dlam)
    step = radius * xp.arctan2(num, den)
    if xp is da:  # one chunk along the axis: dask's blockwise cumsum would add in another order
        step = step.rechunk({axis: -1})
    distance = xp.concatenate(
        [xp.zeros_like(_take(phi, axis, 0, 1)), xp.cumsum(step, axis=axis)], axis=axis
    )
    if xp is da:
        distance = distance.rechunk(lat.chunks if isinstance(lat, da.Array) else lon.chunks)
    return distance


def _grid_axes(values: Any, axes: Any, lat: Any) -> tuple[int, int]:
    if (
        not isinstance(axes, Sequence)
        or len(axes) != 2
        or not all(isinstance(a, (int, np.integer)) for a in axes)
    ):
        raise ValueError(f"axes must be two ints (the values' grid axes), got {axes!r}")
    ay, ax = (int(a) % values.ndim if -values.ndim <= a < values.ndim else None for a in axes)
    if ay is None or ax is None or ay == ax:
        raise ValueError(
            f"axes must be two distinct axes of the values (ndim {values.ndim}), got {axes!r}"
        )
    if lat.ndim != 2 or lat.shape != (values.shape[ay], values.shape[ax]):
        raise ValueError(
            f"lat/lon have shape {lat.shape} but the values' grid axes {tuple(axes)} have "
            f"lengths {(values.shape[ay], values.shape[ax])}; give 2-D lat/lon over (axes[0], "
            "axes[1])"
        )
    if np.dtype(values.dtype).kind not in "iubf":
        raise TypeError(f"values must be real numbers, got dtype {values.dtype}")
    return ay, ax


def _on_values_axes(a: Any, ndim: int, ay: int, ax: int) -> Any:
    """A ``(ny, nx)`` array placed on the values' axes ``ay, ax``, with length 1 elsewhere."""
    if ay > ax:
        a = a.T
    shape = [1] * ndim
    shape[min(ay, ax)], shape[max(ay, ax)] = a.shape
    return a.reshape(shape)


def grid_components(
    values: Any,
    lat: Any,
    lon: Any,
    axes: Sequence[int],
    radius: float = DEFAULT_RADIUS,
    edge_order: int = 1,
) -> tuple[Any, Any]:
    """Derivatives along the two grid dims per metre of great-circle distance.

    Each line along a grid dim is differentiated as ``numpy.gradient(line, distance)`` would,
    with ``distance`` the line's :func:`grid_distance`, bit for bit.

    Parameters
    ----------
    values
        numpy or dask array with the grid dims at ``axes``.
    lat, lon
        2-D latitude and longitude in degrees over ``(axes[0], axes[1])``.
    axes
        The values' axes of the two grid dims ``(ay, ax)``.
    radius
        The sphere's radius in metres.
    edge_order
        1 or 2.

    Returns
    -------
    tuple
        ``(d/d(grid dim axes[0]), d/d(grid dim axes[1]))`` per metre.

    Examples
    --------
    >>> lat, lon = np.meshgrid([0.0, 1.0, 2.0], [10.0, 11.0, 12.0, 13.0], indexing="ij")
    >>> dy, dx = grid_components(lat * 2.0, lat, lon, axes=(0, 1), radius=180 / np.pi)
    >>> np.round(dy, 12).tolist()[0], np.abs(dx).max()
    ([2.0, 2.0, 2.0, 2.0], np.float64(0.0))
    """
    values = _as_array(values)
    lat, lon = _check_lat_lon(lat, lon)
    ay, ax = _grid_axes(values, axes, lat)
    edge_order = check_edge_order(edge_order)
    coords = [
        _on_values_axes(grid_distance(lat, lon, k, radius), values.ndim, ay, ax) for k in (0, 1)
    ]
    dy, dx = gradient(values, spacing=coords, dim=(ay, ax), edge_order=edge_order)
    return dy, dx


def _wrapped_index_derivative(lon: Any, axis: int, edge_order: int, periodic: bool) -> Any:
    """numpy.gradient of ``lon`` (degrees) along ``axis`` with unit step, in radians, written
    on the differences wrapped into (-180, 180] so that a seam does not break it."""
    xp = _xp(lon)
    n = lon.shape[axis]
    if periodic:
        nxt = xp.concatenate([_take(lon, axis, 1, None), _take(lon, axis, 0, 1)], axis=axis)
    else:
        nxt = _take(lon, axis, 1, None)
    diff = nxt - _take(lon, axis, None, n if periodic else -1)
    diff = xp.deg2rad(diff - 360.0 * xp.ceil((diff - 180.0) / 360.0))  # into (-180, 180]
    if periodic:  # every point central: (d[k-1] + d[k]) / 2, d[-1] the seam's difference
        prev = xp.concatenate([_take(diff, axis, -1, None), _take(diff, axis, None, -1)], axis=axis)
        return (prev + diff) / 2.0
    m = n - 1  # differences along the axis (n >= edge_order + 1 was checked with the values)

    def d(k: int) -> Any:
        return _take(diff, axis, k, k + 1)

    if edge_order == 1:
        first, last = d(0), d(m - 1)
    else:  # (-3 f0 + 4 f1 - f2) / 2 = (3 d0 - d1) / 2, and the mirror image at the far end
        first, last = (3.0 * d(0) - d(1)) / 2.0, (3.0 * d(m - 1) - d(m - 2)) / 2.0
    interior = (_take(diff, axis, None, -1) + _take(diff, axis, 1, None)) / 2.0
    parts = [first, interior, last] if n > 2 else [first, last]
    return xp.concatenate(parts, axis=axis)


def _unit_spacing(axis: int, size: int, edge_order: int, periodic: bool, label: str):
    return axis_spacing(
        None, axis=axis, size=size, edge_order=edge_order, periodic=periodic, label=label
    )


def _periodic_axes(periodic: Any, ay: int, ax: int, ndim: int) -> set[int]:
    if periodic is None:
        return set()
    items = [periodic] if isinstance(periodic, (int, np.integer)) else list(periodic)
    out = set()
    for p in items:
        if not isinstance(p, (int, np.integer)) or (
            int(p) % ndim if -ndim <= p < ndim else None
        ) not in (ay, ax):
            raise ValueError(
                f"periodic must name grid axes among axes=({ay}, {ax}), got {periodic!r}"
            )
        out.add(int(p) % ndim)
    return out


def geographic_components(
    values: Any,
    lat: Any,
    lon: Any,
    axes: Sequence[int],
    radius: float = DEFAULT_RADIUS,
    edge_order: int = 1,
    periodic: Iterable[int] | int | None = None,
    nan_policy: str = "propagate",
) -> tuple[Any, Any]:
    """Eastward and northward derivatives per metre on a curvilinear latitude/longitude grid.

    Parameters
    ----------
    values
        numpy or dask array with the grid dims at ``axes``.
    lat, lon
        2-D latitude and longitude in degrees over ``(axes[0], axes[1])`` (numpy or dask).
        Longitudes may jump by 360 degrees between neighbours (a seam).
    axes
        The values' axes of the two grid dims ``(ay, ax)``.
    radius
        The sphere's radius in metres.
    edge_order
        1 or 2 (the one-sided rule at non-periodic grid edges).
    periodic
        Grid axes (values' axes, among ``axes``) that wrap around, e.g. the x of a global grid.
    nan_policy
        For the values' derivatives along the grid indices, as in :func:`daskgrad.gradient`:
        ``"one-sided"`` stops the differences at NaN (a coastline) instead of spreading it.
        The grid's own derivatives have no NaN.

    Returns
    -------
    tuple
        ``(d/d(east), d/d(north))`` per metre, shaped like ``values`` (lazy for dask).

    Examples
    --------
    A regular grid: east is along the x index and north along the y index.

    >>> lat, lon = np.meshgrid([0.0, 1.0, 2.0], [10.0, 11.0, 12.0, 13.0], indexing="ij")
    >>> de, dn = geographic_components(lon + 2.0 * lat, lat, lon, axes=(0, 1), radius=180 / np.pi)
    >>> np.round(dn, 12)[:, 0].tolist(), np.round(de * np.cos(np.deg2rad(lat)), 12)[0].tolist()
    ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0])
    """
    values = _as_array(values)
    lat, lon = _check_lat_lon(lat, lon)
    ay, ax = _grid_axes(values, axes, lat)
    radius = check_radius(radius)
    edge_order = check_edge_order(edge_order)
    wrap = _periodic_axes(periodic, ay, ax, values.ndim)
    ndim = values.ndim
    f_i, f_j = differentiate_axes(
        values,
        [_unit_spacing(a, values.shape[a], edge_order, a in wrap, f"dim {a}") for a in (ay, ax)],
        nan_policy,
    )
    lat64 = lat.astype(np.float64)
    phi = _xp(lat).deg2rad(lat64)
    # Grid axes of lat/lon are (0, 1) = (ay, ax).
    phi_i, phi_j = differentiate_axes(
        phi,
        [
            _unit_spacing(k, lat.shape[k], edge_order, a in wrap, f"dim {a}")
            for k, a in enumerate((ay, ax))
        ],
    )
    lon64 = lon.astype(np.float64)
    lam_i = _wrapped_index_derivative(lon64, 0, edge_order, ay in wrap)
    lam_j = _wrapped_index_derivative(lon64, 1, edge_order, ax in wrap)
    cos_phi = _xp(phi).cos(phi)
    x_i, x_j = radius * cos_phi * lam_i, radius * cos_phi * lam_j
    y_i, y_j = radius * phi_i, radius * phi_j
    det = x_i * y_j - x_j * y_i
    place = [_on_values_axes(a, ndim, ay, ax) for a in (x_i, x_j, y_i, y_j, det)]
    if isinstance(values, da.Array):  # the Jacobian follows the values' chunks on the grid dims
        chunks = tuple(values.chunks[d] if d in (ay, ax) else (1,) for d in range(ndim))
        place = [da.asarray(p).rechunk(chunks) for p in place]
    x_i, x_j, y_i, y_j, det = place
    with np.errstate(divide="ignore", invalid="ignore"):  # on a pole: no east, inf/NaN
        d_east = (f_i * y_j - f_j * y_i) / det
        d_north = (x_i * f_j - x_j * f_i) / det
    return d_east, d_north
