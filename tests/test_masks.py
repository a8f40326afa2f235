"""The ``mask`` option: forms, broadcasting, dtypes, laziness, and the one-block step.

Every masked derivative is compared with numpy.gradient run by run on the wet points
(tests/layout_oracles.py), bit for bit.
"""

from __future__ import annotations

import re

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import assert_bitwise_equal
from layout_oracles import wet_runs

import daskgrad  # registers the accessor
from daskgrad.core.mask import apply_mask, mask_array, masked_dtype
from daskgrad.core.options import GradientOptions, OptionError
from daskgrad.core.spacing import axis_spacing
from daskgrad.plan import plan_gradients


def _ocean(rng, dtype=np.float64, nt=3, ny=7, nx=9):
    values = (rng.standard_normal((nt, ny, nx)) * 10).astype(dtype)
    wet = rng.random((ny, nx)) > 0.25
    x = np.cumsum(rng.random(nx) + 0.5)
    ds = xr.Dataset(
        {"T": (("time", "y", "x"), values), "land": (("y", "x"), (~wet).astype(np.int8))},
        coords={"x": x, "time": [0.0, 1.0, 3.0]},
    )
    return ds, wet, x


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16])
@pytest.mark.parametrize("edge_order", [1, 2])
def test_boolean_dataarray_mask_equals_numpy_on_each_wet_run(rng, dtype, edge_order):
    ds, wet, x = _ocean(rng, dtype)
    mask = ds["land"] == 0
    for obj in (ds, ds.chunk({"time": 1, "y": 2, "x": 3})):
        out = obj.grad.compute(["y", "x"], mask=mask, edge_order=edge_order)
        assert out["dT_dx"].dtype == masked_dtype(dtype)
        assert_bitwise_equal(out["dT_dx"], wet_runs(ds["T"].values, wet, 2, x, edge_order))
        assert_bitwise_equal(out["dT_dy"], wet_runs(ds["T"].values, wet, 1, None, edge_order))


def test_nan_in_the_wet_points_also_ends_a_run_and_propagate_is_overridden(rng):
    ds, wet, x = _ocean(rng)
    t = ds["T"].values.copy()
    t[1, 3, 4] = np.nan
    ds["T"] = ds["T"].copy(data=t)
    out = ds.grad.compute("x", mask=ds["land"] == 0, nan_policy="propagate")
    assert_bitwise_equal(out["dT_dx"], wet_runs(t, wet, 2, x))


def test_a_numeric_mask_by_name_is_wet_where_nonzero_and_not_nan(rng):
    ds, wet, x = _ocean(rng)
    ds["sea"] = (("y", "x"), np.where(wet, 1.0, 0.0))
    ds["sea"][0, 0] = np.nan  # a missing mask value is land
    wet = wet.copy()
    wet[0, 0] = False
    out = ds.grad.compute("x", mask="sea")
    assert_bitwise_equal(out["dT_dx"], wet_runs(ds["T"].values, wet, 2, x))
    assert "dsea_dx" not in out and "dland_dx" in out  # the mask itself is left out
    assert plan_gradients(ds, GradientOptions(mask="sea")).left_out["sea"] == "the mask"


def test_a_time_varying_mask_and_a_mask_with_a_length_one_dim(rng):
    ds, wet, x = _ocean(rng)
    ice = rng.random(ds["T"].shape) > 0.3  # a sea-ice mask that changes with time
    out = ds.grad.compute("x", variables="T", mask=xr.DataArray(ice, dims=ds["T"].dims))
    assert_bitwise_equal(out["dT_dx"], wet_runs(ds["T"].values, ice, 2, x))
    surface = xr.DataArray(wet[None], dims=("t", "y", "x"))  # NEMO-style leading t of length 1
    out = ds.grad.compute("x", variables="T", mask=surface)
    assert_bitwise_equal(out["dT_dx"], wet_runs(ds["T"].values, wet, 2, x))


def test_periodic_dims_and_complex_values(rng):
    ds, _, _ = _ocean(rng)
    ring = ds.drop_vars("x")
    ring = ring.assign(T=ring["T"] * (1 + 0.5j))
    got = ring.grad.compute("x", variables="T", periodic="x", mask=ring["land"] == 0)
    want = (
        ring["T"].where(ring["land"] == 0).grad.compute("x", periodic="x", nan_policy="one-sided")
    )
    assert_bitwise_equal(got["dT_dx"], want["dT_dx"])
    assert got["dT_dx"].dtype == np.complex128


def test_a_dask_mask_stays_lazy(rng):
    ds, wet, x = _ocean(rng)
    lazy_mask = (ds["land"] == 0).chunk({"y": 3})
    with dask.config.set(scheduler="sync"):
        result = ds.chunk({"y": 4}).grad.lazy("x", variables="T", mask=lazy_mask)
    assert isinstance(result["dT_dx"].data, da.Array)
    assert_bitwise_equal(result["dT_dx"], wet_runs(ds["T"].values, wet, 2, x))


def test_the_one_block_step_is_the_whole_arrays_step_cut(rng):
    """What a tile driver does: mask a block widened by its halo with MaskPart.block."""
    ds, wet, x = _ocean(rng)
    vp = plan_gradients(ds, GradientOptions("x", variables="T", mask=ds["land"] == 0)).variables[0]
    assert vp.mask.axes == (1, 2) and vp.nan_policy == "one-sided"
    whole = mask_array(ds["T"].values, vp.mask.broadcastable())
    region = (slice(0, 2), slice(1, 5), slice(2, 8))  # a block and its halo
    block = apply_mask(ds["T"].values[region], vp.mask.block(region))
    assert_bitwise_equal(block, whole[region])
    spacing = axis_spacing(x, axis=2, size=x.size, edge_order=1)
    (from_plan,) = daskgrad.core.gradient.differentiate_axes(whole, [spacing], vp.nan_policy)
    assert_bitwise_equal(from_plan, wet_runs(ds["T"].values, wet, 2, x))


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (0.5, "mask must be None, 'auto', a variable name or a boolean DataArray"),
        ("nowhere", "mask='nowhere' is not a variable or coordinate of the Dataset"),
        (xr.DataArray(np.ones(4, bool), dims="z"), "the mask DataArray has dims {'z': 4}"),
        (xr.DataArray(np.ones(3, bool), dims="x"), "the mask DataArray has dims {'x': 3}"),
        (xr.DataArray(np.array(["a"] * 9), dims="x"), "has dtype <U1; a mask is boolean"),
        (
            xr.DataArray(np.ones(9, bool), dims="x", coords={"x": np.arange(9.0)}),
            "the mask DataArray has other 'x' coordinates than variable 'T'",
        ),
    ],
)
def test_bad_masks_are_refused_naming_the_argument(rng, mask, message):
    ds, _, _ = _ocean(rng)
    with pytest.raises(OptionError, match=re.escape(message)) as info:
        ds.grad.compute("x", variables="T", mask=mask)
    assert info.value.argument == "mask"


def test_a_dataarray_with_its_mask_as_a_coordinate(rng):
    ds, wet, x = _ocean(rng)
    da_ = ds["T"].assign_coords(sea=ds["land"] == 0)
    out = da_.grad.compute("x", mask="sea")
    assert_bitwise_equal(out["dT_dx"], wet_runs(ds["T"].values, wet, 2, x))
