"""output.encoding: codecs, stored dtype, shards, zarr v2, per-variable overrides, and a
sharded run killed mid-way then resumed (daskgrad/batch/encoding.py, docs/reliability.md).

The reference is ``numpy.gradient`` on the same float64 input, compared bit for bit; a float32
or float16 output must equal that result cast with numpy's ``astype``. Warnings are errors
here (the project-wide filter for zarr's consolidated-metadata warning does not apply): a
normal run and ``xr.open_zarr`` of its output must be warning-free.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from cli_helpers import daskgrad, grid_config, grid_reference, start, write_grid

from daskgrad.batch import store as zstore
from daskgrad.batch.budget import BlockCost, WorkerMemory
from daskgrad.batch.config import ConfigError, load_config
from daskgrad.batch.encoding import Encoding
from daskgrad.batch.runner import plan, run
from daskgrad.batch.schedule import Group, tile_plans
from daskgrad.batch.tiles import Tile
from daskgrad.batch.writer import graph_writer

pytestmark = pytest.mark.filterwarnings("error")

N, CHUNK = 64, 16  # 4 x 4 blocks per output: a run takes well under a second


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("enc") / "in.zarr"
    return path, write_grid(path, N, CHUNK)


def _run(tmp_path: Path, inp: Path, name: str = "out", **encoding) -> Path:
    out = tmp_path / f"{name}.zarr"
    cfg = load_config(
        grid_config(tmp_path / f"{name}.yaml", inp, out, output={"encoding": encoding})
    )
    summary = run(cfg, progress=False, echo=lambda line: None)
    assert summary.blocks_written == summary.blocks_total == 2 * (N // CHUNK) ** 2
    assert zstore.read_state(str(out))["complete"] is True
    return out


def _read(out: Path, name: str) -> np.ndarray:
    return zarr.open_array(str(out), path=name, mode="r")[...]


def _files(out: Path, name: str) -> int:
    return sum(len(files) for _d, _s, files in os.walk(out / name))


# -- codecs and dtypes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "codec_type"),
    [
        ({}, "BloscCodec"),
        ({"codec": "zstd"}, "ZstdCodec"),
        ({"codec": "zstd", "level": 9}, "ZstdCodec"),
        ({"codec": "blosc"}, "BloscCodec"),
        ({"codec": "blosc", "shuffle": "bit", "level": 9, "cname": "zstd"}, "BloscCodec"),
        ({"codec": "blosc", "shuffle": "none", "cname": "lz4hc"}, "BloscCodec"),
        ({"codec": "none"}, None),
    ],
)
def test_every_codec_round_trips_bit_exact(grid, tmp_path, encoding, codec_type):
    inp, values = grid
    out = _run(tmp_path, inp, **encoding)
    want = grid_reference(values)
    for name, expected in want.items():
        got = _read(out, name)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, expected)
    compressors = zarr.open_array(str(out), path="da_dx", mode="r").compressors
    assert [type(c).__name__ for c in compressors] == ([codec_type] if codec_type else [])
    if "level" in encoding:
        codec = compressors[0]
        assert getattr(codec, "level", getattr(codec, "clevel", None)) == encoding["level"]
    if "shuffle" in encoding:
        want_shuffle = {"bit": "bitshuffle", "none": "noshuffle"}[encoding["shuffle"]]
        assert compressors[0].shuffle.value == want_shuffle


def test_default_is_blosc_lz4_bit_shuffle_and_zstd_is_zarrs_default(grid, tmp_path):
    inp, _ = grid
    default = zarr.open_array(str(_run(tmp_path, inp, "default")), path="da_dx", mode="r")
    (codec,) = default.compressors
    assert (type(codec).__name__, codec.cname.value, codec.clevel, codec.shuffle.value) == (
        "BloscCodec",
        "lz4",
        5,
        "bitshuffle",
    )
    assert default.shards is None and default.metadata.zarr_format == 3
    zstd = zarr.open_array(str(_run(tmp_path, inp, "zstd", codec="zstd")), path="da_dx", mode="r")
    plain = zarr.create_array(str(tmp_path / "plain.zarr"), shape=(4,), dtype="f8")
    assert zstd.compressors == plain.compressors


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_narrower_dtype_equals_the_float64_result_cast(grid, tmp_path, dtype):
    inp, values = grid
    out = _run(tmp_path, inp, dtype=dtype)
    for name, expected in grid_reference(values).items():
        got = _read(out, name)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, expected.astype(dtype))
        assert xr.open_zarr(out)[name].dtype == np.dtype(dtype)


def test_per_variable_override(grid, tmp_path):
    inp, values = grid
    out = _run(
        tmp_path,
        inp,
        codec="blosc",
        shuffle="bit",
        variables={"da_dx": {"codec": "zstd", "level": 5, "dtype": "float32"}},
    )
    want = grid_reference(values)
    dx = zarr.open_array(str(out), path="da_dx", mode="r")
    dy = zarr.open_array(str(out), path="da_dy", mode="r")
    assert type(dx.compressors[0]).__name__ == "ZstdCodec" and dx.compressors[0].level == 5
    assert type(dy.compressors[0]).__name__ == "BloscCodec"
    assert dy.compressors[0].shuffle.value == "bitshuffle"
    np.testing.assert_array_equal(dx[...], want["da_dx"].astype(np.float32))
    np.testing.assert_array_equal(dy[...], want["da_dy"])


# -- shards ----------------------------------------------------------------------------------


def test_shards_by_dim_mean_fewer_files_and_equal_bits(grid, tmp_path):
    inp, values = grid
    plain = _run(tmp_path, inp, "plain")
    sharded = _run(tmp_path, inp, "sharded", shards={"y": 2, "x": 4})
    array = zarr.open_array(str(sharded), path="da_dx", mode="r")
    assert array.chunks == (CHUNK, CHUNK) and array.shards == (2 * CHUNK, 4 * CHUNK)
    # 16 chunk files + zarr.json, against 2 shard files + zarr.json
    assert (_files(plain, "da_dx"), _files(sharded, "da_dx")) == (17, 3)
    for name, expected in grid_reference(values).items():
        np.testing.assert_array_equal(_read(sharded, name), expected)


def test_shards_by_target_size(grid, tmp_path):
    inp, values = grid
    # a stored float32 block is 16 x 16 x 4 = 1 KiB: 8 KiB shards hold 8 blocks, x first:
    # all 4 along x, then 2 along y
    out = _run(tmp_path, inp, shards="8KiB", dtype="float32")
    array = zarr.open_array(str(out), path="da_dy", mode="r")
    assert array.shards == (2 * CHUNK, 4 * CHUNK)
    assert _files(out, "da_dy") == 1 + 2
    np.testing.assert_array_equal(array[...], grid_reference(values)["da_dy"].astype(np.float32))


def test_edge_shards_are_partial(tmp_path):
    """A grid of 5 x 5 blocks in shards of 2 x 2: the last row and column of shards hold fewer
    blocks; all written, all equal."""
    inp = tmp_path / "in.zarr"
    values = write_grid(inp, 80, 16)
    out = tmp_path / "out.zarr"
    cfg = load_config(
        grid_config(
            tmp_path / "c.yaml", inp, out, output={"encoding": {"shards": {"y": 2, "x": 2}}}
        )
    )
    run(cfg, progress=False, echo=lambda line: None)
    assert _files(out, "da_dx") == 1 + 9
    for name, expected in grid_reference(values).items():
        np.testing.assert_array_equal(_read(out, name), expected)


def test_tiles_hold_whole_shards():
    """A worker holding about 15 blocks at once, shards of 2 x 2 blocks: every tile is a whole number
    of shards (clipped at the grid's edge), so no two tasks share a shard."""
    g = Group("a", ("da_dy", "da_dx"), (7, 9), (0, 1), (), BlockCost(2**20, 2**20, 2), "", (2, 2))
    worker = WorkerMemory(16 * 2**20, 1, 0, 1.0)
    assert 4 <= worker.capacity(g.cost) < 63
    tp = tile_plans([g], worker, 1)["a"]
    assert tp.count() > 1
    for tile in tp.tiles():
        for (first, stop), per, n in zip(tile, (2, 2), (7, 9)):
            assert first % per == 0 and (stop % per == 0 or stop == n)


@pytest.mark.cluster
def test_sharded_run_on_a_local_cluster(grid, tmp_path):
    """Two worker processes, two tiles of two shards each, whole-shard tasks on the workers;
    equal bits, progress counted in blocks."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    config = grid_config(
        tmp_path / "c.yaml",
        inp,
        out,
        output={"encoding": {"shards": {"y": 2, "x": 2}, "codec": "blosc"}},
        cluster={"kind": "local", "n_workers": 2},
    )
    lines: list[str] = []
    summary = run(load_config(config), progress=True, echo=lines.append)
    assert summary.blocks_written == summary.blocks_total == 32
    assert any("tiles of 4 x 2 blocks; 2 tile(s)" in line for line in lines), lines
    assert any("written 32 of 32 blocks (100%)" in line for line in lines), lines
    for name, expected in grid_reference(values).items():
        np.testing.assert_array_equal(_read(out, name), expected)
    assert _files(out, "da_dx") == 1 + 4


def test_a_tile_splitting_a_shard_is_refused(tmp_path):
    path = str(tmp_path / "s.zarr")
    zarr.open_group(path, mode="w").create_array(
        "y", shape=(8,), chunks=(2,), shards=(4,), dtype="f8"
    )
    import dask.array as da

    writer = graph_writer({"y": da.arange(8.0, chunks=2)}, path, None)
    with pytest.raises(ValueError, match=r"holds 1 of the 2 blocks of shard \(0,\)"):
        writer.run([Tile({"y": [(0,)]})])
    assert writer.run([Tile({"y": [(0,), (1,)]}), Tile({"y": [(2,), (3,)]})]).written == 64
    np.testing.assert_array_equal(zarr.open_array(path, path="y")[:], np.arange(8.0))


def test_a_torn_shard_is_rewritten_whole_on_resume(grid, tmp_path):
    """A shard file cut short and the run marked as crashed => resume finds it unreadable,
    deletes it and writes all of its blocks again; equal bits."""
    inp, values = grid
    out = _run(tmp_path, inp, shards={"x": 2})
    shard = out / "da_dx" / "c" / "1" / "1"
    shard.write_bytes(shard.read_bytes()[:40])
    zstore.set_state(str(out), consolidated=True, complete=False, state="running")
    cfg = load_config(
        grid_config(
            tmp_path / "r.yaml",
            inp,
            out,
            output={"mode": "resume", "encoding": {"shards": {"x": 2}}},
        )
    )
    lines: list[str] = []
    summary = run(cfg, progress=False, echo=lines.append)
    assert summary.blocks_written == 2  # the two blocks of that one shard
    for name, expected in grid_reference(values).items():
        np.testing.assert_array_equal(_read(out, name), expected)


def test_sharded_run_killed_then_resumed(tmp_path):
    """The whole `daskgrad run` process group SIGKILLed while shards are being written =>
    not complete; resume writes only the shards missing, counted in blocks; equal bits; no
    warning on stderr."""
    inp = tmp_path / "in.zarr"
    values = write_grid(inp, 512, 16)  # 2 x 1024 blocks, 2 x 256 shards of 2 x 2 blocks
    out = tmp_path / "out.zarr"
    config = grid_config(
        tmp_path / "c.yaml", inp, out, output={"encoding": {"shards": {"y": 2, "x": 2}}}
    )
    proc = start("run", "--no-progress", config)
    try:
        shards = _wait_for_files(out, 20, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert proc.returncode == -signal.SIGKILL
    state = zstore.read_state(str(out))
    assert state is not None and state["complete"] is False
    present = {
        v: zstore.present_blocks(str(out), v, remove_partial=False) for v in ("da_dx", "da_dy")
    }
    done = sum(len(p) for p in present.values())
    assert shards * 4 <= done < 2048 and done % 4 == 0  # whole shards only
    result = daskgrad("run", "--no-progress", config, "--set", "output.mode=resume")
    assert result.returncode == 0, result.stderr
    assert f"resuming: {done} of 2048 blocks already written, {2048 - done} to go" in result.stdout
    assert f"blocks written: {2048 - done} of 2048" in result.stdout
    assert "Warning" not in result.stderr, result.stderr
    assert zstore.read_state(str(out))["complete"] is True
    for name, expected in grid_reference(values).items():
        np.testing.assert_array_equal(_read(out, name), expected)


def _wait_for_files(out: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> int:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = sum(
            1
            for v in ("da_dx", "da_dy")
            for _d, _s, files in os.walk(out / v / "c")
            for f in files
            if ".partial" not in f
        )
        if count >= n:
            return count
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError(f"fewer than {n} shard files after {timeout} s")


# -- zarr v2 and the consolidated metadata ---------------------------------------------------


def test_zarr_format_2_end_to_end(grid, tmp_path):
    inp, values = grid
    out = _run(tmp_path, inp, zarr_format=2, codec="blosc", shuffle="bit")
    assert (out / ".zmetadata").exists() and (out / "da_dx" / ".zarray").exists()
    array = zarr.open_array(str(out), path="da_dx", mode="r")
    assert array.metadata.zarr_format == 2
    assert type(array.compressors[0]).__name__ == "Blosc"
    ds = xr.open_zarr(out)
    for name, expected in grid_reference(values).items():
        np.testing.assert_array_equal(ds[name].values, expected)
    # resume finds v2 chunks ("1.2" keys) as written blocks
    assert zstore.present_blocks(str(out), "da_dx") == zstore.expected_blocks(
        (N, N), (CHUNK, CHUNK)
    )


def test_zarr_format_2_resume_finds_missing_and_torn_chunks(grid, tmp_path):
    """A v2 store with two chunk files deleted and one cut short, left as if killed =>
    resume decodes the present chunks, rewrites the torn one and the missing ones; equal bits."""
    inp, values = grid
    out = _run(tmp_path, inp, zarr_format=2)
    (out / "da_dx" / "0.0").unlink()
    (out / "da_dy" / "3.3").unlink()
    torn = out / "da_dy" / "1.2"
    torn.write_bytes(torn.read_bytes()[:20])
    zstore.set_state(str(out), consolidated=True, complete=False, state="running")
    config = grid_config(
        tmp_path / "r.yaml", inp, out, output={"mode": "resume", "encoding": {"zarr_format": 2}}
    )
    summary = run(load_config(config), progress=False, echo=lambda line: None)
    assert summary.blocks_written == 3
    assert zstore.read_state(str(out))["complete"] is True
    for name, expected in grid_reference(values).items():
        np.testing.assert_array_equal(_read(out, name), expected)


@pytest.mark.parametrize(
    "encoding", [{}, {"shards": {"x": 2}}, {"zarr_format": 2}], ids=["v3", "sharded", "v2"]
)
def test_open_zarr_is_warning_free(grid, tmp_path, encoding):
    """`xr.open_zarr(out)` with xarray's defaults, in a fresh process with warnings as errors."""
    inp, _ = grid
    out = _run(tmp_path, inp, **encoding)
    code = f"import xarray as xr; xr.open_zarr({str(out)!r}).load()"
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr


# -- bad values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        (
            {"codec": "lz4"},
            "output.encoding.codec: Input should be 'zstd', 'blosc' or 'none', got 'lz4'",
        ),
        (
            {"codec": "zstd", "level": 23},
            "output.encoding.level: 23 is out of range for zstd (-131072 to 22)",
        ),
        (
            {"codec": "blosc", "level": 10},
            "output.encoding.level: 10 is out of range for blosc (0 to 9)",
        ),
        ({"codec": "none", "level": 1}, "output.encoding.level: 1 is given, but codec 'none'"),
        (
            {"codec": "zstd", "shuffle": "bit"},
            "output.encoding.shuffle: 'bit' needs codec 'blosc' (the codec is 'zstd')",
        ),
        (
            {"dtype": "int16"},
            "output.encoding.dtype: 'int16': an integer or boolean dtype would truncate",
        ),
        (
            {"dtype": "float"},
            "output.encoding.dtype: 'float': it is not an output dtype; allowed: float16",
        ),
        ({"shards": "lots"}, "output.encoding.shards: 'lots' is not a shard size"),
        (
            {"shards": {"x": 0}},
            "output.encoding.shards: blocks per shard along 'x' must be a positive",
        ),
        ({"zarr_format": 2, "shards": "1GiB"}, "output.encoding.shards: '1GiB' need zarr_format 3"),
        ({"zarr_format": 4}, "output.encoding.zarr_format: Input should be 2 or 3"),
        (
            {"variables": {"da_dx": {"level": 99}}},
            "output.encoding.variables: da_dx.level: 99 is out of range",
        ),
        (
            {"variables": {"da_dx": {"dtype": "uint8"}}},
            "output.encoding.variables.da_dx.dtype: 'uint8'",
        ),
    ],
)
def test_bad_values_are_one_line_config_errors(grid, tmp_path, encoding, message):
    inp, _ = grid
    config = grid_config(
        tmp_path / "c.yaml", inp, tmp_path / "out.zarr", output={"encoding": encoding}
    )
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert message in str(err.value) and "\n" not in str(err.value)
    result = daskgrad("run", config)
    assert result.returncode == 2 and message in result.stderr


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        (
            {"variables": {"da_dz": {"level": 3}}},
            "output.encoding.variables: 'da_dz' is not an output variable; the outputs are da_dy, da_dx",
        ),
        ({"shards": {"z": 2}}, "output.encoding.shards: dim 'z' is not a dim of 'da_dy' (y, x)"),
    ],
)
def test_mistakes_found_against_the_data(grid, tmp_path, encoding, message):
    inp, _ = grid
    out = tmp_path / "out.zarr"
    cfg = load_config(grid_config(tmp_path / "c.yaml", inp, out, output={"encoding": encoding}))
    with pytest.raises(ConfigError) as err:
        plan(cfg)
    assert message in str(err.value)
    assert not out.exists()


def test_complex_results_are_not_stored_as_real(tmp_path):
    inp = tmp_path / "in.zarr"
    values = np.random.default_rng(1).standard_normal((32, 32)) * (1 + 2j)
    write_grid(inp, 32, 16, values=values)
    cfg = load_config(
        grid_config(
            tmp_path / "c.yaml", inp, tmp_path / "o.zarr", output={"encoding": {"dtype": "float32"}}
        )
    )
    with pytest.raises(
        ConfigError,
        match=r"output.encoding.dtype: 'float32' would drop the imaginary part of 'da_dy' \(complex128\); use complex64",
    ):
        plan(cfg)
    ok = load_config(
        grid_config(
            tmp_path / "d.yaml",
            inp,
            tmp_path / "p.zarr",
            output={"encoding": {"dtype": "complex64"}},
        )
    )
    run(ok, progress=False, echo=lambda line: None)
    for name, expected in grid_reference(values).items():
        np.testing.assert_array_equal(
            _read(tmp_path / "p.zarr", name), expected.astype(np.complex64)
        )


def test_default_encoding_keeps_the_fingerprint_of_earlier_runs(grid, tmp_path):
    """An unset output.encoding leaves the resume fingerprint as before (stores made before
    output.encoding existed still resume); any other encoding changes it."""
    inp, _ = grid
    out = tmp_path / "o.zarr"
    base = plan(load_config(grid_config(tmp_path / "a.yaml", inp, out)))
    same = plan(load_config(grid_config(tmp_path / "b.yaml", inp, out, output={"encoding": {}})))
    other = plan(
        load_config(grid_config(tmp_path / "c.yaml", inp, out, output={"encoding": {"level": 3}}))
    )
    assert base.fingerprint == same.fingerprint != other.fingerprint
    assert Encoding().is_default()


def test_accessor_to_zarr_takes_the_same_encoding(tmp_path):
    """``ds.grad.to_zarr(encoding=...)`` speaks output.encoding's vocabulary, shards included."""
    a = xr.DataArray(np.arange(256.0).reshape(16, 16) ** 2, dims=("y", "x"), name="f").chunk(4)
    path = tmp_path / "g.zarr"
    a.grad.to_zarr(path, encoding={"dtype": "float32", "shards": {"x": 2}, "codec": "zstd"})
    group = zarr.open_group(str(path), mode="r")
    assert group["df_dx"].dtype == np.float32 and group["df_dx"].shards == (4, 8)
    want = np.gradient(a.values, axis=1).astype(np.float32)
    np.testing.assert_array_equal(xr.open_zarr(path)["df_dx"].values, want)
    default = tmp_path / "d.zarr"
    a.grad.to_zarr(default)
    codecs = str(zarr.open_group(str(default), mode="r")["df_dx"].metadata.codecs)
    assert "blosc" in codecs.lower()  # the batch run's default too
    with pytest.raises(ValueError, match=r"^encoding.codec: Input should be .*got 'lzma'") as info:
        a.grad.to_zarr(tmp_path / "bad.zarr", encoding={"codec": "lzma"})
    assert info.value.argument == "encoding"
    assert not (tmp_path / "bad.zarr").exists()
