"""The CF-aware default choice of variables (daskgrad/roles.py): one rule, every attribute form.

Layouts built here by hand, apart from the corpus, each with one thing to recognise.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

import daskgrad  # registers the accessor
from daskgrad.core.options import OptionError
from daskgrad.plan import plan_gradients
from daskgrad.roles import left_out_by_default, left_out_line, referenced


def _field(**attrs) -> tuple:
    return (("y", "x"), np.arange(12.0).reshape(3, 4), attrs)


@pytest.mark.parametrize(
    ("attrs", "extra", "reason"),
    [
        ({"ancillary_variables": "q_flag q_err"}, "q_err", "an ancillary variable of 'f'"),
        ({"cell_measures": "area: cell_area"}, "cell_area", "a cell measure of 'f'"),
        ({"grid_mapping": "crs"}, "crs", "the grid mapping of 'f'"),
        ({"grid_mapping": "crs: y x"}, "crs", "the grid mapping of 'f'"),
        ({"coordinates": "height2d"}, "height2d", "a coordinate of 'f'"),
        ({"formula_terms": "sigma: s eta: height2d"}, "height2d", "a formula term of 'f'"),
        (
            {"time_avg_info": "average_T1,average_DT"},
            "average_DT",
            "the time-averaging information of 'f'",
        ),
    ],
)
def test_each_reference_attribute_leaves_its_variable_out(attrs, extra, reason):
    ds = xr.Dataset({"f": _field(**attrs), extra: _field()})
    assert left_out_by_default(ds) == {extra: reason}
    out = ds.grad.compute()
    assert sorted(out.data_vars) == ["df_dx", "df_dy"]


def test_bounds_and_climatology_of_coordinates_and_absent_references():
    ds = xr.Dataset(
        {
            "f": _field(cell_measures="area: areacella", ancillary_variables="nowhere"),
            "y_bnds": (("y", "b"), np.zeros((3, 2))),
            "clim_bnds": (("y", "b"), np.zeros((3, 2))),
        },
        coords={"y": ("y", [0.0, 1.0, 2.0], {"bounds": "y_bnds", "climatology": "clim_bnds"})},
    )
    assert left_out_by_default(ds) == {
        "y_bnds": "the cell bounds of 'y'",
        "clim_bnds": "the climatology bounds of 'y'",
    }


def test_coordinates_that_xarray_moved_into_encoding_and_undecoded_files(tmp_path):
    ds = xr.Dataset(
        {"f": _field(coordinates="lat2d"), "lat2d": _field(units="degrees_north")},
    )
    ds.to_netcdf(tmp_path / "c.nc")
    decoded = xr.open_dataset(tmp_path / "c.nc")  # lat2d becomes a coordinate
    assert "lat2d" in decoded.coords and decoded["f"].encoding["coordinates"] == "lat2d"
    raw = xr.open_dataset(tmp_path / "c.nc", decode_coords=False)
    assert left_out_by_default(raw) == {"lat2d": "a coordinate of 'f'"}


@pytest.mark.parametrize(
    ("name", "attrs", "reason"),
    [
        ("lsm_flags", {"flag_meanings": "land sea"}, "a flag variable (flag_meanings)"),
        ("qc", {"flag_masks": [1, 2]}, "a flag variable (flag_masks)"),
        ("tmask", {}, "NEMO's mask"),
        ("wet_c", {}, "MOM6's mask"),
        ("mask_psi", {}, "ROMS's mask"),
        ("LANDMASK", {}, "WRF's mask"),
    ],
)
def test_flags_and_the_models_masks_are_left_out(name, attrs, reason):
    ds = xr.Dataset({"f": _field(), name: _field(**attrs)})
    assert left_out_by_default(ds) == {name: reason}


def test_non_numeric_variables_are_left_out_and_refused_when_named():
    ds = xr.Dataset(
        {
            "f": _field(),
            "label": (("x",), np.array(["a", "b", "c", "d"])),
            "when": (("x",), np.array(["2000-01-01"] * 4, dtype="M8[ns]")),
            "ok": (("x",), np.array([True, False, True, True])),
        }
    )
    assert left_out_by_default(ds) == {
        "label": "dtype <U1, not numbers",
        "when": "dtype datetime64[ns], not numbers",
        "ok": "dtype bool, not numbers",
    }
    with pytest.raises(OptionError, match=re.escape("variables: 'label' has dtype <U1")):
        ds.grad.compute(variables=["f", "label"])


def test_a_named_variable_is_taken_with_a_note_and_the_default_can_be_empty():
    ds = xr.Dataset({"f": _field(cell_measures="area: area"), "area": _field(units="m2")})
    with pytest.warns(UserWarning, match=re.escape("'area' is a cell measure of 'f'")):
        out = ds.grad.compute("x", variables="area")
    np.testing.assert_array_equal(out["darea_dx"], ds["area"].differentiate("x"))
    only_measures = xr.Dataset(
        {"area": _field(units="m2")},
        coords={"y": ("y", [0.0, 1.0, 2.0], {"cell_measures": "area: area"})},
    )
    with pytest.raises(OptionError, match="every data variable of the Dataset is left out"):
        only_measures.grad.compute()
    plan = plan_gradients(ds, None)
    assert plan.left_out == {"area": "a cell measure of 'f'"}


def test_variables_without_the_requested_dims_are_reported():
    ds = xr.Dataset({"f": _field(), "series": (("t",), np.arange(3.0)), "scalar": ((), 1.0)})
    plan = plan_gradients(ds, daskgrad.core.options.GradientOptions(dim=["y", "x"]))
    assert plan.left_out == {"series": "none of the dims ['y', 'x']", "scalar": "no dims"}
    line = left_out_line(plan.left_out, "input.variables")
    assert line == (
        "left out: 'series' (none of the dims ['y', 'x']), 'scalar' (no dims); name them in "
        "input.variables to differentiate them"
    )


def test_referenced_parses_every_form():
    assert referenced({"cell_measures": "area: a volume: v"}, "cell_measures") == ["a", "v"]
    assert referenced({"grid_mapping": "m1: x y m2: lat lon"}, "grid_mapping") == ["m1", "m2"]
    assert referenced({"bounds": 3}, "bounds") == []
    assert referenced({}, "bounds") == []
