"""Derived fields in a batch run (``gradient.derived``) and in ``ds.grad.to_zarr``: bit for bit
the lazy accessor operators, one read of each input block, any tiling, resumable."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr
import yaml

import daskgrad  # noqa: F401  (registers the accessor)
from daskgrad.batch import store as zstore
from daskgrad.batch.config import ConfigError, load_config_text
from daskgrad.batch.derived_tasks import UnitRecipe
from daskgrad.batch.prepare import prepare_store
from daskgrad.batch.run_plan import plan
from daskgrad.batch.runner import run, write_blocks

VECTOR = {"u": "u10", "v": "v10"}
SPHERE = {"geometry": "spherical", "periodic": {"lon": 360.0}}


def _dataset() -> xr.Dataset:
    rng = np.random.default_rng(3)
    lat = np.linspace(-75, 75, 13)
    lon = np.arange(0, 360, 20.0)
    data = {k: rng.standard_normal((4, 13, 18)).astype("f4") for k in ("u10", "v10", "t2m")}
    units = {"u10": "m s-1", "v10": "m s-1", "t2m": "K"}
    names = {"u10": "eastward_wind", "v10": "northward_wind", "t2m": "air_temperature"}
    return xr.Dataset(
        {
            k: (("time", "lat", "lon"), a, {"units": units[k], "standard_name": names[k]})
            for k, a in data.items()
        },
        coords={
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )


@pytest.fixture(scope="module")
def wind_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("wind") / "in.zarr"
    ds = _dataset()
    ds.chunk({"time": 2, "lat": 5, "lon": 6}).to_zarr(path, zarr_format=3, consolidated=False)
    return path, ds


def _config(inp, out, **gradient):
    return load_config_text(
        yaml.safe_dump(
            {
                "input": {"path": str(inp)},
                "gradient": {**SPHERE, "vector": VECTOR, **gradient},
                "output": {"path": str(out), "mode": "overwrite"},
                "cluster": {"kind": "threads", "n_workers": 2},
            }
        ),
        "test.yaml",
    )


def _expected(ds, gradient):
    derived, gradients = gradient["derived"], gradient.get("gradients", True)
    dims = gradient.get("dims")
    return ds.grad.compute(dims, derived=derived, vector=VECTOR, gradients=gradients, **SPHERE)


def _assert_store(out, want):
    got = xr.open_zarr(out, consolidated=None)
    assert sorted(got.data_vars) == sorted(want.data_vars)
    for v in want.data_vars:
        assert got[v].dtype == want[v].dtype, v
        assert np.array_equal(got[v].values, want[v].values, equal_nan=True), v
        assert got[v].attrs.get("units") == want[v].attrs.get("units"), v


@pytest.mark.parametrize("tile_blocks", [None, 3])
def test_the_fused_route_equals_the_accessor_and_reads_each_block_once(
    wind_store, tmp_path, tile_blocks
):
    inp, ds = wind_store
    gradient = {"derived": ["divergence", "vorticity", "advection"], "dims": ["lat", "lon"]}
    cfg = _config(inp, tmp_path / "out.zarr", **gradient)
    p = plan(cfg)
    (unit,) = [g for g in p.groups if g.inputs]
    assert isinstance(p.recipes[unit.source], UnitRecipe) and len(p.groups) == 1
    with dask.config.set({"daskgrad.max-tile-blocks": tile_blocks}):
        summary = run(cfg, progress=False, echo=lambda line: None)
    _assert_store(tmp_path / "out.zarr", _expected(ds, gradient))
    got = xr.open_zarr(tmp_path / "out.zarr", consolidated=None)
    assert got["vorticity"].attrs["standard_name"] == "atmosphere_relative_vorticity"
    if tile_blocks is None:  # one tile: every input block read once, for all 11 outputs
        assert summary.bytes_read == sum(ds[v].nbytes for v in ("u10", "v10", "t2m"))


def test_the_graph_route_for_the_laplacian_only_derived_fields(wind_store, tmp_path):
    inp, ds = wind_store
    gradient = {"derived": ["vorticity", "laplacian"], "gradients": False}
    cfg = _config(inp, tmp_path / "out.zarr", **gradient)
    lines: list[str] = []
    summary = run(cfg, progress=False, echo=lines.append)
    assert any("whole array" in line and "Laplacian" in line for line in lines)
    want = _expected(ds, gradient)
    assert sorted(want.data_vars) == [
        "laplacian_t2m", "laplacian_u10", "laplacian_v10", "vorticity",
    ]  # fmt: skip
    _assert_store(tmp_path / "out.zarr", want)
    assert summary.bytes_read == sum(ds[v].nbytes for v in ("u10", "v10", "t2m"))


def test_resume_finishes_an_interrupted_run_bit_for_bit(wind_store, tmp_path):
    inp, ds = wind_store
    out = tmp_path / "out.zarr"
    gradient = {"derived": ["divergence", "vorticity"], "gradients": False}
    cfg = _config(inp, out, **gradient)
    p = plan(cfg)
    missing, _ = prepare_store(p)
    write_blocks(p, {v: set(sorted(b)[::3]) for v, b in missing.items()})
    zstore.set_state(str(out), state="stopped")
    resumed = cfg.model_copy(update={"output": cfg.output.model_copy(update={"mode": "resume"})})
    summary = run(resumed, progress=False, echo=lambda line: None)
    assert 0 < summary.blocks_written < summary.blocks_total
    _assert_store(out, _expected(ds, gradient))


@pytest.mark.parametrize(
    ("gradient", "key", "message"),
    [
        ({"derived": ["vorticity"], "vector": {"u": "u", "v": "v10"}}, "gradient.vector.u",
         "is not a data variable"),
        ({"derived": ["vorticity"], "geometry": None, "periodic": {},
          "vector": {**VECTOR, "dims": ["lon", "level"]}}, "gradient.vector", "vector.dims"),
    ],
)  # fmt: skip
def test_what_the_data_refuses_names_its_key(wind_store, tmp_path, gradient, key, message):
    inp, _ = wind_store
    cfg = _config(inp, tmp_path / "o.zarr", **gradient)
    with pytest.raises(ConfigError) as err:
        plan(cfg, "run.yaml")
    assert err.value.key == key and message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_to_zarr_writes_derived_fields_in_bounded_tiles(tmp_path):
    ds = _dataset().chunk({"lat": 4, "lon": 6})
    kw = {"derived": ["divergence", "vorticity"], "vector": VECTOR, **SPHERE}
    with dask.config.set({"daskgrad.max-tile-blocks": 2}):
        ds.grad.to_zarr(tmp_path / "a.zarr", ["lat", "lon"], encoding={"shards": "64KiB"}, **kw)
    _assert_store(tmp_path / "a.zarr", ds.grad.compute(["lat", "lon"], **kw))
    # A DataArray's own Laplacian, alone.
    t = ds["t2m"]
    t.grad.to_zarr(tmp_path / "b.zarr", derived=["laplacian"], gradients=False, **SPHERE)
    got = xr.open_zarr(tmp_path / "b.zarr", consolidated=None)
    assert list(got.data_vars) == ["laplacian_t2m"]
    want = t.grad.laplacian(**SPHERE).values
    assert np.array_equal(got["laplacian_t2m"].values, want)


def test_a_curvilinear_grid_runs_from_its_graph_bit_for_bit(tmp_path):
    from test_vector import rotated_solid_body

    ds, *_ = rotated_solid_body(1)
    ds = ds.expand_dims(time=2).copy(deep=True)
    ds.chunk({"y": 7, "x": 11}).to_zarr(tmp_path / "in.zarr", zarr_format=3, consolidated=False)
    cfg = load_config_text(
        yaml.safe_dump(
            {
                "input": {"path": str(tmp_path / "in.zarr"), "variables": ["ug", "vg"]},
                "gradient": {
                    "geometry": "spherical",
                    "derived": ["divergence", "vorticity"],
                    "vector": {"u": "ug", "v": "vg", "components": "grid"},
                    "gradients": False,
                },
                "output": {"path": str(tmp_path / "out.zarr")},
                "cluster": {"kind": "threads", "n_workers": 2},
            }
        )
    )
    lines: list[str] = []
    run(cfg, progress=False, echo=lines.append)
    assert any("curvilinear" in line for line in lines)
    want = ds.grad.lazy(
        derived=["divergence", "vorticity"],
        vector={"u": "ug", "v": "vg", "components": "grid"},
        gradients=False,
        geometry="spherical",
    )
    _assert_store(tmp_path / "out.zarr", want.compute())
