"""numpy oracles for the layout tests: plain numpy.gradient calls, line by line and run by run.

* ``wet_runs``: a masked derivative as numpy.gradient of every run of wet (and non-NaN) points
  along the axis, alone, with the run's own coordinates; NaN elsewhere (land, short runs).
* ``spherical``: d/dlat and d/dlon on a 1-D latitude/longitude grid, as numpy.gradient in
  radians divided by the sphere's metric (a periodic longitude padded with its wrapped points).
"""

from __future__ import annotations

import numpy as np

from daskgrad.core.options import DEFAULT_RADIUS

R = DEFAULT_RADIUS


def wet_runs(values, wet, axis: int, coord=None, edge_order: int = 1) -> np.ndarray:
    """numpy.gradient run by run along ``axis`` over the points where ``wet`` (broadcast) is
    True and the value is not NaN; NaN elsewhere. Integer values count in float64."""
    values = np.asarray(values)
    dtype = values.dtype if values.dtype.kind in "fc" else np.dtype(np.float64)
    f = np.where(np.broadcast_to(wet, values.shape), values.astype(dtype), np.nan).astype(dtype)
    n = f.shape[axis]
    x = np.arange(n) if coord is None else np.asarray(coord)
    moved = np.moveaxis(f, axis, -1)
    out = np.full(moved.shape, np.nan, dtype)
    for index in np.ndindex(moved.shape[:-1]):
        line = moved[index]
        ok = ~np.isnan(line)
        start = 0
        while start < n:
            if not ok[start]:
                start += 1
                continue
            stop = start
            while stop < n and ok[stop]:
                stop += 1
            if stop - start >= edge_order + 1:
                out[(*index, slice(start, stop))] = np.gradient(
                    line[start:stop], x[start:stop], edge_order=edge_order
                )
            start = stop
    return np.moveaxis(out, -1, axis)


def spherical(values, lat, lon, lat_axis: int, lon_axis: int, period: float | None = 360.0):
    """``(d/dy, d/dx)`` per metre of 1-D spherical lat/lon, by numpy.gradient (bit for bit the
    accessor's: its periodic longitude is the padded array's gradient, trimmed)."""
    values = np.asarray(values)
    phi = np.deg2rad(np.asarray(lat))
    d_lat = np.gradient(values, phi, axis=lat_axis) / R
    lam = np.asarray(lon)
    if period is None:
        d_lon = np.gradient(values, np.deg2rad(lam), axis=lon_axis)
    else:
        first = np.take(values, [0], axis=lon_axis)
        last = np.take(values, [-1], axis=lon_axis)
        padded = np.concatenate([last, values, first], axis=lon_axis)
        rad, p = np.deg2rad(lam), np.deg2rad(period)  # extended in radians, as the engine does
        x = np.concatenate([rad[-1:] - p, rad, rad[:1] + p])
        d_lon = np.gradient(padded, x, axis=lon_axis)
        d_lon = np.take(d_lon, np.arange(1, values.shape[lon_axis] + 1), axis=lon_axis)
    shape = [1] * values.ndim
    shape[lat_axis] = -1
    metric = R * np.cos(np.deg2rad(np.asarray(lat, dtype=np.float64))).reshape(shape)
    return d_lat, d_lon / metric.astype(np.zeros((), values.dtype).real.dtype)
