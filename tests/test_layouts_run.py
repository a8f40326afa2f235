"""The corpus of real layouts (tests/data_layouts.py) through ``daskgrad validate`` and ``run``.

Each product is written to disk as its model writes it (netCDF; zarr v2 for ARCO ERA5) and
run with a YAML config, as a user would, on dask's threaded scheduler. Every store equals the
accessor on the same files bit for bit (whose numbers tests/test_layouts.py checks against
numpy), and every failure on these layouts is one line with exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from cli_helpers import invoke
from conftest import assert_bitwise_equal
from data_layouts import write

import daskgrad  # noqa: F401  (registers the accessor)


def _config(tmp_path: Path, data: Path, gradient: dict | None = None, **inp) -> Path:
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(data), **inp},
                "gradient": gradient or {},
                "output": {"path": str(tmp_path / "out.zarr")},
                "cluster": {"kind": "threads"},
            }
        )
    )
    return config


def _open(path: Path) -> xr.Dataset:
    return xr.open_dataset(path, engine="zarr" if path.suffix == ".zarr" else None)


def _run_and_compare(tmp_path, paths, gradient, accessor_kw, **inp):
    config = _config(tmp_path, paths["data"], gradient, **inp)
    checked = invoke("validate", config)
    assert checked.exit_code == 0, checked.output
    result = invoke("run", "--no-progress", config)
    assert result.exit_code == 0, result.output
    store = xr.open_zarr(tmp_path / "out.zarr")
    grid = {"grid": _open(paths["grid"])} if "grid" in paths else {}
    want = _open(paths["data"]).grad.compute(**accessor_kw, **grid)
    assert sorted(store.data_vars) == sorted(want.data_vars)
    for v in want.data_vars:
        assert_bitwise_equal(store[v], want[v])
    return checked.output, result.output, store


def test_cmip6_run_leaves_out_the_bounds_says_so_and_resumes(tmp_path):
    paths = write("cmip6", tmp_path / "in")
    gradient = {"dims": ["lat", "lon"], "geometry": "spherical", "periodic": {"lon": 360.0}}
    checked, ran, store = _run_and_compare(
        tmp_path,
        paths,
        gradient,
        {"dim": ["lat", "lon"], "geometry": "spherical", "periodic": {"lon": 360.0}},
    )
    line = (
        "left out: 'time_bnds' (the cell bounds of 'time'), 'lat_bnds' (the cell bounds of "
        "'lat'), 'lon_bnds' (the cell bounds of 'lon'); name them in input.variables to "
        "differentiate them"
    )
    assert line in ran.splitlines() and f"  {line}" in checked.splitlines()
    assert store["time"].dt.calendar == "noleap"
    again = invoke(
        "run",
        "--no-progress",
        _config(tmp_path, paths["data"], gradient),
        "--set",
        "output.mode=resume",
    )
    assert again.exit_code == 0, again.output  # the fingerprint of cftime dates is stable
    assert "is already complete" in again.output


@pytest.mark.parametrize(("name", "periodic"), [("era5_cds", "longitude"), ("era5_arco", None)])
def test_era5_runs_on_the_sphere_as_it_is(tmp_path, name, periodic):
    paths = write(name, tmp_path / "in")
    gradient = {"geometry": "spherical", **({"periodic": [periodic]} if periodic else {})}
    kw = {"geometry": "spherical", "periodic": periodic}
    _, _, store = _run_and_compare(tmp_path, paths, gradient, kw)
    assert store[next(iter(store.data_vars))].dtype == np.float32


def test_era5_packed_run_keeps_the_decoded_dtype(tmp_path):
    paths = write("era5_packed", tmp_path / "in", packed_float32=True)
    _, _, store = _run_and_compare(
        tmp_path, paths, {"geometry": "spherical"}, {"geometry": "spherical"}
    )
    assert store["dt2m_dlatitude"].dtype == np.float32


def test_wrf_run_on_a_file_without_suffix(tmp_path):
    paths = write("wrf", tmp_path / "in")
    dims = ["south_north", "west_east", "south_north_stag", "west_east_stag"]
    gradient = {"dims": dims, "geometry": "spherical", "components": "geographic"}
    _, ran, store = _run_and_compare(
        tmp_path,
        paths,
        gradient,
        {"dim": dims, "geometry": "spherical", "components": "geographic"},
    )
    assert "dU_deast" in store and "'LANDMASK' (WRF's mask)" in ran


def test_roms_run_with_the_auto_mask(tmp_path):
    paths = write("roms", tmp_path / "in")
    dims = ["eta_rho", "xi_rho", "eta_u", "xi_u", "eta_v", "xi_v"]
    _, ran, store = _run_and_compare(
        tmp_path,
        paths,
        {"dims": dims, "mask": "auto", "edge_order": 2},
        {"dim": dims, "mask": "auto", "edge_order": 2},
        chunks={"eta_rho": 3, "xi_u": 4},
    )
    assert "'zeta' (a formula term of 's_rho')" in ran
    assert np.isnan(store["dtemp_dxi_rho"].values[..., 0]).all()  # land on the west


@pytest.mark.parametrize("name", ["nemo", "mom6"])
def test_run_with_the_grid_file_and_the_auto_mask(tmp_path, name):
    paths = write(name, tmp_path / "in")
    gradient = {"mask": "auto", "geometry": "spherical", "components": "geographic"}
    if name == "nemo":
        gradient["dims"] = ["y", "x"]
    kw = {k: v for k, v in gradient.items() if k != "dims"}
    kw["dim"] = gradient.get("dims")
    _, _, store = _run_and_compare(tmp_path, paths, gradient, kw, grid=str(paths["grid"]))
    assert ("tmask" if name == "nemo" else "wet_u") in store.coords


def _one_line_error(config: Path, *extra: str) -> str:
    for command in ("validate", "run"):
        result = invoke(command, *(["--no-progress"] if command == "run" else []), config, *extra)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_failures_on_these_layouts_are_one_line(tmp_path):
    moving = write("wrf", tmp_path / "moving", moving=True)["data"]
    config = _config(
        tmp_path,
        moving,
        {"dims": ["south_north", "west_east"], "geometry": "spherical", "components": "geographic"},
    )
    assert "gradient.geometry: geometry='spherical': 'XLAT' changes along 'Time'" in (
        _one_line_error(config)
    )
    cmip = write("cmip6", tmp_path / "cmip")["data"]
    assert "gradient.mask: mask='auto' found none of the models' masks" in _one_line_error(
        _config(tmp_path, cmip, {"mask": "auto"})
    )
    assert "gradient.mask: mask='land' is not a variable or coordinate" in _one_line_error(
        _config(tmp_path, cmip, {"mask": "land"})
    )
    assert "input.grid: " in _one_line_error(_config(tmp_path, cmip, grid=str(tmp_path / "no.nc")))
    mom6 = write("mom6", tmp_path / "mom6")
    assert "input.grid: grid: none of its latitude/longitude coordinates or masks" in (
        _one_line_error(_config(tmp_path, cmip, grid=str(mom6["grid"])))
    )
    (tmp_path / "junk.nc").write_text("not a netCDF file")
    assert "input.grid: cannot open" in _one_line_error(
        _config(tmp_path, cmip, grid=str(tmp_path / "junk.nc"))
    )
    roms = write("roms", tmp_path / "roms")["data"]
    assert "gradient.mask: mask 'mask_rho' has dims" in _one_line_error(
        _config(tmp_path, roms, {"mask": "mask_rho"})
    )
