"""Curvilinear spherical helpers: grid and geographic components from 2-D lat/lon."""

from __future__ import annotations

import itertools
import re

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import assert_bitwise_equal
from test_ndcoords import line_reference

import daskgrad  # noqa: F401  (registers the accessor)
from daskgrad.core.curvilinear import geographic_components, grid_components, grid_distance
from daskgrad.core.options import DEFAULT_RADIUS

R = DEFAULT_RADIUS


def rotated_pole_grid(k: int, pole_lat: float = 40.0, pole_lon: float = -170.0, shear: float = 0.0):
    """lat/lon (degrees) of a regular rotated grid of spacing 2/k degrees, pole at ``pole_lat``.

    The grid is centred on longitude ``pole_lon`` (the default grid spans the dateline).
    ``shear`` tilts the grid's y lines (rotated longitude ``+ shear * rotated latitude``), which
    makes the grid non-orthogonal. Returns the rotated coordinates too (to select the same
    physical interior at every k).
    """
    rlat = np.linspace(-20.0, 20.0, 20 * k + 1)
    rlon = np.linspace(-30.0, 30.0, 30 * k + 1)
    rlat2, rlon2 = np.meshgrid(np.deg2rad(rlat), np.deg2rad(rlon), indexing="ij")
    rlon2 = rlon2 + shear * rlat2
    x, y, z = np.cos(rlat2) * np.cos(rlon2), np.cos(rlat2) * np.sin(rlon2), np.sin(rlat2)
    alpha = np.deg2rad(90.0 - pole_lat)  # tilts the rotated pole (0, 0, 1) down to pole_lat
    x, z = x * np.cos(alpha) + z * np.sin(alpha), -x * np.sin(alpha) + z * np.cos(alpha)
    lat = np.rad2deg(np.arcsin(z))
    lon = np.rad2deg(np.arctan2(y, x)) + pole_lon
    lon = (lon + 180.0) % 360.0 - 180.0
    return lat, lon, *np.meshgrid(rlat, rlon, indexing="ij")


def field(lat, lon):
    """An analytic field and its exact eastward and northward derivatives per metre."""
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    f = np.cos(phi) * np.sin(2 * lam) + np.sin(phi) ** 2
    east = 2 * np.cos(2 * lam) / R  # (1 / (R cos phi)) df/dlam
    north = (-np.sin(phi) * np.sin(2 * lam) + 2 * np.sin(phi) * np.cos(phi)) / R
    return f, east, north


@pytest.mark.parametrize(("edge_order", "shear"), [(1, 0.0), (2, 0.0), (1, 0.6)])
def test_geographic_components_converge_at_second_order_on_a_rotated_pole_grid(edge_order, shear):
    errors = []
    for k in (1, 2, 4):
        lat, lon, rlat, rlon = rotated_pole_grid(k, shear=shear)
        f, east, north = field(lat, lon)
        de, dn = geographic_components(f, lat, lon, axes=(0, 1), edge_order=edge_order)
        inner = (np.abs(rlat) <= 16.0) & (np.abs(rlon) <= 26.0)  # the same points at every k
        assert np.isfinite(de).all() and np.isfinite(dn).all()
        errors.append(max(np.abs(de - east)[inner].max(), np.abs(dn - north)[inner].max()))
    orders = [np.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert all(1.8 <= p <= 2.2 for p in orders), (errors, orders)
    # The rotated grid is not aligned with east: both index directions contribute.
    lat, lon, *_ = rotated_pole_grid(1)
    assert np.abs(np.diff(lon, axis=0)).max() > 1.0


def test_non_orthogonal_grid_is_exact_for_a_field_linear_in_lon_and_lat():
    # A sheared grid (lon depends on both indices), crossing the dateline; f linear in (lon,
    # lat) has exact index derivatives, so the 2x2 solve must give the exact answer.
    i, j = np.meshgrid(np.arange(6.0), np.arange(7.0), indexing="ij")
    lat = 10.0 + 1.5 * i + 0.5 * j
    lon_cont = 176.0 + 1.0 * j + 0.7 * i
    lon = (lon_cont + 180.0) % 360.0 - 180.0
    assert (lon < 0).any() and (lon > 0).any()
    f = 3.0 * np.deg2rad(lon_cont) - 2.0 * np.deg2rad(lat)
    for edge_order in (1, 2):
        de, dn = geographic_components(f, lat, lon, axes=(0, 1), edge_order=edge_order)
        np.testing.assert_allclose(de, 3.0 / (R * np.cos(np.deg2rad(lat))), rtol=1e-12)
        np.testing.assert_allclose(dn, np.full_like(f, -2.0 / R), rtol=1e-12)


def _regular(periodic: bool):
    lat1 = np.arange(-60.0, 61.0, 3.0)
    lon1 = np.arange(0.0, 360.0, 4.0) if periodic else np.arange(-30.0, 50.0, 2.5)
    lat2, lon2 = np.meshgrid(lat1, lon1, indexing="ij")
    rng = np.random.default_rng(7)
    t = np.sin(np.deg2rad(lat2) * 3) * np.cos(np.deg2rad(lon2) * 2) + 0.1 * rng.random(lat2.shape)
    return lat1, lon1, lat2, lon2, t


@pytest.mark.parametrize(("periodic", "edge_order"), [(False, 1), (False, 2), (True, 1), (True, 2)])
def test_regular_grid_as_2d_arrays_matches_the_1d_spherical_accessor(periodic, edge_order):
    lat1, lon1, lat2, lon2, t = _regular(periodic)
    ds = xr.Dataset({"T": (("lat", "lon"), t)}, coords={"lat": lat1, "lon": lon1})
    ref = ds.grad.compute(
        geometry="spherical", edge_order=edge_order, periodic={"lon": 360.0} if periodic else None
    )
    de, dn = geographic_components(
        t, lat2, lon2, axes=(0, 1), edge_order=edge_order, periodic={1} if periodic else None
    )
    for got, want in ((de, ref["dT_dlon"].values), (dn, ref["dT_dlat"].values)):
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * scale)


def test_grid_components_equal_numpy_gradient_with_the_distance_coordinate_bit_for_bit():
    lat, lon, *_ = rotated_pole_grid(1)
    rng = np.random.default_rng(3)
    values = rng.normal(size=(2, *lat.shape))  # (time, y, x)
    for edge_order in (1, 2):
        dy, dx = grid_components(values, lat, lon, axes=(1, 2), edge_order=edge_order)
        for axis, out in ((0, dy), (1, dx)):
            dist = grid_distance(lat, lon, axis)
            assert_bitwise_equal(out, line_reference(values, dist, axis + 1, edge_order))


def haversine(lat1, lon1, lat2, lon2):
    p1, p2, dl = np.deg2rad(lat1), np.deg2rad(lat2), np.deg2rad(lon2 - lon1)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * R * np.arcsin(np.sqrt(a))


def test_grid_distance_is_the_cumulative_great_circle_distance():
    lat, lon, *_ = rotated_pole_grid(2)
    for axis in (0, 1):
        d = grid_distance(lat, lon, axis)
        assert (np.take(d, 0, axis=axis) == 0).all()
        steps = haversine(
            *(np.take(a, range(lat.shape[axis] - 1), axis=axis) for a in (lat, lon)),
            *(np.take(a, range(1, lat.shape[axis]), axis=axis) for a in (lat, lon)),
        )
        np.testing.assert_allclose(np.diff(d, axis=axis), steps, rtol=1e-9)
    # Along the equator, 1 degree of longitude is R * pi / 180, across the seam too.
    d = grid_distance(np.zeros((1, 4)), np.array([[178.0, 179.0, 180.0, -179.0]]), axis=1)
    np.testing.assert_allclose(d[0], R * np.deg2rad([0.0, 1.0, 2.0, 3.0]), rtol=1e-13)


def test_a_longitude_seam_changes_nothing():
    # The rotated grid moved so that it crosses the dateline; lon given in (-180, 180] (with a
    # jump of 360 between neighbours) and the same grid given continuously.
    lat, lon, *_ = rotated_pole_grid(1, pole_lon=180.0)
    lon_cont = np.where(lon < 0, lon + 360.0, lon)
    assert np.abs(np.diff(lon, axis=1)).max() > 300  # a seam inside the grid
    f, east, _ = field(lat, lon)
    for edge_order in (1, 2):
        seam = geographic_components(f, lat, lon, axes=(0, 1), edge_order=edge_order)
        cont = geographic_components(f, lat, lon_cont, axes=(0, 1), edge_order=edge_order)
        for a, b in zip(seam, cont):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
        inner = (slice(1, -1), slice(1, -1))
        assert np.abs(seam[0] - east)[inner].max() < 0.02 * np.abs(east).max()
        for axis in (0, 1):
            np.testing.assert_allclose(
                grid_distance(lat, lon, axis), grid_distance(lat, lon_cont, axis), rtol=1e-12
            )


def test_periodic_global_grid_whose_x_crosses_the_seam():
    # x wraps around the globe and starts at 100 E, so the seam (180 -> -180) is inside it and
    # the periodic wrap closes it again; compare with the regular grid given from 0 to 360.
    lat1 = np.arange(-60.0, 61.0, 5.0)
    lon1 = (np.arange(100.0, 460.0, 5.0) + 180.0) % 360.0 - 180.0
    lat2, lon2 = np.meshgrid(lat1, lon1, indexing="ij")
    f, east, _ = field(lat2, lon2)
    de, dn = geographic_components(f, lat2, lon2, axes=(0, 1), periodic=[1])
    order = np.argsort(np.where(lon1 < 0, lon1 + 360, lon1))
    de0, dn0 = geographic_components(
        f[:, order], lat2[:, order], np.where(lon2 < 0, lon2 + 360, lon2)[:, order],
        axes=(0, 1), periodic=[1],
    )  # fmt: skip
    np.testing.assert_allclose(de[:, order], de0, rtol=1e-12, atol=1e-12 * np.abs(de0).max())
    np.testing.assert_allclose(dn[:, order], dn0, rtol=1e-12, atol=1e-12 * np.abs(dn0).max())
    assert np.abs(de - east).max() < 0.01 * np.abs(east).max()  # the wrap is a central difference


# Block sizes along (y, x) of a 9 x 13 grid: for the values, and for lat/lon.
CHUNKINGS = [((2, 7), (9, 13)), ((4, 1), (1, 5)), ((1, 3), (2, 4))]


@pytest.mark.parametrize(("vchunks", "cchunks"), CHUNKINGS)
def test_dask_equals_numpy_bit_for_bit(vchunks, cchunks):
    lat, lon, *_ = rotated_pole_grid(1, pole_lon=180.0)  # crosses the seam
    lat, lon = lat[:9, :13], lon[:9, :13]
    f = np.random.default_rng(5).normal(size=(2, *lat.shape))
    for edge_order, periodic in itertools.product((1, 2), (None, {2})):
        expected = geographic_components(
            f, lat, lon, axes=(1, 2), edge_order=edge_order, periodic=periodic
        )
        for lat_, lon_ in (
            (lat, lon),
            (da.from_array(lat, chunks=cchunks), da.from_array(lon, chunks=cchunks)),
        ):
            fd = da.from_array(f, chunks=(1, *vchunks))
            got = geographic_components(
                fd, lat_, lon_, axes=(1, 2), edge_order=edge_order, periodic=periodic
            )
            assert all(g.chunks == fd.chunks for g in got)
            for g, e in zip(dask.compute(*got), expected):  # one pass: the graphs share a lot
                assert_bitwise_equal(g, e)
        expected = grid_components(f, lat, lon, axes=(1, 2), edge_order=edge_order)
        fd = da.from_array(f, chunks=(1, *vchunks))
        got = grid_components(
            fd, da.from_array(lat, chunks=cchunks), da.from_array(lon, chunks=cchunks),
            axes=(1, 2), edge_order=edge_order,
        )  # fmt: skip
        assert all(g.chunks == fd.chunks for g in got)
        for g, e in zip(dask.compute(*got), expected):
            assert_bitwise_equal(g, e)


def test_grid_axes_in_any_order_and_position():
    lat, lon, *_ = rotated_pole_grid(1)
    f = np.random.default_rng(1).normal(size=lat.shape)
    de, dn = geographic_components(f, lat, lon, axes=(0, 1))
    # The same grid stored (x, t, y): lat/lon stay (y, x), axes name where y and x are.
    ft = np.stack([f.T, f.T], axis=1)
    de_t, dn_t = geographic_components(ft, lat, lon, axes=(2, 0))
    assert_bitwise_equal(de_t[:, 1, :], de.T)
    assert_bitwise_equal(dn_t[:, 0, :], dn.T)
    gy, gx = grid_components(f, lat, lon, axes=(0, 1))
    gy_t, gx_t = grid_components(ft, lat, lon, axes=(2, 0))
    assert_bitwise_equal(gy_t[:, 0, :], gy.T)
    assert_bitwise_equal(gx_t[:, 1, :], gx.T)


def test_lazy_inputs_are_not_computed():
    def explode(block):
        if block.size:
            raise AssertionError("computed")
        return block

    lat, lon, *_ = rotated_pole_grid(1)
    lat_d = da.from_array(lat, chunks=5).map_blocks(explode, dtype=float, meta=np.array((), float))
    lon_d = da.from_array(lon, chunks=5).map_blocks(explode, dtype=float, meta=np.array((), float))
    f = da.ones(lat.shape, chunks=4)
    geographic_components(f, lat_d, lon_d, axes=(0, 1), periodic=[1])
    grid_components(f, lat_d, lon_d, axes=(0, 1))
    grid_distance(lat_d, lon_d, 0)


def test_bad_arguments():
    lat, lon, *_ = rotated_pole_grid(1)
    f = np.ones(lat.shape)
    with pytest.raises(ValueError, match=re.escape("lat and lon must have the same shape")):
        geographic_components(f, lat, lon[:, :-1], axes=(0, 1))
    with pytest.raises(
        ValueError, match=re.escape("lat/lon have shape (21, 31) but the values' grid axes (1, 0)")
    ):
        geographic_components(f, lat, lon, axes=(1, 0))
    with pytest.raises(
        ValueError, match=re.escape("periodic must name grid axes among axes=(0, 1), got [2]")
    ):
        geographic_components(f, lat, lon, axes=(0, 1), periodic=[2])
    with pytest.raises(ValueError, match=re.escape("lat must be in degrees within [-90, 90]")):
        grid_distance(lat * 10, lon, 0)
    with pytest.raises(ValueError, match=re.escape("radius must be a finite positive number")):
        grid_components(f, lat, lon, axes=(0, 1), radius=-1.0)
    with pytest.raises(ValueError, match=re.escape("axes must be two distinct axes")):
        grid_components(f, lat, lon, axes=(0, 0))
