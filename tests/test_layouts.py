"""The corpus of real layouts (tests/data_layouts.py) through ``compute``, ``lazy`` and ``to_zarr``.

Each file is written as its model writes it and opened with ``xarray.open_dataset`` as a user
would. Plain fields are compared with numpy.gradient / xarray's ``differentiate`` bit for bit;
masked ones with numpy.gradient run by run on the wet points (tests/layout_oracles.py);
curvilinear ones with the core's ``geographic_components`` on the same (masked) values.
"""

from __future__ import annotations

import datetime
import re
import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import assert_bitwise_equal
from data_layouts import mom6_wet, nemo_tmask, roms_mask_rho, write
from layout_oracles import R, spherical, wet_runs

import daskgrad  # noqa: F401  (registers the accessor)
from daskgrad.core.curvilinear import geographic_components
from daskgrad.core.options import GradientOptions, OptionError
from daskgrad.plan import plan_gradients

SPHERE = {"geometry": "spherical", "periodic": {"lon": 360.0}}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Every layout written once for the module; opened afresh by each test."""
    root = tmp_path_factory.mktemp("layouts")
    written: dict[str, dict] = {}

    def opened(name, chunks=None, **kw):
        key = f"{name}-{'-'.join(f'{k}{v}' for k, v in sorted(kw.items()))}"
        if key not in written:
            written[key] = write(name, root / key, **kw)
        paths = written[key]
        out: dict = {"paths": paths}
        for role, path in paths.items():
            engine = "zarr" if path.suffix == ".zarr" else None
            out[role] = xr.open_dataset(path, engine=engine, chunks=chunks)
        return out

    return opened


def _seconds(times) -> np.ndarray:
    """A time coordinate as daskgrad takes it: exact offsets from the first, then seconds."""
    values = list(np.asarray(times))
    micro = np.array([(v - values[0]) // datetime.timedelta(microseconds=1) for v in values])
    return micro.astype("m8[us]") / np.timedelta64(1, "s")


# -- CMIP6 ------------------------------------------------------------------------------------


def test_cmip6_bounds_are_left_out_and_the_field_is_differentiated(files):
    ds = files("cmip6")["data"]
    plan = plan_gradients(ds)
    assert plan.left_out == {
        "time_bnds": "the cell bounds of 'time'",
        "lat_bnds": "the cell bounds of 'lat'",
        "lon_bnds": "the cell bounds of 'lon'",
    }
    out = ds.grad.compute()
    assert list(out.data_vars) == ["dtas_dtime", "dtas_dlat", "dtas_dlon"]
    tas = ds["tas"].values
    assert_bitwise_equal(out["dtas_dtime"], np.gradient(tas, _seconds(ds["time"].values), axis=0))
    for d in ("lat", "lon"):
        assert_bitwise_equal(out[f"dtas_d{d}"], ds["tas"].differentiate(d))
    assert float(out["height"]) == 2.0  # the scalar coordinate is kept


def test_cmip6_on_the_sphere_compute_lazy_and_to_zarr(files, tmp_path):
    opened = files("cmip6", chunks={"time": 1, "lat": 3, "lon": 5})
    ds = opened["data"]
    lazy = ds.grad.lazy(["lat", "lon"], **SPHERE)
    assert list(lazy.data_vars) == ["dtas_dlat", "dtas_dlon"]
    assert isinstance(lazy["dtas_dlat"].data, da.Array)
    assert lazy["dtas_dlat"].chunks == ds["tas"].chunks
    want_y, want_x = spherical(ds["tas"].values, ds["lat"].values, ds["lon"].values, 1, 2)
    got = ds.grad.compute(["lat", "lon"], **SPHERE)
    for out in (lazy.compute(), got):
        assert_bitwise_equal(out["dtas_dlat"], want_y)
        assert_bitwise_equal(out["dtas_dlon"], want_x)
    assert got["dtas_dlon"].attrs["units"] == "K m-1"
    ds.grad.to_zarr(tmp_path / "g.zarr", ["lat", "lon"], **SPHERE)
    stored = xr.open_zarr(tmp_path / "g.zarr")
    assert_bitwise_equal(stored["dtas_dlon"], want_x)
    assert stored["time"].dt.calendar == "noleap"


def test_cmip6_named_bounds_are_differentiated_with_a_note(files):
    ds = files("cmip6")["data"]
    with pytest.warns(UserWarning, match=re.escape("'lat_bnds' is the cell bounds of 'lat'")):
        out = ds.grad.compute("lat", variables=["tas", "lat_bnds"])
    assert_bitwise_equal(out["dlat_bnds_dlat"], ds["lat_bnds"].differentiate("lat"))
    with pytest.raises(OptionError, match=re.escape("'time_bnds' has dtype object")):
        ds.grad.compute(variables="time_bnds")


# -- ERA5 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["era5_cds", "era5_arco"])
def test_era5_descending_latitude_equals_the_ascending_result_flipped(files, name):
    ds = files(name)["data"]
    var = "t2m" if name == "era5_cds" else "2m_temperature"
    time = "valid_time" if name == "era5_cds" else "time"
    assert ds["latitude"].values[0] == 90.0
    kw = {"geometry": "spherical", "periodic": {"longitude": 360.0}}
    out = ds.grad.compute(**kw)
    rising = ds.sortby("latitude").grad.compute(**kw).sortby("latitude", ascending=False)
    for d in ("latitude", "longitude"):
        name_ = f"d{var}_d{d}"
        np.testing.assert_allclose(out[name_], rising[name_], rtol=2e-6, atol=1e-12)
        assert out[name_].dtype == np.float32
    want_y, want_x = spherical(ds[var].values, ds["latitude"].values, ds["longitude"].values, 1, 2)
    assert_bitwise_equal(out[f"d{var}_dlatitude"], want_y)
    assert_bitwise_equal(out[f"d{var}_dlongitude"], want_x)
    seconds = (ds[time].values - ds[time].values[0]) / np.timedelta64(1, "s")
    assert_bitwise_equal(out[f"d{var}_d{time}"], np.gradient(ds[var].values, seconds, axis=0))
    assert out[f"d{var}_d{time}"].attrs["units"] == "K s-1"


@pytest.mark.parametrize(("packed_float32", "dtype"), [(False, np.float64), (True, np.float32)])
def test_era5_packed_int16_decodes_to_the_scale_factors_dtype(files, packed_float32, dtype):
    opened = files("era5_packed", packed_float32=packed_float32)
    ds = opened["data"]
    raw = xr.open_dataset(opened["paths"]["data"], decode_cf=False)
    assert raw["t2m"].dtype == np.int16
    assert ds["t2m"].dtype == dtype  # xarray's CF decoding: the scale_factor's float type
    out = ds.chunk({"time": 2, "latitude": 4}).grad.compute(
        geometry="spherical", periodic={"longitude": 360.0}
    )
    want_y, want_x = spherical(
        ds["t2m"].values, ds["latitude"].values, ds["longitude"].values, 1, 2
    )
    assert out["dt2m_dlatitude"].dtype == dtype
    assert_bitwise_equal(out["dt2m_dlatitude"], want_y)
    assert_bitwise_equal(out["dt2m_dlongitude"], want_x)


# -- WRF --------------------------------------------------------------------------------------

WRF_DIMS = ["south_north", "west_east", "south_north_stag", "west_east_stag"]


def test_wrf_plain_dims_and_the_variables_left_out(files):
    ds = files("wrf")["data"]
    out = ds.grad.compute(["south_north", "west_east"])
    assert sorted(out.data_vars) == [
        "dHGT_dsouth_north",
        "dHGT_dwest_east",
        "dT2_dsouth_north",
        "dT2_dwest_east",
        "dU_dsouth_north",
        "dV_dwest_east",
    ]
    assert_bitwise_equal(out["dT2_dwest_east"], np.gradient(ds["T2"].values, axis=2))
    left = plan_gradients(ds).left_out
    assert left == {"Times": "dtype |S19, not numbers", "LANDMASK": "WRF's mask"}


def test_wrf_staggered_winds_take_their_own_latitudes(files):
    opened = files("wrf", chunks={"Time": 1, "south_north": 4})
    ds = opened["data"]
    assert isinstance(ds["XLAT_U"].data, da.Array)  # a lazy grid stays lazy
    out = ds.grad.lazy(WRF_DIMS, geometry="spherical", components="geographic").compute()
    loaded = ds.load()
    for var, lat, lon in (
        ("T2", "XLAT", "XLONG"),
        ("U", "XLAT_U", "XLONG_U"),
        ("V", "XLAT_V", "XLONG_V"),
    ):
        x = loaded[var]
        grid = (x.ndim - 2, x.ndim - 1)
        east, north = geographic_components(
            x.values, loaded[lat].values[0], loaded[lon].values[0], grid
        )
        assert_bitwise_equal(out[f"d{var}_deast"], east)
        assert_bitwise_equal(out[f"d{var}_dnorth"], north)
    # The tracer points' latitudes are half a cell away from the U points'.
    assert not np.allclose(loaded["XLAT_U"].values[0, :, :-1], loaded["XLAT"].values[0])


def test_wrf_a_moving_grid_is_refused_in_one_line(files):
    numpy_backed = files("wrf", moving=True)["data"]
    with pytest.raises(OptionError, match=re.escape("'XLAT' changes along 'Time' (a moving grid)")):
        numpy_backed.grad.compute(WRF_DIMS[:2], geometry="spherical", components="geographic")
    lazy = files("wrf", chunks={"Time": 1}, moving=True)["data"]
    result = lazy.grad.lazy(WRF_DIMS[:2], geometry="spherical", components="geographic")
    with pytest.raises(ValueError, match=re.escape("changes along 'Time' (a moving grid)")):
        result.compute()  # the check ran inside the graph: nothing was computed before


# -- ROMS -------------------------------------------------------------------------------------

ROMS_DIMS = ["eta_rho", "xi_rho", "eta_u", "xi_u", "eta_v", "xi_v"]


def _masks(ds):
    return {"temp": ds["mask_rho"].values, "u": ds["mask_u"].values, "v": ds["mask_v"].values}


@pytest.mark.parametrize("edge_order", [1, 2])
def test_roms_auto_masks_each_variable_by_its_grid(files, edge_order):
    ds = files("roms")["data"]
    assert (ds["temp"].values[:, :, roms_mask_rho() == 0] == 0).all()  # 0 on land, no NaN
    out = ds.grad.compute(ROMS_DIMS, mask="auto", edge_order=edge_order)
    for var, wet in _masks(ds).items():
        x = ds[var]
        for d in x.dims[-2:]:
            want = wet_runs(x.values, wet == 1, x.get_axis_num(d), edge_order=edge_order)
            assert_bitwise_equal(out[f"d{var}_d{d}"], want)
        assert np.isnan(out[f"d{var}_d{x.dims[-1]}"].values[:, :, wet == 0]).all()


def test_roms_mask_by_name_dataarray_and_lazy_agree(files, tmp_path):
    ds = files("roms")["data"]
    want = ds.grad.compute(["eta_rho", "xi_rho"], variables="temp", mask="auto")
    by_name = ds.grad.compute(["eta_rho", "xi_rho"], variables="temp", mask="mask_rho")
    by_array = ds.grad.compute(["eta_rho", "xi_rho"], variables="temp", mask=ds["mask_rho"] > 0.5)
    chunked = files("roms", chunks={"s_rho": 1, "eta_rho": 3, "xi_rho": 4})["data"]
    lazy = chunked.grad.lazy(["eta_rho", "xi_rho"], variables="temp", mask="auto")
    assert isinstance(lazy["dtemp_dxi_rho"].data, da.Array)
    chunked.grad.to_zarr(tmp_path / "t.zarr", ["eta_rho", "xi_rho"], variables="temp", mask="auto")
    for got in (by_name, by_array, lazy.compute(), xr.open_zarr(tmp_path / "t.zarr")):
        for v in want.data_vars:
            assert_bitwise_equal(got[v], want[v])
    unmasked = ds.grad.compute(["eta_rho", "xi_rho"], variables="temp")
    assert not np.array_equal(unmasked["dtemp_dxi_rho"].values, want["dtemp_dxi_rho"].values)


def test_roms_geographic_components_with_the_auto_mask(files):
    ds = files("roms")["data"]
    out = ds.grad.compute(ROMS_DIMS, mask="auto", geometry="spherical", components="geographic")
    for var, (lat, lon), wet in zip(
        ("temp", "u", "v"),
        (("lat_rho", "lon_rho"), ("lat_u", "lon_u"), ("lat_v", "lon_v")),
        _masks(ds).values(),
    ):
        land = np.where(wet == 1, ds[var].values, np.nan).astype(np.float32)
        east, north = geographic_components(
            land, ds[lat].values, ds[lon].values, (2, 3), nan_policy="one-sided"
        )
        assert_bitwise_equal(out[f"d{var}_deast"], east)
        assert_bitwise_equal(out[f"d{var}_dnorth"], north)
    with pytest.raises(OptionError, match="a mask on a curvilinear grid needs") as info:
        ds.grad.compute(ROMS_DIMS, mask="auto", geometry="spherical")
    assert info.value.argument == "mask"


def test_roms_default_variables_leave_out_masks_and_formula_terms(files):
    plan = plan_gradients(files("roms")["data"], GradientOptions(mask="auto"))
    assert [vp.key for vp in plan.variables] == ["temp", "u", "v"]
    assert plan.left_out["zeta"] == "a formula term of 's_rho'"
    assert plan.left_out["mask_rho"] == "a flag variable (flag_values)"
    assert plan.left_out["spherical"] == "a flag variable (flag_values)"
    assert [vp.mask.name for vp in plan.variables] == ["mask_rho", "mask_u", "mask_v"]
    assert {vp.nan_policy for vp in plan.variables} == {"one-sided"}


def test_a_mask_that_does_not_fit_a_variable_names_both(files):
    ds = files("roms")["data"]
    with pytest.raises(OptionError, match=re.escape("mask 'mask_rho' has dims")) as info:
        ds.grad.compute(ROMS_DIMS, mask="mask_rho")
    assert "but variable 'u' has" in str(info.value) and info.value.argument == "mask"
    with pytest.raises(OptionError, match=re.escape("mask='nope' is not a variable")):
        ds.grad.compute(mask="nope")


# -- NEMO -------------------------------------------------------------------------------------


def test_nemo_mesh_mask_as_grid_masks_3d_and_surface_fields(files):
    opened = files("nemo")
    ds, mesh = opened["data"], opened["grid"]
    plan = plan_gradients(ds, GradientOptions(["y", "x"], mask="auto", grid=mesh))
    assert [vp.key for vp in plan.variables] == ["thetao", "tos"]
    assert set(plan.left_out) == {"deptht_bounds", "time_centered_bounds", "time_counter_bounds"}
    out = ds.chunk({"y": 3, "x": 4}).grad.compute(["y", "x"], mask="auto", grid=mesh)
    tmask = nemo_tmask() == 1
    for var, wet in (("thetao", tmask), ("tos", tmask[0])):
        x = ds[var]
        for d in ("y", "x"):
            want = wet_runs(x.values, wet, x.get_axis_num(d))
            assert_bitwise_equal(out[f"d{var}_d{d}"], want)
    assert "tmask" in out.coords  # taken from the grid dataset


def test_nemo_geographic_components_with_the_grid_and_mask(files):
    opened = files("nemo")
    ds, mesh = opened["data"], opened["grid"]
    out = ds.grad.compute(
        ["y", "x"], mask="auto", grid=mesh, geometry="spherical", components="geographic"
    )
    land = np.where(nemo_tmask() == 1, ds["thetao"].values, np.nan).astype(np.float32)
    east, _ = geographic_components(
        land, ds["nav_lat"].values, ds["nav_lon"].values, (2, 3), nan_policy="one-sided"
    )
    assert_bitwise_equal(out["dthetao_deast"], east)


# -- MOM6 -------------------------------------------------------------------------------------


def test_mom6_static_file_gives_each_grid_its_coordinates_and_mask(files, tmp_path):
    opened = files("mom6")
    ds, static = opened["data"], opened["grid"]
    kw = {"mask": "auto", "grid": static, "geometry": "spherical", "components": "geographic"}
    plan = plan_gradients(ds, GradientOptions(**kw))
    assert {"time_bnds", "average_T1", "average_T2", "average_DT"} <= set(plan.left_out)
    by_var = {vp.key: vp for vp in plan.variables}
    assert (by_var["uo"].axes.lat, by_var["uo"].mask.name) == ("geolat_u", "wet_u")
    assert (by_var["vo"].axes.lat, by_var["vo"].mask.name) == ("geolat_v", "wet_v")
    out = ds.grad.compute(**kw)
    lazy = ds.chunk({"yh": 3, "xq": 5}).grad.lazy(**kw)
    for var, lat, lon in (("thetao", "geolat", "geolon"), ("uo", "geolat_u", "geolon_u")):
        east, north = geographic_components(
            ds[var].values, static[lat].values, static[lon].values, (2, 3), nan_policy="one-sided"
        )
        for got in (out, lazy.compute()):
            assert_bitwise_equal(got[f"d{var}_deast"], east)
            assert_bitwise_equal(got[f"d{var}_dnorth"], north)
    wet = mom6_wet() == 1
    tos = ds["tos"].values
    # NaN on land, and where a wet run along either grid dim is one point long: nowhere else.
    lost = np.isnan(wet_runs(tos, wet, 1)) | np.isnan(wet_runs(tos, wet, 2))
    assert (np.isnan(out["dtos_deast"].values) == lost).all()
    assert lost[:, ~wet].all() and not lost[:, wet].all()
    ds.grad.to_zarr(tmp_path / "m.zarr", **kw)
    assert_bitwise_equal(xr.open_zarr(tmp_path / "m.zarr")["duo_deast"], out["duo_deast"])


def test_mom6_the_2d_grid_wins_over_the_nominal_1d_axes(files):
    opened = files("mom6")
    ds, static = opened["data"], opened["grid"]
    out = ds.grad.compute(["yh", "xh"], variables="tos", grid=static, geometry="spherical")
    assert list(out.data_vars) == ["dtos_dyh", "dtos_dxh"]  # grid components, per metre
    nominal = ds.grad.compute(["yh", "xh"], variables="tos", geometry="spherical")
    assert list(nominal.data_vars) == ["dtos_dyh", "dtos_dxh"]
    assert not np.allclose(out["dtos_dxh"], nominal["dtos_dxh"], equal_nan=True)
    assert_bitwise_equal(
        nominal["dtos_dyh"], spherical(ds["tos"].values, ds["yh"], ds["xh"], 1, 2, None)[0]
    )


def test_a_grid_of_another_model_is_refused_in_one_line(files):
    opened = files("mom6")
    ds, static = opened["data"], opened["grid"]
    with pytest.raises(OptionError, match=re.escape("grid: its coordinate 'xh' differs")):
        ds.grad.compute(grid=static.assign_coords(xh=static["xh"] + 1.0))
    with pytest.raises(OptionError, match=re.escape("grid: 'geolat' has yh=3 but the data")):
        ds.grad.compute(grid=static.isel(yh=slice(0, 3)).drop_vars("yh"))
    with pytest.raises(OptionError, match=re.escape("grid must be None or an xarray.Dataset")):
        ds.grad.compute(grid="ocean_static.nc")
    nemo = files("nemo")["grid"]
    with pytest.raises(OptionError, match=re.escape("grid: none of its latitude/longitude")):
        ds.grad.compute(grid=nemo)


def test_auto_mask_without_any_model_mask_says_so(files):
    with pytest.raises(OptionError, match=re.escape("mask='auto' found none of the models' masks")):
        files("cmip6")["data"].grad.compute(mask="auto")


def test_no_warning_for_the_default_choice(files):
    ds = files("cmip6")["data"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds.grad.compute(["lat", "lon"], **SPHERE)
    assert R > 6e6
