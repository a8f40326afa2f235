"""The accessor and a batch run on curvilinear grids: 2-D latitude/longitude over two grid dims.

The numbers of :mod:`daskgrad.core.curvilinear` are checked in test_curvilinear.py; here the
accessor finds the grid, names and describes the outputs, keeps other dims plain, and is lazy.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner
from test_curvilinear import field, rotated_pole_grid

import daskgrad  # noqa: F401  (registers the accessor)
from daskgrad.batch.cli import main
from daskgrad.core.curvilinear import geographic_components, grid_components
from daskgrad.core.options import DEFAULT_RADIUS, OptionError

R = DEFAULT_RADIUS


def _curvilinear_dataset(k: int = 1, nt: int = 3) -> xr.Dataset:
    lat, lon, *_ = rotated_pole_grid(k)
    f, _, _ = field(lat, lon)
    t = np.stack([f * (1.0 + 0.1 * i) for i in range(nt)])  # (time, y, x)
    return xr.Dataset(
        {"T": (("time", "y", "x"), t, {"units": "K", "standard_name": "sea_water_temperature"})},
        coords={
            "time": ("time", np.arange(nt) * 3600.0, {"units": "s"}),
            "nav_lat": (("y", "x"), lat, {"units": "degrees_north"}),
            "nav_lon": (("y", "x"), lon, {"units": "degrees_east"}),
        },
    )


def test_geographic_components_named_east_and_north_with_cf_attributes():
    ds = _curvilinear_dataset()
    out = ds.grad.compute(geometry="spherical", components="geographic")
    assert list(out.data_vars) == ["dT_dtime", "dT_deast", "dT_dnorth"]
    de, dn = geographic_components(
        ds["T"].values, ds["nav_lat"].values, ds["nav_lon"].values, axes=(1, 2)
    )
    np.testing.assert_array_equal(out["dT_deast"].values, de)
    np.testing.assert_array_equal(out["dT_dnorth"].values, dn)
    np.testing.assert_array_equal(
        out["dT_dtime"].values, np.gradient(ds["T"].values, ds["time"].values, axis=0)
    )
    attrs = out["dT_deast"].attrs
    assert attrs["units"] == "K m-1"
    assert attrs["standard_name"] == "eastward_derivative_of_sea_water_temperature"
    assert (
        out["dT_dnorth"].attrs["standard_name"] == "northward_derivative_of_sea_water_temperature"
    )


def test_grid_components_per_metre_along_each_grid_dim_dask_equals_numpy():
    ds = _curvilinear_dataset()
    lazy = ds.chunk({"time": 1, "y": 7, "x": 9}).grad.lazy(["y", "x"], geometry="spherical")
    assert lazy["dT_dy"].chunks == ds.chunk({"time": 1, "y": 7, "x": 9})["T"].chunks
    out = lazy.compute()
    dy, dx = grid_components(
        ds["T"].values, ds["nav_lat"].values, ds["nav_lon"].values, axes=(1, 2)
    )
    np.testing.assert_array_equal(out["dT_dy"].values, dy)
    np.testing.assert_array_equal(out["dT_dx"].values, dx)
    assert out["dT_dx"].attrs["units"] == "K m-1"


def test_coordinates_in_the_other_order_and_transposed_values():
    ds = _curvilinear_dataset()
    swapped = ds.assign_coords(
        nav_lat=ds["nav_lat"].transpose("x", "y"), nav_lon=ds["nav_lon"].transpose("x", "y")
    ).transpose("x", "time", "y")
    a = ds.grad.compute(["x", "y"], geometry="spherical", components="geographic")
    b = swapped.grad.compute(["x", "y"], geometry="spherical", components="geographic")
    for v in ("dT_deast", "dT_dnorth"):
        np.testing.assert_array_equal(b[v].transpose(*a[v].dims).values, a[v].values)


def test_a_regular_grid_given_in_2d_matches_the_1d_spherical_result():
    lat1, lon1 = np.arange(-60.0, 61.0, 3.0), np.arange(0.0, 360.0, 4.0)
    lat2, lon2 = np.meshgrid(lat1, lon1, indexing="ij")
    t = np.sin(np.deg2rad(lat2) * 3) * np.cos(np.deg2rad(lon2) * 2)
    one_d = xr.Dataset({"T": (("lat", "lon"), t)}, coords={"lat": lat1, "lon": lon1})
    two_d = xr.Dataset(
        {"T": (("y", "x"), t)},
        coords={"lat": (("y", "x"), lat2), "lon": (("y", "x"), lon2)},
    )
    ref = one_d.grad.compute(geometry="spherical", periodic={"lon": 360.0}, edge_order=2)
    got = two_d.grad.compute(
        geometry="spherical", components="geographic", periodic="x", edge_order=2
    )
    for mine, theirs in (("dT_deast", "dT_dlon"), ("dT_dnorth", "dT_dlat")):
        want = ref[theirs].values
        np.testing.assert_allclose(
            got[mine].values, want, rtol=1e-10, atol=1e-10 * np.abs(want).max()
        )


@pytest.mark.parametrize(
    ("kwargs", "argument", "message"),
    [
        ({"dim": "x", "components": "geographic"}, "components", "needs both grid dims"),
        ({"components": "polar"}, "components", "components must be 'grid' or 'geographic'"),
        ({"periodic": {"x": 360.0}, "components": "geographic"}, "periodic", "wraps by its index"),
        ({"periodic": "x"}, "periodic", "components='geographic' only"),
        ({"nan_policy": "one-sided"}, "nan_policy", "needs components='geographic'"),
    ],
)
def test_bad_curvilinear_arguments_name_the_argument(kwargs, argument, message):
    ds = _curvilinear_dataset()
    kwargs = {"geometry": "spherical", **kwargs}
    with pytest.raises(OptionError, match=message) as info:
        ds.grad.compute(**kwargs)
    assert info.value.argument == argument


def test_a_variable_with_one_grid_dim_only_is_refused():
    ds = _curvilinear_dataset()
    ds["s"] = ds["T"].isel(x=0, drop=True)
    with pytest.raises(OptionError, match="has the grid dim 'y' but not 'x'"):
        ds.grad.compute(["y"], geometry="spherical", variables="s")


def test_batch_run_with_components_geographic(tmp_path):
    ds = _curvilinear_dataset()
    ds.to_zarr(tmp_path / "in.zarr", zarr_format=3, consolidated=False)
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(tmp_path / "in.zarr")},
                "gradient": {
                    "dims": ["y", "x"],
                    "geometry": "spherical",
                    "components": "geographic",
                },
                "output": {"path": str(tmp_path / "out.zarr")},
                "cluster": {"kind": "threads"},
            }
        )
    )
    result = CliRunner().invoke(main, ["run", "--no-progress", str(config)])
    assert result.exit_code == 0, result.output
    got = xr.open_zarr(tmp_path / "out.zarr")  # consolidated, as a run leaves it
    want = ds.grad.compute(["y", "x"], geometry="spherical", components="geographic")
    assert sorted(got.data_vars) == ["dT_deast", "dT_dnorth"]
    for v in want.data_vars:
        np.testing.assert_array_equal(got[v].values, want[v].values)


def test_geographic_components_stop_at_the_coast_with_nan_policy_one_sided():
    ds = _curvilinear_dataset(nt=1)
    t = ds["T"].values.copy()
    t[:, 8:13, 10:20] = np.nan  # land
    ds["T"] = ds["T"].copy(data=t)
    kw = {"dim": ["y", "x"], "geometry": "spherical", "components": "geographic", "edge_order": 2}
    spread = ds.grad.compute(**kw)
    coast = ds.chunk({"y": 6, "x": 11}).grad.compute(nan_policy="one-sided", **kw)
    # One-sided: only land is NaN; numpy's propagation also loses the coastal ring.
    assert np.isnan(coast["dT_deast"].values).sum() == np.isnan(t).sum()
    assert np.isnan(spread["dT_deast"].values).sum() > np.isnan(t).sum()
    # Away from the land the two agree exactly; next to it the one-sided values are accurate.
    lat, lon = ds["nav_lat"].values, ds["nav_lon"].values
    _, east, north = field(lat, lon)
    far = np.ones(lat.shape, bool)
    far[6:15, 8:22] = False
    for v in ("dT_deast", "dT_dnorth"):
        np.testing.assert_array_equal(coast[v].values[:, far], spread[v].values[:, far])
    near = ~far & ~np.isnan(t[0])
    scale = np.abs(east).max()
    assert np.abs(coast["dT_deast"].values[0][near] - east[near]).max() < 0.05 * scale
    assert np.abs(coast["dT_dnorth"].values[0][near] - north[near]).max() < 0.05 * scale
