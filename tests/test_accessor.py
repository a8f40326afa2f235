"""The ``grad`` accessor: coordinates as spacing, datetimes, periodic and spherical grids.

Sections
--------
* registration and the accessor's state;
* bit-for-bit equality with ``xarray``'s ``differentiate`` for numeric coordinates
  (numpy- and dask-backed, several chunkings incl. 1-long chunks);
* datetime64, cftime, and dims without coordinate;
* periodic dims against ``numpy.gradient`` of the wrap-padded array, trimmed;
* spherical geometry against analytic fields (second-order convergence);
* names, attributes, coordinates; lazy vs compute; ``to_zarr``;
* every bad argument and its message.
"""

from __future__ import annotations

import re

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from conftest import assert_bitwise_equal

import daskgrad
from daskgrad.accessor import GradAccessor
from daskgrad.core.options import GradientOptions
from daskgrad.plan import plan_gradients

R = 6371008.8
CHUNKINGS = [None, 1, 3, (2, 1, 4)]  # None: numpy-backed; (2, 1, 4): irregular along x


@pytest.fixture(autouse=True)
def _sync_scheduler():
    with dask.config.set(scheduler="sync"):
        yield


def _chunk(obj, chunking, dim="x"):
    if chunking is None:
        return obj
    return obj.chunk({dim: chunking})


def _grid(rng, nx=7, ny=5, uniform=True, dtype="float64"):
    x = np.arange(nx) * 0.25 if uniform else np.cumsum(rng.uniform(0.1, 1.0, nx))
    y = np.linspace(-1.0, 1.0, ny)
    values = rng.normal(size=(ny, nx)).astype(dtype)
    return xr.Dataset(
        {"T": (("y", "x"), values, {"units": "K"}), "u": ("x", rng.normal(size=nx))},
        coords={"x": ("x", x, {"units": "m"}), "y": ("y", y, {"units": "m"})},
        attrs={"title": "test grid"},
    )


# -- registration -----------------------------------------------------------------------------


def test_import_registers_grad_on_dataarray_and_dataset():
    assert daskgrad.__version__
    da_ = xr.DataArray(np.zeros(3), dims="x")
    ds = da_.to_dataset(name="a")
    assert isinstance(da_.grad, GradAccessor)
    assert isinstance(ds.grad, GradAccessor)
    assert vars(ds.grad) == {"_obj": ds}  # holds only the object


# -- numeric coordinates: bit for bit equal to differentiate ----------------------------------


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("edge_order", [1, 2])
def test_dataarray_equals_differentiate_bitwise(rng, chunking, uniform, edge_order):
    ds = _grid(rng, uniform=uniform)
    obj = _chunk(ds["T"], chunking)
    out = obj.grad.compute("x", edge_order=edge_order)
    assert list(out.data_vars) == ["dT_dx"]
    assert_bitwise_equal(
        out["dT_dx"].values, ds["T"].differentiate("x", edge_order=edge_order).values
    )


@pytest.mark.parametrize("chunking", [None, {"x": 1, "y": 2}, {"x": (3, 4), "y": (1, 3, 1)}])
@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "complex128"])
def test_dataset_all_variables_all_dims_bitwise(rng, chunking, edge_order, dtype):
    ds = _grid(rng, uniform=False)
    ds["T"] = ds["T"].astype(dtype) if dtype != "complex128" else ds["T"] * (1 + 2j)
    obj = ds if chunking is None else ds.chunk(chunking)
    out = obj.grad.compute(edge_order=edge_order)
    assert list(out.data_vars) == ["dT_dy", "dT_dx", "du_dx"]
    for var, dim in [("T", "y"), ("T", "x"), ("u", "x")]:
        expected = ds[var].differentiate(dim, edge_order=edge_order)
        assert out[f"d{var}_d{dim}"].dtype == expected.dtype
        assert_bitwise_equal(out[f"d{var}_d{dim}"].values, expected.values)


@pytest.mark.parametrize("coord", ["int", "float32"])
def test_integer_and_float32_coordinates_bitwise(rng, coord):
    x = (
        np.array([0, 2, 3, 7, 8, 12])
        if coord == "int"
        else np.array([0, 0.5, 1, 2.5, 3, 3.25], "f4")
    )
    a = xr.DataArray(rng.normal(size=6), dims="x", coords={"x": x}, name="f")
    for obj in (a, a.chunk(1)):
        assert_bitwise_equal(obj.grad.compute()["df_dx"].values, a.differentiate("x").values)


def test_variables_selects_and_skips_non_numeric(rng):
    ds = _grid(rng)
    ds["label"] = ("x", np.array(list("abcdefg")))
    ds["mask"] = ("x", np.ones(7, bool))
    assert list(ds.grad.compute("x").data_vars) == ["dT_dx", "du_dx"]
    assert list(ds.grad.compute("x", variables="u").data_vars) == ["du_dx"]
    assert list(ds.grad.compute(variables=["u"]).data_vars) == ["du_dx"]
    # a dim that only some variables have: the others are skipped
    assert list(ds.grad.compute("y").data_vars) == ["dT_dy"]


# -- datetime, cftime, no coordinate ----------------------------------------------------------


def _timed(rng, times, chunking=None):
    a = xr.DataArray(
        rng.normal(size=(len(times), 3)),
        dims=("time", "x"),
        coords={"time": times},
        name="T",
        attrs={"units": "K"},
    )
    return a, (a if chunking is None else a.chunk({"time": chunking}))


@pytest.mark.parametrize("chunking", [None, 1, 4])
@pytest.mark.parametrize("edge_order", [1, 2])
def test_datetime64_coordinate_in_seconds_and_hours(rng, chunking, edge_order):
    steps = np.array([0, 6, 12, 30, 36, 48, 49, 72, 96, 97])  # hours, non-uniform
    times = np.datetime64("2001-03-01T00", "ns") + steps * np.timedelta64(1, "h")
    a, obj = _timed(rng, times, chunking)
    out = obj.grad.compute("time", edge_order=edge_order)["dT_dtime"]
    ref = a.differentiate("time", edge_order=edge_order, datetime_unit="s")
    np.testing.assert_allclose(out.values, ref.values, rtol=1e-12, atol=0)
    assert out.attrs["units"] == "K s-1"
    per_hour = obj.grad.compute("time", edge_order=edge_order, datetime_unit="h")["dT_dtime"]
    np.testing.assert_allclose(per_hour.values, out.values * 3600, rtol=1e-12)
    assert per_hour.attrs["units"] == "K h-1"
    per_minute = obj.grad.compute("time", datetime_unit="m")["dT_dtime"]
    assert per_minute.attrs["units"] == "K min-1"  # "m" would read as metres


@pytest.mark.parametrize("chunking", [None, 1, 3])
def test_cftime_coordinate(rng, chunking):
    pytest.importorskip("cftime")
    times = xr.date_range("2000-02-27", periods=8, freq="12h", calendar="noleap", use_cftime=True)
    a, obj = _timed(rng, times, chunking)
    out = obj.grad.compute("time", edge_order=2)["dT_dtime"]
    ref = a.differentiate("time", edge_order=2, datetime_unit="s")
    np.testing.assert_allclose(out.values, ref.values, rtol=1e-12, atol=0)
    per_day = obj.grad.compute("time", datetime_unit="D")["dT_dtime"]
    np.testing.assert_allclose(
        per_day.values, obj.grad.compute("time")["dT_dtime"] * 86400, rtol=1e-12
    )
    assert per_day.attrs["units"] == "K day-1"


@pytest.mark.parametrize("chunking", [None, 1, (2, 3, 1)])
@pytest.mark.parametrize("edge_order", [1, 2])
def test_dim_without_coordinate_has_step_one(rng, chunking, edge_order):
    values = rng.normal(size=(4, 6))
    a = xr.DataArray(values, dims=("y", "x"), name="q", attrs={"units": "kg"})
    obj = _chunk(a, chunking)
    out = obj.grad.compute("x", edge_order=edge_order)["dq_dx"]
    assert_bitwise_equal(out.values, np.gradient(values, axis=1, edge_order=edge_order))
    assert_bitwise_equal(out.values, a.differentiate("x", edge_order=edge_order).values)
    assert "units" not in out.attrs  # the dim has no units
    assert out.attrs["long_name"] == "gradient of q along x"


def test_two_dimensional_coordinate_is_not_a_spacing(rng):
    values = rng.normal(size=(4, 5))
    a = xr.DataArray(
        values, dims=("y", "x"), coords={"xc": (("y", "x"), rng.normal(size=(4, 5)))}, name="f"
    )
    out = a.grad.compute()
    assert_bitwise_equal(out["df_dx"].values, np.gradient(values, axis=1))
    assert "xc" in out.coords


# -- periodic ---------------------------------------------------------------------------------


def _wrapped_reference(values, axis, coord, period, edge_order):
    n = values.shape[axis]
    padded = np.concatenate(
        [np.take(values, [n - 1], axis), values, np.take(values, [0], axis)], axis=axis
    )
    extended = np.concatenate([coord[-1:] - period, coord, coord[:1] + period])
    g = np.gradient(padded, extended, axis=axis, edge_order=edge_order)
    return np.take(g, np.arange(1, n + 1), axis)


@pytest.mark.parametrize("chunking", [None, 1, 4, (3, 1, 4, 4)])
@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("uniform", [True, False])
def test_periodic_equals_gradient_of_wrap_padded_array(rng, chunking, edge_order, uniform):
    n = 12
    lon = np.arange(n) * 30.0 if uniform else np.sort(rng.uniform(0, 360, n))
    values = rng.normal(size=(3, n))
    a = xr.DataArray(values, dims=("lat", "lon"), coords={"lon": lon}, name="f")
    obj = _chunk(a, chunking, "lon")
    periodic = "lon" if uniform else {"lon": 360.0}  # a uniform coordinate infers n * step
    out = obj.grad.compute("lon", periodic=periodic, edge_order=edge_order)["df_dlon"]
    expected = _wrapped_reference(values, 1, lon, 360.0, edge_order)
    assert_bitwise_equal(out.values, expected)


@pytest.mark.parametrize("chunking", [None, 1, 2])
def test_periodic_forms_and_dims_without_coordinate(rng, chunking):
    values = rng.normal(size=(5, 6))
    a = xr.DataArray(values, dims=("y", "x"), name="f")
    obj = a if chunking is None else a.chunk(chunking)
    expected = _wrapped_reference(values, 1, np.arange(6), 6.0, 1)
    for periodic in ("x", ["x"], {"x": None}, {"x": 6}):
        out = obj.grad.compute(["y", "x"], periodic=periodic)
        assert_bitwise_equal(out["df_dx"].values, expected)
        assert_bitwise_equal(out["df_dy"].values, np.gradient(values, axis=0))


def test_periodic_dim_of_one_point_without_coordinate():
    a = xr.DataArray(np.arange(3.0)[:, None], dims=("y", "x"), name="f")
    for obj in (a, a.chunk(1)):
        assert_bitwise_equal(obj.grad.compute(periodic="x")["df_dx"].values, np.zeros((3, 1)))


def test_periodic_decreasing_coordinate(rng):
    lon = np.arange(350.0, -1.0, -10.0)  # 36 points, decreasing
    values = rng.normal(size=36)
    a = xr.DataArray(values, dims="lon", coords={"lon": lon}, name="f")
    expected = _wrapped_reference(values, 0, lon, -360.0, 1)
    assert_bitwise_equal(a.grad.compute(periodic={"lon": 360.0})["df_dlon"].values, expected)
    assert_bitwise_equal(a.chunk(5).grad.compute(periodic="lon")["df_dlon"].values, expected)


def test_periodic_sine_is_exact_to_second_order():
    lon = np.arange(0.0, 360.0, 5.0)
    f = xr.DataArray(np.sin(np.deg2rad(lon)), dims="lon", coords={"lon": lon}, name="f")
    out = f.chunk(1).grad.compute(periodic="lon")["df_dlon"].values
    h = np.deg2rad(5.0)
    np.testing.assert_allclose(
        out, np.deg2rad(np.cos(np.deg2rad(lon))) * np.sin(h) / h, rtol=1e-9, atol=1e-15
    )


# -- spherical geometry -----------------------------------------------------------------------


def _sphere(step, lat_name="lat", lon_name="lon", lat_attrs=None, lon_attrs=None):
    lat = np.linspace(-60.0, 60.0, round(120 / step) + 1)
    lon = np.arange(0.0, 360.0, step)
    phi, lam = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    return (
        xr.Dataset(
            {
                "s": ((lat_name, lon_name), np.sin(phi), {"units": "K"}),
                "c": ((lat_name, lon_name), np.cos(phi) * np.cos(lam), {"units": "K"}),
            },
            coords={
                lat_name: (lat_name, lat, lat_attrs or {}),
                lon_name: (lon_name, lon, lon_attrs or {}),
            },
        ),
        phi,
        lam,
    )


def _sphere_errors(step, chunks):
    ds, phi, lam = _sphere(step)
    out = ds.chunk(chunks).grad.compute(
        ["lat", "lon"], periodic={"lon": 360.0}, geometry="spherical", edge_order=2
    )
    err_y = np.abs(out["ds_dlat"].values - np.cos(phi) / R).max()
    err_x = np.abs(out["dc_dlon"].values + np.sin(lam) / R).max()
    return err_y, err_x, out


def test_spherical_analytic_fields_converge_at_second_order():
    coarse_y, coarse_x, out = _sphere_errors(4.0, {"lat": 7, "lon": 1})
    fine_y, fine_x, _ = _sphere_errors(2.0, {"lat": 16, "lon": 25})
    assert 1.8 <= np.log2(coarse_y / fine_y) <= 2.2
    assert 1.8 <= np.log2(coarse_x / fine_x) <= 2.2
    assert coarse_x < 1e-3 / R and coarse_y < 1e-2 / R
    attrs = out["ds_dlat"].attrs
    assert (attrs["long_name"], attrs["units"]) == ("gradient of s along lat", "K m-1")
    assert out["dc_dlon"].attrs["units"] == "K m-1"
    # sin(lat) does not change along a latitude circle
    assert np.abs(out["ds_dlon"].values).max() < 1e-20


def test_spherical_finds_coordinates_by_cf_attributes_and_keeps_dtype():
    by_attrs, _, _ = _sphere(
        10.0,
        lat_name="y",
        lon_name="x",
        lat_attrs={"units": "degrees_north"},
        lon_attrs={"standard_name": "longitude", "units": "degrees_east"},
    )
    by_names, _, _ = _sphere(10.0)
    a = by_attrs.grad.compute(periodic={"x": 360.0}, geometry="spherical")
    b = by_names.grad.compute(periodic={"lon": 360.0}, geometry="spherical")
    np.testing.assert_array_equal(a["dc_dx"].values, b["dc_dlon"].values)
    np.testing.assert_array_equal(a["ds_dy"].values, b["ds_dlat"].values)
    f32 = (
        by_names.astype("float32")
        .chunk({"lat": 2})
        .grad.compute(["lon"], geometry="spherical", periodic="lon")
    )
    assert f32["dc_dlon"].dtype == np.float32


def test_spherical_radius_scales_and_latitude_along_another_dim():
    ds, _, _ = _sphere(10.0)
    unit = ds.grad.compute("lat", geometry="spherical", radius=1.0)["ds_dlat"]
    earth = ds.grad.compute("lat", geometry="spherical")["ds_dlat"]
    np.testing.assert_allclose(unit.values / R, earth.values, rtol=1e-15)
    # latitude as a 1-D non-index coordinate along dim "row"
    other = ds.rename({"lat": "row"}).assign_coords(lat=("row", ds["lat"].values))
    g = other.grad.compute(["row", "lon"], periodic="lon", geometry="spherical")
    np.testing.assert_array_equal(g["ds_drow"].values, earth.values)


# -- names, attributes, coordinates -----------------------------------------------------------


def test_names_attrs_and_coords_are_kept(rng):
    ds = _grid(rng)
    ds = ds.assign_coords(height=("y", np.arange(5.0)), run=3)
    out = ds.grad.compute(["x", "y"], name="grad_{var}_{dim}")
    assert list(out.data_vars) == ["grad_T_x", "grad_T_y", "grad_u_x"]
    assert out.attrs == {"title": "test grid"}
    attrs = out["grad_T_x"].attrs
    assert (attrs["long_name"], attrs["units"]) == ("gradient of T along x", "K m-1")
    assert "units" not in out["grad_u_x"].attrs  # u has no units
    assert out["grad_T_x"].dims == ("y", "x")
    for c in ("x", "y", "height", "run"):
        assert c in out["grad_T_x"].coords
        xr.testing.assert_identical(out[c], ds[c])
    unnamed = xr.DataArray(np.arange(4.0), dims="x").grad.compute()
    assert list(unnamed.data_vars) == ["dvar_dx"]
    assert unnamed.attrs == {}
    only_var = ds["u"].grad.compute(name="{var}_grad")
    assert list(only_var.data_vars) == ["u_grad"]


def test_plan_lists_outputs_without_reading_data(rng):
    plan = plan_gradients(_grid(rng), GradientOptions(dim=["x"], periodic="x"))
    assert plan.names == ["dT_dx", "du_dx"]
    assert plan.fields[0].spacing.period == 7 * 0.25


# -- lazy, compute, to_zarr -------------------------------------------------------------------


def _no_compute(*args, **kwargs):
    raise AssertionError("something was computed while building the graph")


def _without_history(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` without the outputs' history lines (they record when each call ran)."""
    for v in ds.data_vars.values():
        v.attrs.pop("history", None)
    return ds


def test_lazy_stays_lazy_and_compute_loads(rng):
    ds = _grid(rng, uniform=False).chunk({"x": 2, "y": 1})
    with dask.config.set(scheduler=_no_compute):
        lazy = ds.grad.lazy(periodic={"x": 100.0}, edge_order=2)
    assert all(isinstance(v.data, da.Array) for v in lazy.data_vars.values())
    assert lazy["dT_dx"].chunks == ds["T"].chunks
    loaded = ds.grad.compute(periodic={"x": 100.0}, edge_order=2)
    assert all(isinstance(v.data, np.ndarray) for v in loaded.data_vars.values())
    xr.testing.assert_identical(_without_history(lazy.compute()), _without_history(loaded))
    numpy_backed = ds.load().grad.lazy("x")
    assert isinstance(numpy_backed["dT_dx"].data, np.ndarray)


@pytest.mark.parametrize("chunks", [{"x": 3, "y": 2}, {"x": (2, 1, 4), "y": (1, 4)}, None])
def test_to_zarr_round_trip(rng, tmp_path, chunks):
    ds = _grid(rng, uniform=False)
    obj = ds if chunks is None else ds.chunk(chunks)
    path = tmp_path / "g.zarr"
    obj.grad.to_zarr(path, ["y", "x"], edge_order=2)
    expected = obj.grad.compute(["y", "x"], edge_order=2)
    back = xr.open_zarr(path)
    for v in expected.data_vars:  # the history lines record two different calls' times
        assert back[v].attrs.pop("history").endswith(expected[v].attrs.pop("history")[20:])
    xr.testing.assert_identical(back.compute(), expected)
    group = zarr.open_group(path, mode="r")
    for v in expected.data_vars:
        arr = back[v].data
        assert all(len(set(c[:-1])) <= 1 and c[-1] <= c[0] for c in arr.chunks)  # regular grid
        assert tuple(group[v].chunks) == tuple(c[0] for c in arr.chunks)
        if chunks == {"x": 3, "y": 2}:
            assert arr.chunks == obj[v.split("_")[0][1:]].chunks
    with pytest.raises(FileExistsError):
        obj.grad.to_zarr(path)
    obj.grad.to_zarr(path, "x", mode="w")
    assert list(xr.open_zarr(path).data_vars) == ["dT_dx", "du_dx"]


# -- bad arguments ----------------------------------------------------------------------------


def _bad_inputs(rng):
    ds = _grid(rng)
    ds["label"] = ("z", np.array(["a", "b", "c"]))
    return ds


BAD = [
    ({"dim": "q"}, "dim 'q' is not a dim of the Dataset; its dims are ['y', 'x', 'z']"),
    ({"dim": []}, "dim is an empty list; give dim names, or None for every dim"),
    ({"dim": ["x", "x"]}, "dim=['x', 'x'] names a dim more than once"),
    ({"dim": 3.5}, "dim must be None, a dim name or a list of dim names; got 3.5"),
    (
        {"dim": "z"},
        "dim 'z' is in none of the chosen variables ['T', 'u']; their dims are ['x', 'y']",
    ),
    ({"edge_order": 3}, "edge_order must be 1 or 2; got 3"),
    ({"edge_order": True}, "edge_order must be 1 or 2; got True"),
    ({"datetime_unit": "M"}, "datetime_unit='M' is not allowed: months have no fixed length"),
    ({"datetime_unit": "Y"}, "datetime_unit='Y' is not allowed: years have no fixed length"),
    (
        {"datetime_unit": "sec"},
        "datetime_unit must be one of W, D, h, m, s, ms, us, ns, ps, fs, as; got 'sec'",
    ),
    ({"geometry": "flat"}, "geometry must be None or 'spherical'; got 'flat'"),
    ({"radius": -1.0}, "radius must be a finite positive number of metres; got -1.0"),
    ({"radius": "6e6"}, "radius must be a positive number of metres; got '6e6'"),
    (
        {"variables": ["T", "nope"]},
        "variables: 'nope' is not a data variable of the Dataset; the data variables are "
        "['T', 'u', 'label']",
    ),
    (
        {"variables": "x"},
        "variables: 'x' is not a data variable of the Dataset (it is a coordinate)",
    ),
    ({"variables": ["label"]}, "variables: 'label' has dtype <U1; the accessor differentiates"),
    ({"variables": []}, "variables must be None, a variable name or a non-empty list of names"),
    ({"variables": ["u"], "dim": "y"}, "dim 'y' is in none of the chosen variables ['u']"),
    ({"periodic": "q"}, "periodic dim 'q' is not a dim of the Dataset; its dims are"),
    (
        {"dim": "x", "periodic": ["y"]},
        "periodic dim 'y' is not among the differentiated dims ['x']; add it to dim",
    ),
    ({"periodic": 5}, "periodic must be None, a dim name, a list of dim names or a dict"),
    (
        {"periodic": {"x": -1.0}},
        "periodic period of dim 'x' must be a finite positive number; got -1.0",
    ),
    (
        {"periodic": {"x": "360"}},
        "periodic period of dim 'x' must be a positive number or None; got '360'",
    ),
    (
        {"periodic": {"x": 1.0}},
        "periodic period of dim 'x' is 1.0, but its coordinate already spans 1.5 (from 0.0 to 1.5)",
    ),
    (
        {"periodic": {"x": np.timedelta64(1, "D")}},
        "periodic period of dim 'x' is a time delta",
    ),
    (
        {"name": "d{var}"},
        "name='d{var}' gives the same output name 'dT' to the gradient of 'T' along",
    ),
    ({"name": "g_{dim}"}, "to the gradient of 'T' along 'x' and of 'u' along 'x'; add {var} to it"),
    (
        {"name": "d{foo}_{dim}"},
        "name='d{foo}_{dim}' uses the field {foo}; only {var} and {dim}",
    ),
    ({"name": "d{var"}, "name='d{var' is not a valid template"),
    ({"name": 7}, "name must be a format string using {var} and {dim}"),
    (
        {"name": "{dim}", "variables": "u"},
        "gives the output name 'x', which is already a coordinate",
    ),
    ({"geometry": "spherical"}, "geometry='spherical' found no latitude or longitude coordinate"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD, ids=[str(k) for k, _ in BAD])
def test_bad_arguments_are_refused_up_front(rng, kwargs, message):
    ds = _bad_inputs(rng)
    for method in (ds.grad.lazy, ds.grad.compute, ds.chunk({"x": 2}).grad.lazy):
        with pytest.raises(ValueError, match=re.escape(message)):
            method(**kwargs)


def test_bad_arguments_to_to_zarr_write_nothing(rng, tmp_path):
    ds = _grid(rng)
    with pytest.raises(
        ValueError, match=re.escape("mode must be 'w-' (refuse an existing store) or 'w'")
    ):
        ds.grad.to_zarr(tmp_path / "a.zarr", mode="a")
    with pytest.raises(ValueError, match=re.escape("edge_order must be 1 or 2; got 0")):
        ds.grad.to_zarr(tmp_path / "b.zarr", edge_order=0)
    assert list(tmp_path.iterdir()) == []


def test_bad_objects_and_coordinates(rng):
    strings = xr.DataArray(np.array(["a", "b", "c"]), dims="x", name="s")
    with pytest.raises(ValueError, match=re.escape("the DataArray 's' has dtype <U1")):
        strings.grad.compute()
    with pytest.raises(ValueError, match=re.escape("variables is for Datasets")):
        xr.DataArray(np.zeros(3), dims="x").grad.compute(variables=["a"])
    with pytest.raises(ValueError, match=re.escape("the Dataset has no numeric data variable")):
        strings.to_dataset().grad.compute()
    nonuniform = xr.DataArray(np.zeros(4), dims="x", coords={"x": [0.0, 1.0, 3.0, 4.0]})
    with pytest.raises(
        ValueError, match=re.escape("periodic dim 'x' has a non-uniform coordinate")
    ):
        nonuniform.grad.compute(periodic="x")
    short = xr.DataArray(np.zeros(2), dims="x")
    with pytest.raises(ValueError, match=re.escape("dim 'x' has 2 point(s); edge_order=2 needs")):
        short.grad.compute(edge_order=2)
    nat = np.array(["2000-01-01", "NaT", "2000-01-03"], dtype="M8[ns]")
    with pytest.raises(ValueError, match=re.escape("coordinate of 'time' holds NaT")):
        xr.DataArray(np.zeros(3), dims="time", coords={"time": nat}).grad.compute()
    repeated = xr.DataArray(np.zeros(3), dims="x", coords={"x": [0.0, 1.0, 1.0]})
    with pytest.raises(ValueError, match=re.escape("coordinate for dim 'x' repeats the value 1.0")):
        repeated.grad.compute()


def test_bad_spherical_grids():
    ds, _, _ = _sphere(30.0)
    half_curvilinear = ds.assign_coords(
        lat2=(("lat", "lon"), np.zeros((5, 12)), {"standard_name": "latitude"})
    )
    with pytest.raises(
        ValueError,
        match=re.escape(
            "latitude 'lat2' has dims ('lat', 'lon') and longitude 'lon' has dims ('lon',); "
            "a curvilinear grid has both over the same two dims"
        ),
    ):
        half_curvilinear.grad.compute(geometry="spherical")
    radians = ds.assign_coords(lat=ds["lat"].assign_attrs(units="radians"))
    with pytest.raises(
        ValueError,
        match=re.escape("needs latitude in degrees; coordinate 'lat' has units='radians'"),
    ):
        radians.grad.compute(geometry="spherical")
    no_lat = ds.isel(lat=0).drop_vars("lat").expand_dims("level")
    with pytest.raises(
        ValueError,
        match=re.escape("d/dlon needs the latitude, but no latitude coordinate was found"),
    ):
        no_lat.grad.compute("lon", geometry="spherical")
    mixed = ds.assign(zonal=ds["c"].isel(lat=0, drop=True))
    with pytest.raises(
        ValueError,
        match=re.escape(
            "variable 'zonal' has the longitude dim 'lon' but not the latitude dim 'lat'"
        ),
    ):
        mixed.grad.compute("lon", geometry="spherical")
    out_of_range = ds.assign_coords(lat=ds["lat"] * 2)
    with pytest.raises(
        ValueError, match=re.escape("needs latitude 'lat' in degrees within [-90, 90]")
    ):
        out_of_range.grad.compute(geometry="spherical")
