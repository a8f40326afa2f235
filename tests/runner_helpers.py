"""Small inputs and configs for the batch-runner, CLI and fault tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from daskgrad.accessor import compute_gradients
from daskgrad.batch.config import RunConfig, load_config_text
from daskgrad.batch.demo import make_demo_dataset


def write_input(path: Path, *, nt=8, nlat=19, nlon=24, nlevel=3, chunks=None) -> xr.Dataset:
    """A small demo dataset written to a zarr store; returns the dataset as written."""
    ds = make_demo_dataset(nt=nt, nlat=nlat, nlon=nlon, nlevel=nlevel)
    chunks = chunks or {"time": 4, "level": 3, "lat": 10, "lon": 12}
    ds.chunk(chunks).to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    return ds


def config_dict(inp: Path, out: Path, **sections) -> dict:
    cfg = {
        "input": {"path": str(inp)},
        "gradient": {"dims": ["time", "lat", "lon"], "edge_order": 2, "periodic": {"lon": 360.0}},
        "output": {"path": str(out)},
        "cluster": {"kind": "threads", "n_workers": 2},
    }
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


def make_config(inp: Path, out: Path, **sections) -> RunConfig:
    return load_config_text(yaml.safe_dump(config_dict(inp, out, **sections)), "test.yaml")


def write_config(path: Path, inp: Path, out: Path, **sections) -> Path:
    path.write_text(yaml.safe_dump(config_dict(inp, out, **sections)))
    return path


def reference(inp: Path, cfg: RunConfig) -> xr.Dataset:
    """The same gradients computed in memory with the accessor."""
    ds = xr.open_zarr(inp, consolidated=False).load()
    # The runner's own mapping of config keys to options; its numbers are checked against
    # numpy.gradient and independent formulas in test_runner_oracle.py.
    return compute_gradients(ds, cfg.gradient_options())


def assert_store_equals(out: Path, expected: xr.Dataset) -> None:
    got = xr.open_zarr(out, consolidated=None)
    assert sorted(got.data_vars) == sorted(expected.data_vars)
    for v in expected.data_vars:
        a = got[v].values
        b = expected[v].values
        assert a.dtype == b.dtype, v
        assert np.array_equal(a, b, equal_nan=True), v
