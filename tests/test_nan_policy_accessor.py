"""nan_policy through the accessor and a batch run: the function's numbers, with coordinates.

The numbers of ``nan_policy="one-sided"`` are checked run by run against numpy.gradient in
test_nan_policy.py; here the accessor and the YAML key reach them with the coordinates and the
spherical metric, and land-masked ocean data keeps its coastal values.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner

import daskgrad
from daskgrad.batch.cli import main


def _ocean(chunks=None) -> xr.Dataset:
    rng = np.random.default_rng(11)
    lat = np.linspace(-60.0, 60.0, 13)
    lon = np.arange(0.0, 360.0, 15.0)
    sst = 290.0 + rng.normal(size=(2, lat.size, lon.size))
    land = np.zeros(sst.shape[1:], bool)
    land[3:7, 4:9] = True  # a continent
    land[9, 0] = land[9, -1] = True  # an island across the seam
    sst[:, land] = np.nan
    ds = xr.Dataset(
        {"sst": (("time", "lat", "lon"), sst, {"units": "K"})},
        coords={
            "time": [0.0, 1.0],
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )
    return ds if chunks is None else ds.chunk(chunks)


@pytest.mark.parametrize("chunks", [None, {"lat": 4, "lon": 5}])
def test_accessor_one_sided_equals_the_function_with_the_coordinates(chunks):
    ds = _ocean(chunks)
    out = ds.grad.compute(["lat", "lon"], nan_policy="one-sided", edge_order=2)
    values = ds["sst"].values
    want_lat, want_lon = daskgrad.gradient(
        values, spacing=[ds["lat"].values, ds["lon"].values], dim=(1, 2), edge_order=2,
        nan_policy="one-sided",
    )  # fmt: skip
    np.testing.assert_array_equal(out["dsst_dlat"].values, want_lat)
    np.testing.assert_array_equal(out["dsst_dlon"].values, want_lon)
    # The coast keeps its values: fewer NaN than with numpy's propagation.
    spread = ds.grad.compute(["lat", "lon"], edge_order=2)
    assert np.isnan(spread["dsst_dlon"].values).sum() > np.isnan(out["dsst_dlon"].values).sum()
    assert np.isnan(out["dsst_dlon"].values).sum() == np.isnan(values).sum()


def test_spherical_periodic_one_sided_runs_cross_the_seam():
    ds = _ocean({"lon": 7})
    out = ds.grad.compute(
        ["lon"], geometry="spherical", periodic={"lon": 360.0}, nan_policy="one-sided"
    )
    lon_rad = np.deg2rad(ds["lon"].values)
    (per_radian,) = daskgrad.gradient(
        ds["sst"].values, spacing=[lon_rad], dim=2, nan_policy="one-sided"
    )  # not periodic: the seam is an edge here ...
    got = out["dsst_dlon"].values * (6371008.8 * np.cos(np.deg2rad(ds["lat"].values)))[:, None]
    inner = slice(2, -2)  # ... so only points away from the seam must agree
    np.testing.assert_allclose(got[:, :, inner], per_radian[:, :, inner], rtol=1e-12)
    assert np.isfinite(out["dsst_dlon"].values[:, 0, [0, -1]]).all()  # the seam is crossed


def test_batch_run_with_gradient_nan_policy(tmp_path):
    ds = _ocean()
    ds.chunk({"lat": 5, "lon": 8}).to_zarr(tmp_path / "in.zarr", zarr_format=3, consolidated=False)
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(tmp_path / "in.zarr")},
                "gradient": {"dims": ["lat", "lon"], "nan_policy": "one-sided", "edge_order": 2},
                "output": {"path": str(tmp_path / "out.zarr")},
                "cluster": {"kind": "threads"},
            }
        )
    )
    result = CliRunner().invoke(main, ["run", "--no-progress", str(config)])
    assert result.exit_code == 0, result.output
    got = xr.open_zarr(tmp_path / "out.zarr")  # consolidated, as a run leaves it
    want = ds.grad.compute(["lat", "lon"], nan_policy="one-sided", edge_order=2)
    for v in want.data_vars:
        np.testing.assert_array_equal(got[v].values, want[v].values)
    bad = config.read_text().replace("one-sided", "omit")
    config.write_text(bad)
    result = CliRunner().invoke(main, ["validate", str(config)])
    assert result.exit_code == 2
    assert "gradient.nan_policy" in result.stderr
