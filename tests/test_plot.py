"""``daskgrad plot`` and :func:`daskgrad.batch.plot.plot_store` on real stores from real runs.

The stores are written by the accessor's ``ds.grad.to_zarr`` (a small demo grid) and by the
``daskgrad demo`` command; PNGs are read back with matplotlib.
"""

from __future__ import annotations

import builtins
import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr
from cli_helpers import invoke

import daskgrad  # noqa: F401  (registers .grad)
from daskgrad.batch.demo import DEMO_PLOT_VARIABLE, make_demo_dataset
from daskgrad.batch.plot import INSTALL_HINT, PlotError, parse_selection, plot_store

mpimg = pytest.importorskip("matplotlib.image", reason="the [plot] extra is what is tested")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A spherical gradient of the demo data on a small grid, as the accessor writes it."""
    path = tmp_path_factory.mktemp("plot") / "grad.zarr"
    ds = make_demo_dataset(nt=4, nlat=19, nlon=36, nlevel=3).chunk({"time": 2})
    ds.grad.to_zarr(
        path, dim=["time", "level", "lat", "lon"], geometry="spherical", periodic={"lon": 360.0}
    )
    return path


@pytest.fixture(scope="module")
def plain_store(tmp_path_factory):
    """A Cartesian gradient: dims (t, y, x) with no lat/lon, ``x`` with no coordinate."""
    path = tmp_path_factory.mktemp("plain") / "grad.zarr"
    rng = np.random.default_rng(1)
    ds = xr.Dataset(
        {"h": (("t", "y", "x"), rng.standard_normal((3, 6, 8)), {"units": "m"})},
        coords={"t": [0.0, 1.0, 2.0], "y": ("y", np.arange(6) * 2.0, {"units": "km"})},
    )
    ds.grad.to_zarr(path, dim="y")
    return path


def _png(path):
    image = mpimg.imread(path)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    return image


def test_map_of_a_lat_lon_variable(store, tmp_path):
    out = tmp_path / "dt2m_dlon.png"
    r = plot_store(store, "dt2m_dlon", out=out)
    assert r.path == out and r.kind == "map"
    assert r.dims == ("lat", "lon")  # (y, x): longitude on x, latitude on y
    assert r.fixed == {"time": 2}  # the middle of 4
    assert r.title == "dt2m_dlon [K m-1]\ntime=2026-01-01T02:00 (middle: index 2 of 4)"
    image = _png(out)
    assert image.shape[:2] == (500, 800)  # figsize (8, 5) at 100 dpi
    assert image.shape[2] in (3, 4)
    assert np.unique(image.reshape(-1, image.shape[2]), axis=0).shape[0] > 50  # drawn, not blank


def test_map_after_selection_of_other_dims(store, tmp_path):
    r = plot_store(
        store, "du_dlat", out=tmp_path / "u.png", sel={"level": "450"}, isel={"time": "-1"}
    )
    assert r.kind == "map" and r.dims == ("lat", "lon")
    assert r.fixed == {"time": 3, "level": 1}  # 447.2 hPa is nearest to 450
    assert "time=2026-01-01T03:00" in r.title and "level=447.214" in r.title
    assert "middle" not in r.title


def test_plain_plot_when_not_lat_lon(store, plain_store, tmp_path):
    # lat/lon fixed: the last two dims left are (level, lat), not a map
    r = plot_store(store, "du_dlevel", out=tmp_path / "a.png", isel={"lon": "0"})
    assert r.kind == "plain" and r.dims == ("level", "lat")
    assert r.fixed == {"lon": 0, "time": 2}
    # no lat/lon at all: the last two dims, x without a coordinate
    r = plot_store(plain_store, "dh_dy", out=tmp_path / "b.png")
    assert r.kind == "plain" and r.dims == ("y", "x") and r.fixed == {"t": 1}
    assert _png(r.path).shape[:2] == (500, 800)


def test_line_for_one_dim_left(store, tmp_path):
    r = plot_store(store, "dt2m_dtime", out=tmp_path / "line.png", sel={"lat": "41", "lon": "90"})
    assert r.kind == "line" and r.dims == ("time",)
    assert r.fixed == {"lat": 13, "lon": 9}
    _png(r.path)


def test_selection_by_date(store, tmp_path):
    r = plot_store(store, "dt2m_dlat", out=tmp_path / "d.png", sel={"time": "2026-01-01T01:10"})
    assert r.fixed == {"time": 1}


def test_default_output_name(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = plot_store(store, "dt2m_dlat")
    assert r.path.name == "dt2m_dlat.png" and (tmp_path / "dt2m_dlat.png").exists()


def test_figure_size(store, tmp_path):
    r = plot_store(store, "dt2m_dlat", out=tmp_path / "s.png", figsize=(4.0, 3.0), dpi=50)
    assert _png(r.path).shape[:2] == (150, 200)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variable": "nope"}, "VARIABLE: 'nope' is not in"),
        ({"sel": {"depth": "3"}}, "--sel: 'depth' is not a dim of 'dt2m_dlon'; its dims are"),
        ({"isel": {"time": "9"}}, "--isel: time=9 is out of range; allowed: 0 to 3"),
        ({"isel": {"time": "x"}}, "--isel: time='x' is not an integer index"),
        ({"sel": {"lat": "north"}}, "--sel: lat='north' is not a number"),
        ({"sel": {"time": "soon"}}, "--sel: time='soon' is not a date such as"),
        ({"sel": {"lat": "1"}, "isel": {"lat": "1"}}, "--sel and --isel both fix dim 'lat'"),
        (
            {"isel": {"time": "0", "lat": "0", "lon": "0"}},
            "--sel/--isel fix every dim of 'dt2m_dlon'",
        ),
    ],
)
def test_errors_name_the_argument(store, tmp_path, kwargs, message):
    args = {"variable": "dt2m_dlon", "out": tmp_path / "e.png", **kwargs}
    variable = args.pop("variable")
    with pytest.raises(PlotError, match=re.escape(message)):
        plot_store(store, variable, **args)
    assert not (tmp_path / "e.png").exists()


def test_missing_store(tmp_path):
    with pytest.raises(PlotError, match=re.escape(f"STORE: '{tmp_path / 'no.zarr'}' does not")):
        plot_store(tmp_path / "no.zarr", "v")


def test_parse_selection_errors():
    assert parse_selection(("a=1", "b = x"), "--sel") == {"a": "1", "b": "x"}
    with pytest.raises(PlotError, match=re.escape("--sel: got 'a'; expected DIM=VALUE")):
        parse_selection(("a",), "--sel")
    with pytest.raises(PlotError, match=re.escape("--isel: dim 'a' is given twice")):
        parse_selection(("a=1", "a=2"), "--isel")


def test_without_matplotlib(store, tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=re.escape(INSTALL_HINT)):
        plot_store(store, "dt2m_dlon", out=tmp_path / "x.png")
    result = invoke("plot", store, "dt2m_dlon", "--out", tmp_path / "x.png")
    assert result.exit_code == 2
    assert result.stderr.strip() == INSTALL_HINT


# -- the command ------------------------------------------------------------------------------


def test_command_writes_png(store, tmp_path):
    out = tmp_path / "cli.png"
    result = invoke(
        "plot", store, "du_dlon", "--out", out, "--sel", "level=200", "--isel", "time=0"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote {out} (map: lat / lon)"
    assert _png(out).shape[:2] == (500, 800)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["VAR", "--isel", "time"], "--isel: got 'time'; expected DIM=VALUE, e.g. --isel time=0"),
        (["nope"], "VARIABLE: 'nope' is not in"),
        (["dt2m_dlon", "--sel", "depth=1"], "--sel: 'depth' is not a dim of 'dt2m_dlon'"),
    ],
)
def test_command_errors_one_line_exit_2(store, tmp_path, args, message):
    result = invoke("plot", store, *args, "--out", tmp_path / "c.png")
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr


def test_command_missing_store_as_a_process(tmp_path):
    missing = tmp_path / "missing.zarr"
    result = subprocess.run(
        [sys.executable, "-m", "daskgrad.batch.cli", "plot", str(missing), "v"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"STORE: '{missing}' does not exist; give the path of a zarr store"
    )
    assert "Traceback" not in result.stderr


def test_demo_writes_a_picture(tmp_path):
    folder = tmp_path / "demo"
    result = invoke("demo", "--out", folder, "--no-progress", "--set", "cluster.kind=threads")
    assert result.exit_code == 0, result.output
    png = folder / f"{DEMO_PLOT_VARIABLE}.png"
    assert result.stdout.splitlines()[-1] == f"picture: {png}"
    assert _png(png).shape[:2] == (500, 800)


def test_long_dims_are_thinned(store, tmp_path):
    r = plot_store(store, "dt2m_dlon", out=tmp_path / "t.png", max_points=10)
    assert r.step == {"lat": 2, "lon": 4}  # 19 -> 10 points, 36 -> 9 points
    assert "lat: 1 point in 2, lon: 1 point in 4" in r.title
    assert plot_store(store, "dt2m_dlon", out=tmp_path / "u.png").step == {}


def test_incomplete_run_is_said(tmp_path):
    from daskgrad.batch.store import set_state

    path = tmp_path / "g.zarr"
    make_demo_dataset(nt=2, nlat=5, nlon=8, nlevel=2).grad.to_zarr(path, dim="lat", variables="t2m")
    assert "incomplete" not in plot_store(path, "dt2m_dlat", out=tmp_path / "a.png").title
    set_state(str(path), complete=False, state="running")
    title = plot_store(path, "dt2m_dlat", out=tmp_path / "b.png").title
    assert title.splitlines()[0] == (
        "dt2m_dlat [K degrees_north-1] (incomplete run: blocks not written yet show the fill value)"
    )


def test_not_a_store_and_unwritable_out(store, tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(PlotError, match=re.escape("is not a readable zarr store")):
        plot_store(tmp_path / "folder", "v")
    with pytest.raises(PlotError, match=re.escape("--out: cannot write")):
        plot_store(store, "dt2m_dlon", out=tmp_path / "no" / "such" / "dir.png")
    with pytest.raises(PlotError, match=re.escape("max_points: got 1; allowed: an integer")):
        plot_store(store, "dt2m_dlon", out=tmp_path / "m.png", max_points=1)
