"""`daskgrad run` against oracles that owe nothing to daskgrad.

Each test writes a small real input (zarr or netCDF), runs the real command (``daskgrad run``
through click, in this process) on a YAML file, and compares every output array with
``numpy.gradient`` applied to the raw input values and coordinates, or, for spherical geometry,
with the formula written out here::

    d/dlat = numpy.gradient(f, lat_radians) / R
    d/dlon = numpy.gradient(f, lon_radians) / (R cos(lat))

Comparisons are ``np.testing.assert_array_equal`` on arrays whose dtype is checked too. The
only ``allclose`` comparisons are between two *runs* (radius 1 against the default, hours against
seconds): those differ by a rounding of the coordinate or of the divisor, so a ratio is not
bit-exact even though each run is bit-exact against its own oracle.

The last tests check that every key of the config schema is named in the configs of some test
that uses it for real (this file, the runner, CLI, fault, cluster tests), so a new key cannot
arrive without a run.
"""

from __future__ import annotations

import os
import re
import time
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
import zarr
from cli_helpers import chunk_files, invoke
from pydantic import BaseModel

from daskgrad.batch.config import RunConfig

R_EARTH = 6371008.8  # written out: the oracle must not import the default from daskgrad
TESTS = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------
# Inputs, configs, the run
# --------------------------------------------------------------------------------------------


def cartesian_dataset() -> xr.Dataset:
    """``f(time, y, x)`` float64 and ``g(y, x)`` float32; hourly times, uniform ``y``,
    non-uniform ``x`` (so numpy's uniform and three-point formulas both run)."""
    rng = np.random.default_rng(14)
    nt, ny, nx = 6, 9, 11
    time = pd.date_range("2026-01-01", periods=nt, freq="h")
    y = np.arange(ny) * 0.5
    x = np.cumsum(rng.uniform(0.5, 1.5, nx))
    return xr.Dataset(
        {
            "f": (("time", "y", "x"), rng.standard_normal((nt, ny, nx)), {"units": "K"}),
            "g": (("y", "x"), rng.standard_normal((ny, nx)).astype(np.float32)),
        },
        coords={"time": time, "y": y, "x": x},
    )


def globe_dataset() -> xr.Dataset:
    """``t(lat, lon)`` float64 on a global grid (no poles), lon a full circle of 30 points."""
    rng = np.random.default_rng(15)
    lat = np.linspace(-80.0, 80.0, 17)
    lon = np.arange(30) * 12.0
    la, lo = np.deg2rad(lat)[:, None], np.deg2rad(lon)[None, :]
    t = 280.0 + 20.0 * np.cos(la) * np.sin(2 * lo) + rng.standard_normal((17, 30))
    return xr.Dataset(
        {"t": (("lat", "lon"), t, {"units": "K"})},
        coords={
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
        },
    )


def write(ds: xr.Dataset, path: Path, fmt: str, chunks: dict[str, int]) -> Path:
    if fmt == "zarr":
        ds.chunk(chunks).to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    else:
        ds.to_netcdf(
            path,
            encoding={v: {"chunksizes": [chunks[d] for d in ds[v].dims]} for v in ds.data_vars},
        )
    return path


def run_yaml(tmp_path: Path, config: dict[str, Any], *args: str, name: str = "run.yaml") -> Any:
    """Write ``config`` as YAML and run ``daskgrad run`` on it; return click's result."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return invoke("run", "--no-progress", path, *args)


def config(inp: Path, out: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "input": {"path": str(inp)},
        "gradient": {},
        "output": {"path": str(out)},
        "cluster": {"kind": "threads", "n_workers": 2},
    }
    for section, values in sections.items():
        cfg[section].update(values)
    return cfg


def outputs(out: Path) -> dict[str, np.ndarray]:
    """Every data variable of an output store, as numpy arrays read with zarr (not xarray)."""
    group = zarr.open_group(str(out), mode="r")
    names = [n for n, a in group.arrays() if a.metadata.dimension_names != (n,)]
    return {n: group[n][...] for n in names}


def assert_outputs(out: Path, expected: dict[str, np.ndarray]) -> None:
    got = outputs(out)
    assert sorted(got) == sorted(expected)
    for name, want in expected.items():
        assert got[name].dtype == want.dtype, (name, got[name].dtype, want.dtype)
        np.testing.assert_array_equal(got[name], want, err_msg=name, strict=True)


def seconds(time: np.ndarray, unit: str = "s") -> np.ndarray:
    """Datetimes as float offsets from the first one, in ``unit`` (numpy's own division)."""
    return (time - time[0]) / np.timedelta64(1, unit)


def periodic_gradient(
    f: np.ndarray, x: np.ndarray, period: float, axis: int, edge_order: int
) -> np.ndarray:
    """numpy.gradient across a seam: pad one wrapped point at each end, differentiate, trim."""
    padded = np.concatenate([np.take(f, [-1], axis), f, np.take(f, [0], axis)], axis=axis)
    coord = np.concatenate([[x[-1] - period], x, [x[0] + period]])
    g = np.gradient(padded, coord, axis=axis, edge_order=edge_order)
    return np.take(g, np.arange(1, f.shape[axis] + 1), axis)


# --------------------------------------------------------------------------------------------
# Cartesian: numpy.gradient of the raw arrays, and xarray's differentiate
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("fmt", ["zarr", "netcdf"])
def test_cartesian_run_equals_numpy_gradient(tmp_path, fmt, edge_order):
    ds = cartesian_dataset()
    suffix = {"zarr": "zarr", "netcdf": "nc"}[fmt]
    inp = write(ds, tmp_path / f"in.{suffix}", fmt, {"time": 4, "y": 4, "x": 5})
    out = tmp_path / "out.zarr"
    cfg = config(inp, out, gradient={"dims": ["time", "y", "x"], "edge_order": edge_order})
    cfg["input"]["chunks"] = {"time": 2, "y": 3}  # irregular blocks: 2+2+2, 3+3+3, 5+5+1
    result = run_yaml(tmp_path, cfg)
    assert result.exit_code == 0, result.output

    f, g = ds["f"].values, ds["g"].values
    t, y, x = seconds(ds["time"].values), ds["y"].values, ds["x"].values
    df = np.gradient(f, t, y, x, edge_order=edge_order)
    dg = np.gradient(g, y, x, edge_order=edge_order)
    assert dg[0].dtype == np.float32  # numpy keeps float32 with float64 coordinates
    assert_outputs(
        out,
        {"df_dtime": df[0], "df_dy": df[1], "df_dx": df[2], "dg_dy": dg[0], "dg_dx": dg[1]},
    )
    # xarray's differentiate gives numpy's numbers for numeric coordinates: a second oracle.
    got = outputs(out)
    for var, dim in (("f", "y"), ("f", "x"), ("g", "x")):
        np.testing.assert_array_equal(
            got[f"d{var}_d{dim}"],
            ds[var].differentiate(dim, edge_order=edge_order).values,
            strict=True,
        )


@pytest.mark.parametrize("edge_order", [1, 2])
def test_periodic_longitude_equals_numpy_gradient_across_the_seam(tmp_path, edge_order):
    ds = globe_dataset()
    inp = write(ds, tmp_path / "in.zarr", "zarr", {"lat": 5, "lon": 7})
    out = tmp_path / "out.zarr"
    cfg = config(inp, out, gradient={"edge_order": edge_order, "periodic": {"lon": 360.0}})
    result = run_yaml(tmp_path, cfg)
    assert result.exit_code == 0, result.output
    t, lat, lon = ds["t"].values, ds["lat"].values, ds["lon"].values
    assert_outputs(
        out,
        {
            "dt_dlat": np.gradient(t, lat, axis=0, edge_order=edge_order),
            "dt_dlon": periodic_gradient(t, lon, 360.0, axis=1, edge_order=edge_order),
        },
    )


# --------------------------------------------------------------------------------------------
# Spherical: the formula, and gradient.radius
# --------------------------------------------------------------------------------------------


def spherical_oracle(ds: xr.Dataset, radius: float, edge_order: int) -> dict[str, np.ndarray]:
    t = ds["t"].values
    lat_r, lon_r = np.deg2rad(ds["lat"].values), np.deg2rad(ds["lon"].values)
    d_lat = np.gradient(t, lat_r, axis=0, edge_order=edge_order) / radius
    d_lon = periodic_gradient(t, lon_r, np.deg2rad(360.0), axis=1, edge_order=edge_order)
    return {"dt_dlat": d_lat, "dt_dlon": d_lon / (radius * np.cos(lat_r))[:, None]}


@pytest.mark.parametrize("edge_order", [1, 2])
def test_spherical_run_equals_the_formula_and_radius_scales_it(tmp_path, edge_order):
    ds = globe_dataset()
    inp = write(ds, tmp_path / "in.zarr", "zarr", {"lat": 5, "lon": 7})
    gradient = {"edge_order": edge_order, "periodic": {"lon": 360.0}, "geometry": "spherical"}
    earth, unit = tmp_path / "earth.zarr", tmp_path / "unit.zarr"
    result = run_yaml(tmp_path, config(inp, earth, gradient=gradient), name="earth.yaml")
    assert result.exit_code == 0, result.output
    result = run_yaml(
        tmp_path, config(inp, unit, gradient={**gradient, "radius": 1.0}), name="unit.yaml"
    )
    assert result.exit_code == 0, result.output

    # Bit-exact: the run and the formula take the same numpy steps (deg2rad, gradient, divide).
    assert_outputs(earth, spherical_oracle(ds, R_EARTH, edge_order))
    assert_outputs(unit, spherical_oracle(ds, 1.0, edge_order))
    # The effect of radius: the same field scaled by R. Not bit-exact (x / R * R rounds).
    on_earth, on_unit = outputs(earth), outputs(unit)
    for name in on_earth:
        np.testing.assert_allclose(on_earth[name] * R_EARTH, on_unit[name], rtol=1e-12, atol=0)
        assert not np.allclose(on_earth[name], on_unit[name])
    assert xr.open_zarr(earth)["dt_dlon"].attrs["units"] == "K m-1"


# --------------------------------------------------------------------------------------------
# gradient.datetime_unit, output.name, input.engine, output.verify
# --------------------------------------------------------------------------------------------


def test_datetime_unit_hours_against_seconds(tmp_path):
    ds = cartesian_dataset()
    inp = write(ds, tmp_path / "in.zarr", "zarr", {"time": 4, "y": 4, "x": 5})
    f, time = ds["f"].values, ds["time"].values
    got = {}
    for unit in ("s", "h"):
        out = tmp_path / f"out-{unit}.zarr"
        cfg = config(
            inp, out, input={"variables": ["f"]}, gradient={"dims": ["time"], "datetime_unit": unit}
        )
        result = run_yaml(tmp_path, cfg, name=f"{unit}.yaml")
        assert result.exit_code == 0, result.output
        assert_outputs(out, {"df_dtime": np.gradient(f, seconds(time, unit), axis=0)})
        got[unit] = outputs(out)["df_dtime"]
        assert xr.open_zarr(out)["df_dtime"].attrs["units"] == f"K {unit}-1"
    # Per hour is 3600 times per second (up to the rounding of the hour offsets: not bit-exact).
    np.testing.assert_allclose(got["h"], got["s"] * 3600.0, rtol=1e-12, atol=0)
    assert not np.allclose(got["h"], got["s"])


def test_output_names_come_from_the_template(tmp_path):
    ds = cartesian_dataset()
    inp = write(ds, tmp_path / "in.zarr", "zarr", {"time": 4, "y": 4, "x": 5})
    out = tmp_path / "out.zarr"
    cfg = config(inp, out, gradient={"dims": ["y", "x"]}, output={"name": "grad_{dim}_of_{var}"})
    result = run_yaml(tmp_path, cfg)
    assert result.exit_code == 0, result.output
    y, x = ds["y"].values, ds["x"].values
    df, dg = np.gradient(ds["f"].values, y, x, axis=(1, 2)), np.gradient(ds["g"].values, y, x)
    assert_outputs(
        out,
        {"grad_y_of_f": df[0], "grad_x_of_f": df[1], "grad_y_of_g": dg[0], "grad_x_of_g": dg[1]},
    )


@pytest.mark.parametrize("engine", ["netcdf", "zarr"])
def test_input_engine_is_the_one_used(tmp_path, engine):
    """A netCDF file named ``data.zarr`` and a zarr store named ``data.nc``: the suffix guesses
    wrong, so the run fails without ``input.engine`` and equals numpy with it. (A file with
    a suffix that says nothing, ``data.bin`` or ``wrfout_d01_...``, is read as netCDF.)"""
    ds = cartesian_dataset()[["g"]]
    fmt, misleading = {"netcdf": ("netcdf", "data.zarr"), "zarr": ("zarr", "data.nc")}[engine]
    inp = write(ds, tmp_path / misleading, fmt, {"y": 4, "x": 5})
    guessed = run_yaml(tmp_path, config(inp, tmp_path / "guessed.zarr"), name="guessed.yaml")
    assert guessed.exit_code == 2, guessed.output
    assert "input.path" in guessed.stderr
    assert not (tmp_path / "guessed.zarr").exists()

    out = tmp_path / "out.zarr"
    result = run_yaml(tmp_path, config(inp, out, input={"engine": engine}))
    assert result.exit_code == 0, result.output
    dy, dx = np.gradient(ds["g"].values, ds["y"].values, ds["x"].values)
    assert_outputs(out, {"dg_dy": dy, "dg_dx": dx})


def test_output_verify_repairs_a_damaged_complete_store(tmp_path):
    ds = cartesian_dataset()[["f"]]
    inp = write(ds, tmp_path / "in.zarr", "zarr", {"time": 2, "y": 3, "x": 4})
    out = tmp_path / "out.zarr"
    cfg = config(inp, out, gradient={"dims": ["x"]})
    assert run_yaml(tmp_path, cfg).exit_code == 0
    want = {"df_dx": np.gradient(ds["f"].values, ds["x"].values, axis=2)}
    assert_outputs(out, want)
    damaged = sorted(chunk_files(out))[4]
    damaged.write_bytes(b"not a chunk")

    resume = {"path": str(out), "mode": "resume"}
    plain = run_yaml(
        tmp_path, config(inp, out, gradient={"dims": ["x"]}, output=resume), name="plain.yaml"
    )
    assert plain.exit_code == 0, plain.output
    assert "already complete; nothing to do" in plain.stdout
    assert damaged.read_bytes() == b"not a chunk"  # without verify a complete store is trusted

    verified = run_yaml(
        tmp_path,
        config(inp, out, gradient={"dims": ["x"]}, output={**resume, "verify": True}),
        name="verify.yaml",
    )
    assert verified.exit_code == 0, verified.output
    assert "repaired 1 damaged chunk(s) of a complete store" in verified.stdout
    assert_outputs(out, want)


def test_every_jobqueue_key_reaches_the_job_script():
    """The job-queue keys cannot run here (no batch system): the job script dask-jobqueue would
    submit is their real use. Each key below must show in it (``jobs``, ``security`` and
    ``shared_temp_directory`` configure the cluster instead: next test)."""
    pytest.importorskip("dask_jobqueue", reason="the [hpc] extra (dask-jobqueue) is not installed")
    from daskgrad.batch.config import ClusterConfig
    from daskgrad.batch.jobqueue import job_script

    jobqueue = {
        "cores": 4,
        "memory": "8GiB",
        "processes": 2,
        "queue": "short",
        "walltime": "01:30:00",
        "account": "proj7",
        "interface": "lo",
        "local_directory": "/scratch/dg-local",
        "log_directory": "/scratch/dg-logs",
        "resource_spec": "select=1:ncpus=4",
        "python": "/opt/py/bin/python3",
        "job_extra_directives": ["-l place=scatter"],
        "job_script_prologue": ["module load dg"],
        "worker_extra_args": ["--lifetime", "55m"],
    }
    script = job_script(ClusterConfig.model_validate({"kind": "pbs", "jobqueue": jobqueue}))
    for text in (
        "#PBS -q short",
        "#PBS -A proj7",
        "#PBS -l select=1:ncpus=4",
        "walltime=01:30:00",
        "#PBS -l place=scatter",
        "module load dg",
        "/opt/py/bin/python3 -m distributed.cli.dask_worker",
        "--nthreads 2 --memory-limit 4.00GiB --nworkers 2",
        "--local-directory /scratch/dg-local",
        "--interface lo",
        "--lifetime 55m",
        "/scratch/dg-logs",
    ):
        assert text in script, (text, script)


FAKE_SBATCH = """#!/bin/sh
cp "$1" "{jobs}/job-$$.sh"
echo "Submitted batch job $$"
"""


@pytest.mark.cluster
def test_jobqueue_jobs_and_tls_certificates_reach_the_submitted_jobs(tmp_path, monkeypatch):
    """A real SLURMCluster with a stand-in ``sbatch``/``scancel`` on PATH: ``jobs: 3`` submits
    three job scripts, and ``security`` with ``shared_temp_directory`` puts the TLS certificates
    the scripts name in that directory."""
    pytest.importorskip("dask_jobqueue", reason="the [hpc] extra (dask-jobqueue) is not installed")
    pytest.importorskip("cryptography", reason="TLS with temporary certificates needs it")
    from daskgrad.batch.cluster import open_client
    from daskgrad.batch.config import ClusterConfig

    bin_dir, shared, submitted = tmp_path / "bin", tmp_path / "shared", tmp_path / "submitted"
    for folder in (bin_dir, shared, submitted):
        folder.mkdir()
    (bin_dir / "sbatch").write_text(FAKE_SBATCH.format(jobs=submitted))
    (bin_dir / "scancel").write_text("#!/bin/sh\n")
    for tool in ("sbatch", "scancel"):
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    jobqueue = {
        "cores": 2,
        "memory": "4GiB",
        "jobs": 3,
        "security": True,
        "shared_temp_directory": str(shared),
    }
    with open_client(
        ClusterConfig.model_validate({"kind": "slurm", "jobqueue": jobqueue})
    ) as client:
        assert client.cluster.scheduler_address.startswith("tls://")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list(submitted.iterdir())) < 3:
            time.sleep(0.05)
    texts = [p.read_text() for p in submitted.iterdir()]
    assert len(texts) == 3
    certificates = sorted(p.name for p in shared.iterdir())
    assert len(certificates) == 3 and all(".dask-jobqueue.worker." in n for n in certificates)
    for text in texts:
        assert f"--tls-ca-file {shared}/.dask-jobqueue.worker.ca_file." in text


# --------------------------------------------------------------------------------------------
# Every config key has a run
# --------------------------------------------------------------------------------------------


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def schema_keys(
    model: type[BaseModel] = RunConfig, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every key of the config schema as a path, ``("cluster", "jobqueue", "cores")``."""
    keys = []
    for name, info in model.model_fields.items():
        keys.append((*prefix, name))
        sub = _model_of(info.annotation)
        if sub is not None:
            keys += schema_keys(sub, (*prefix, name))
    return keys


#: Files whose configs are only validated, never run: they do not count.
VALIDATION_ONLY = {"test_config.py", "bad_configs"}


def run_sources() -> dict[str, str]:
    found = {}
    for path in sorted(TESTS.rglob("*")):
        if path.suffix not in (".py", ".yaml", ".yml") or VALIDATION_ONLY & set(
            path.relative_to(TESTS).parts
        ):
            continue
        found[str(path.relative_to(TESTS))] = path.read_text()
    return found


def named_in(key: tuple[str, ...], text: str) -> bool:
    """``key`` set in a YAML text, a dict literal or a ``--set`` item of ``text``.

    A grep, not a parse: it proves the key is written in a config of a file whose tests run,
    which is what catches a new key that no run sets.
    """
    leaf = re.escape(key[-1])
    return any(
        re.search(pattern, text, re.M)
        for pattern in (
            rf"^\s*{leaf}\s*:",  # YAML
            rf"[\"']{leaf}[\"']\s*:",  # a dict literal
            rf"\b{re.escape('.'.join(key))}=",  # --set gradient.radius=1.0
        )
    )


def test_schema_walk_finds_the_keys_of_every_section():
    keys = {".".join(k) for k in schema_keys()}
    assert {
        "gradient.radius",
        "output.verify",
        "cluster.tls.ca_file",
        "cluster.jobqueue.cores",
    } <= keys
    assert len(keys) >= 45
    assert named_in(("gradient", "radius"), 'gradient: {"radius": 1.0}')
    assert named_in(("output", "verify"), "output:\n  verify: true\n")
    assert named_in(("output", "mode"), '"--set", "output.mode=resume"')
    assert not named_in(("gradient", "radius"), "radius = 1.0; f(radius=2)")


def test_every_config_key_is_set_in_a_test_that_runs():
    sources = run_sources()
    assert "test_runner_oracle.py" in sources and "test_config.py" not in sources
    missing = [
        ".".join(k) for k in schema_keys() if not any(named_in(k, t) for t in sources.values())
    ]
    assert not missing, (
        f"config keys set by no test that runs (only test_config.py validates them): {missing}; "
        "add a real run that sets each and checks its effect (tests/test_runner_oracle.py)"
    )
