"""Agreement with MetPy's vorticity and divergence (in the test extra).

Without geometry MetPy's formulation is daskgrad's (centred differences, three-point edges:
``edge_order=2``): the two agree to rounding. On a regular latitude/longitude grid (a spherical
CRS of the same radius) MetPy uses the expanded form with map-factor terms, daskgrad the flux
form: both are second-order discretizations of one operator, so they differ by O(step^2) and
the difference shrinks fourfold per halving of the step.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import xarray as xr

import daskgrad  # noqa: F401  (registers the accessor)

mpcalc = pytest.importorskip("metpy.calc", reason="MetPy is in the test extra")
units = pytest.importorskip("metpy.units", reason="MetPy is in the test extra").units

R = 6371008.8


def _wind(step: float) -> xr.Dataset:
    lat = np.arange(-60, 60 + step / 2, step)
    lon = np.arange(0, 120 + step / 2, step)
    P, L = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    u = 20 * np.cos(P) + 5 * np.sin(2 * L) * np.cos(P) ** 2 + 3 * np.sin(3 * P)
    v = 4 * np.cos(L) * np.sin(P) + 2 * np.cos(2 * P) * np.sin(L)
    return xr.Dataset(
        {"u": (("lat", "lon"), u, {"units": "m/s"}), "v": (("lat", "lon"), v, {"units": "m/s"})},
        coords={
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )


def test_same_formulation_without_geometry_agrees_to_rounding():
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((2, 9, 12))
    x, y = np.cumsum(rng.uniform(0.5, 1.5, 12)), np.cumsum(rng.uniform(0.5, 1.5, 9))
    ds = xr.Dataset({"u": (("y", "x"), u), "v": (("y", "x"), v)}, coords={"x": x, "y": y})
    kw = {"dx": np.diff(x) * units.m, "dy": np.diff(y)[:, None] * units.m}
    theirs_z = mpcalc.vorticity(u * units("m/s"), v * units("m/s"), **kw).m
    theirs_d = mpcalc.divergence(u * units("m/s"), v * units("m/s"), **kw).m
    ours_z = ds.grad.vorticity(edge_order=2).values
    ours_d = ds.grad.divergence(edge_order=2).values
    np.testing.assert_allclose(ours_z, theirs_z, rtol=0, atol=1e-13 * np.abs(theirs_z).max())
    np.testing.assert_allclose(ours_d, theirs_d, rtol=0, atol=1e-13 * np.abs(theirs_d).max())


def sphere_differences(step: float, crs: bool = True) -> list[float]:
    """Largest |daskgrad - MetPy| / largest |MetPy|, vorticity then divergence; MetPy given a
    spherical CRS of the same radius, or (``crs=False``) nothing (it then assumes WGS84)."""
    ds = _wind(step)
    kw = {"geometry": "spherical", "edge_order": 2, "radius": R}
    ours = ds.grad.vorticity(**kw).values, ds.grad.divergence(**kw).values
    src = ds.metpy.assign_crs(grid_mapping_name="latitude_longitude", earth_radius=R) if crs else ds
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = (
            mpcalc.vorticity(src.u, src.v).metpy.dequantify().values,
            mpcalc.divergence(src.u, src.v).metpy.dequantify().values,
        )
    return [float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(ours, theirs, strict=True)]


def test_on_the_sphere_flux_and_expanded_forms_agree_at_second_order():
    differences = [sphere_differences(step) for step in (2.0, 1.0, 0.5)]
    assert all(d < 2e-3 for d in differences[1])  # on a 1-degree grid: 0.13% of the largest
    for coarse, fine in itertools.pairwise(differences):
        assert all(3.6 < c / f < 4.4 for c, f in zip(coarse, fine)), differences


if __name__ == "__main__":  # the README's figures: python tests/test_vector_metpy.py
    for step in (2.0, 1.0, 0.5):
        z, d = sphere_differences(step)
        print(f"{step}-degree grid: vorticity {z:.2%}, divergence {d:.2%} of the largest value")
    z, d = sphere_differences(2.0, crs=False)
    print(f"2-degree grid, MetPy without a CRS: vorticity {z:.2%}, divergence {d:.2%}")
