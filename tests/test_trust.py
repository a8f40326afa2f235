"""A complete mark you can trust (#13): a store marked complete is the exact gradient of the
input it names, the input is never touched, and everything else ends with one clear line.

Each test's docstring starts with ``<fault> => <what must hold>`` and the test records its
figures, like tests/test_faults.py; ``python tests/reliability_table.py`` puts both files in the
table of docs/reliability.md. Real processes, real stores, real signals. Nothing is mocked;
what cannot run here (s3fs/aiohttp are not installed, no batch system) is tested through the
message that its absence gives.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
import zarr
from cli_helpers import (
    assert_same_bits,
    chunk_files,
    daskgrad,
    grid_blocks,
    grid_config,
    grid_reference,
    invoke,
    start,
    stderr_lines,
    tree_snapshot,
    wait_for_chunks,
    write_grid,
)

from daskgrad.batch import store as zstore
from daskgrad.batch.config import load_config
from daskgrad.batch.lease import read_lease
from daskgrad.batch.runner import plan, prepare_store, write_blocks

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and signals"),
]

HERE = Path(__file__).resolve().parent


@pytest.fixture
def figures(record_property):
    """Record the figures of a case (shown in the docs table)."""
    items: list[str] = []

    def add(text: str) -> None:
        items.append(text)
        record_property("figures", "; ".join(items))

    return add


def _state(out: Path) -> dict:
    state = zstore.read_state(str(out))
    assert state is not None
    return state


def _one_line(text: str) -> str:
    lines = stderr_lines(text)
    assert len(lines) == 1, lines
    assert "Traceback" not in text
    return lines[0]


def _small_config(tmp_path: Path, inp: Path, out: Path, **sections: dict) -> Path:
    return grid_config(tmp_path / "c.yaml", inp, out, **sections)


def _nc(path: Path, values: np.ndarray, x0: float = 0.0, name: str = "a") -> None:
    n = values.shape[-1]
    xr.Dataset({name: (("y", "x"), values)}, coords={"y": np.arange(values.shape[0]) * 1.0,
                                                     "x": x0 + np.arange(n) * 1.0}).to_netcdf(path)  # fmt: skip


def _written(out: Path, name: str = "da_dx") -> np.ndarray:
    return zarr.open_array(str(out), path=name, mode="r")[...]


# --------------------------------------------------------------------------------------------
# 1. A file name read as a glob
# --------------------------------------------------------------------------------------------


def test_glob_characters_in_an_existing_file_name(tmp_path, monkeypatch, figures):
    """input.path naming an existing file with glob characters (`data[1].nc` beside `data1.nc`, `b?.nc` beside `bX.nc`, `data[1].nc` alone) => the file is read literally, in validate and run alike; a real glob prints how many files it matched."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(1)
    literal, other = rng.standard_normal((6, 8)), rng.standard_normal((6, 8))
    _nc(tmp_path / "data[1].nc", literal)
    _nc(tmp_path / "data1.nc", other)
    _nc(tmp_path / "b?.nc", literal)
    _nc(tmp_path / "bX.nc", other, x0=8.0)  # would concatenate along x under the glob
    want = np.gradient(literal, axis=1, edge_order=2)
    for i, name in enumerate(["data[1].nc", "b?.nc"]):
        config = grid_config(tmp_path / f"c{i}.yaml", Path(name), Path(f"out{i}.zarr"))
        assert invoke("validate", config).exit_code == 0
        result = invoke("run", "--no-progress", config)
        assert result.exit_code == 0, result.output
        assert "glob" not in result.stdout
        assert _written(tmp_path / f"out{i}.zarr").tobytes() == want.tobytes()
    (tmp_path / "data1.nc").unlink()  # data[1].nc alone: was an IndexError traceback
    config = grid_config(tmp_path / "c2.yaml", Path("data[1].nc"), Path("out2.zarr"))
    result = invoke("run", "--no-progress", config)
    assert result.exit_code == 0, result.output
    config = grid_config(tmp_path / "c3.yaml", Path("b*.nc"), Path("out3.zarr"))
    validated = invoke("validate", config)
    result = invoke("run", "--no-progress", config)
    note = "note: input.path 'b*.nc' is a glob; it matched 2 files"
    assert note in validated.stdout and note in result.stdout, result.output
    assert _written(tmp_path / "out3.zarr").shape == (6, 16)
    figures("data[1].nc and b?.nc read literally (6 x 8); b*.nc: 2 files, 6 x 16")


# --------------------------------------------------------------------------------------------
# 2. The input changed: before a resume, or during the run
# --------------------------------------------------------------------------------------------


def _half_written(config: Path, state: str = "stopped") -> int:
    """An interrupted store: every second block written, then left in ``state``."""
    p = plan(load_config(config))
    missing, _ = prepare_store(p)
    subset = {v: set(sorted(b)[::2]) for v, b in missing.items()}
    write_blocks(p, subset)
    zstore.set_state(str(p.config.output.path), state=state)
    return sum(len(b) for b in subset.values())


def test_resume_after_the_input_changed(tmp_path, figures):
    """The input rewritten with new values of the same shape between a stop and a resume => resume refused (exit 2, one line naming the change and suggesting overwrite); overwrite then gives the new input's gradient bit for bit."""
    inp, out = tmp_path / "in.zarr", tmp_path / "out.zarr"
    write_grid(inp, 64, 8)
    config = _small_config(tmp_path, inp, out)
    written = _half_written(config)
    new = write_grid(inp, 64, 8, values=np.random.default_rng(99).standard_normal((64, 64)))
    result = invoke("run", "--no-progress", config, "--set", "output.mode=resume")
    assert result.exit_code == 2, result.output
    line = _one_line(result.stderr)
    assert "the input changed since the store was created (the files of " in line and "'a'" in line
    assert line.endswith("use --set output.mode=overwrite")
    assert len(chunk_files(out)) == written  # nothing written
    result = invoke("run", "--no-progress", config, "--set", "output.mode=overwrite")
    assert result.exit_code == 0, result.output
    assert_same_bits(out, grid_reference(new))
    figures(f"refused with {written} of 128 blocks kept: {line[line.index('the input') :][:70]}...")


def test_input_changed_during_the_run(tmp_path, figures):
    """An input chunk replaced (atomically, with valid bytes) while `daskgrad run` is writing => exit 1 with one line, the store is never marked complete, and resume is refused."""
    inp, out = tmp_path / "in.zarr", tmp_path / "out.zarr"
    write_grid(inp, 256, 16)
    config = _small_config(tmp_path, inp, out)
    proc = start("run", "--no-progress", config)
    try:
        at = wait_for_chunks(out, 40, proc)
        chunk = inp / "a" / "c" / "15" / "15"
        tmp = chunk.with_name("15.tmp")
        tmp.write_bytes((inp / "a" / "c" / "0" / "0").read_bytes())
        os.replace(tmp, chunk)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, err
    line = _one_line(err)
    assert line.startswith("error: the input changed during the run (the files of 'a' changed")
    assert _state(out)["complete"] is False
    again = daskgrad("run", "--no-progress", config, "--set", "output.mode=resume")
    assert again.returncode == 2 and "the input changed since" in again.stderr
    figures(f"changed at {at} of {grid_blocks(256, 16)} blocks; {line[:60]}...")


# --------------------------------------------------------------------------------------------
# 3. A stalled writer
# --------------------------------------------------------------------------------------------


def _wait_expired(out: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lease = read_lease(str(out))
        if lease is None or float(lease["expires"]) < time.time():
            return
        time.sleep(0.1)
    raise AssertionError("the lease never expired")


def _lock_free(out: Path) -> bool:
    """True when nobody holds the lease file's lock (no write or renewal in progress)."""
    import fcntl

    with open(out / "daskgrad.lease.lock") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
    return True


def test_stalled_writer_cannot_write_after_a_takeover(tmp_path, figures):
    """Run A SIGSTOPped mid-run; run B (`mode: overwrite`, another input) started => B is refused while A's lease lives (one line naming A's host and pid), takes over once it expires and completes; A, continued, ends with exit 1 and one line, and the store is B's result bit for bit, complete."""
    inp_a, inp_b, out = tmp_path / "a.zarr", tmp_path / "b.zarr", tmp_path / "out.zarr"
    write_grid(inp_a, 256, 16)
    values_b = write_grid(
        inp_b, 256, 16, values=np.random.default_rng(5).standard_normal((256, 256))
    )
    lease = {"lease_seconds": 4}
    config_a = grid_config(tmp_path / "a.yaml", inp_a, out, output=lease)
    config_b = grid_config(tmp_path / "b.yaml", inp_b, out, output={**lease, "mode": "overwrite"})
    proc = start("run", "--no-progress", config_a)
    try:
        at = wait_for_chunks(out, 40, proc)
        os.killpg(proc.pid, signal.SIGSTOP)
        refused = invoke("run", "--no-progress", config_b)
        assert refused.exit_code == 1, refused.output
        line = _one_line(refused.stderr)
        assert "is in use by run " in line and f", pid {proc.pid}), lease until " in line
        # Frozen in the middle of a chunk write, A holds the lease's shared lock, and B must
        # wait for it (fencing; B is refused once to show it). Let A move and freeze it again
        # until it is frozen between writes, the case this test is about.
        restops, locked = 0, None
        while not _lock_free(out):
            if locked is None:
                _wait_expired(out)
                locked = invoke("run", "--no-progress", config_b)
                assert locked.exit_code == 1 and "stays locked" in locked.stderr, locked.output
            os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.002)
            os.killpg(proc.pid, signal.SIGSTOP)
            restops += 1
            assert restops < 500
        _wait_expired(out)
        taken = invoke("run", "--no-progress", config_b)
        assert taken.exit_code == 0, taken.output
        assert_same_bits(out, grid_reference(values_b))
        os.killpg(proc.pid, signal.SIGCONT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGCONT)
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 1, err
    a_line = _one_line(err)
    assert "was taken over by another run" in a_line
    state = _state(out)
    assert state["complete"] is True and state["state"] == "complete"
    assert_same_bits(out, grid_reference(values_b))
    mid = (
        ""
        if locked is None
        else f", first frozen mid-write (B refused: lock held), re-stopped {restops}x"
    )
    figures(
        f"A stopped at {at} blocks{mid}; B took over after the lease expired; A: {a_line[7:60]}..."
    )


# --------------------------------------------------------------------------------------------
# 4, 5. The input as the target: the accessor, and ~ in paths
# --------------------------------------------------------------------------------------------


def test_accessor_to_zarr_refuses_its_own_source(tmp_path, monkeypatch, figures):
    """`xr.open_zarr("in.zarr").grad.to_zarr(...)` into the input itself, a store inside it, a folder around it (also a DataArray, and a netCDF source) => ValueError naming `store`; the input is untouched."""
    monkeypatch.chdir(tmp_path)
    write_grid(tmp_path / "in.zarr", 32, 8)
    _nc(tmp_path / "in.nc", np.ones((4, 5)))
    before = tree_snapshot(tmp_path / "in.zarr")
    ds = xr.open_zarr("in.zarr", consolidated=False)
    cases = [(ds, "in.zarr"), (ds, str(tmp_path / "in.zarr") + "/"), (ds, "in.zarr/g.zarr"),
             (ds, "."), (ds["a"], "in.zarr"), (xr.open_dataset("in.nc", chunks={}), "in.nc")]  # fmt: skip
    for obj, target in cases:
        with pytest.raises(
            ValueError, match=r"^store=.* the source .* of the data being differentiated"
        ):
            obj.grad.to_zarr(target, mode="w")
    assert tree_snapshot(tmp_path / "in.zarr") == before
    ds.grad.to_zarr("g.zarr")  # elsewhere is fine
    figures(f"{len(cases)} targets refused, input unchanged")


def test_tilde_paths_are_normalized_before_checks(tmp_path, monkeypatch, figures):
    """`output.path: ~/in.zarr/evil.zarr` with `input.path: ~/in.zarr` (and `~/x/../in.zarr`) => refused as inside the input by validate and run (exit 2, one line); no message suggests deleting the input; nothing written."""
    monkeypatch.setenv("HOME", str(tmp_path))
    write_grid(tmp_path / "in.zarr", 32, 8)
    (tmp_path / "x").mkdir()
    before = tree_snapshot(tmp_path / "in.zarr")
    for out, mode in [("~/in.zarr/evil.zarr", "overwrite"), ("~/x/../in.zarr", "overwrite")]:
        config = tmp_path / "c.yaml"
        config.write_text(yaml.safe_dump({"input": {"path": "~/in.zarr"},
                                          "output": {"path": out, "mode": mode},
                                          "cluster": {"kind": "threads"}}))  # fmt: skip
        for command in ("validate", "run"):
            result = invoke(command, config)
            assert result.exit_code == 2, result.output
            line = _one_line(result.stderr)
            assert "output.path" in line and (
                "inside the input" in line or "is the input itself" in line
            )
            assert "delete" not in line
    assert tree_snapshot(tmp_path / "in.zarr") == before
    assert not (tmp_path / "~").exists()
    figures(line[line.index("output.path") :][:100])


# --------------------------------------------------------------------------------------------
# 6, 7, 8. Inputs the run could not take: zarr v2, URLs, names with separators
# --------------------------------------------------------------------------------------------


def test_zarr_format_2_input(tmp_path, figures):
    """A zarr format 2 input (Blosc compressors on its coordinates) => `daskgrad run` and `ds.grad.to_zarr` write a v3 output equal to numpy.gradient bit for bit."""
    inp, out = tmp_path / "in.zarr", tmp_path / "out.zarr"
    values = np.random.default_rng(3).standard_normal((64, 64))
    from cli_helpers import grid_coords

    ds = xr.Dataset({"a": (("y", "x"), values)}, coords=grid_coords(64))
    ds.chunk({"y": 8, "x": 8}).to_zarr(inp, mode="w", zarr_format=2, consolidated=True)
    result = invoke("run", "--no-progress", _small_config(tmp_path, inp, out))
    assert result.exit_code == 0, result.output
    assert_same_bits(out, grid_reference(values))
    xr.open_zarr(inp).grad.to_zarr(tmp_path / "acc.zarr", edge_order=2)
    assert_same_bits(tmp_path / "acc.zarr", grid_reference(values))
    assert zarr.open_group(str(out)).metadata.zarr_format == 3
    figures("run and accessor: v3 output, equal bits")


@pytest.mark.parametrize(
    ("url", "package"),
    [("s3://bucket/in.zarr", "s3fs"), ("https://example.org/in.zarr", "aiohttp")],
)
def test_url_input_without_its_package(tmp_path, url, package, figures, monkeypatch):
    """An `s3://` or `https://` input without s3fs/aiohttp installed => validate and run: exit 2 with one line naming the package; nothing written."""
    # Hide the package from the real command, installed or not: a module of that name that
    # fails to import comes first on the path.
    hidden = tmp_path / "hidden"
    (hidden / package).mkdir(parents=True)
    (hidden / package / "__init__.py").write_text(
        f'raise ImportError("No module named {package!r}")\n'
    )
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")]))
    )
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump({"input": {"path": url}, "output": {"path": str(tmp_path / "o.zarr")}})
    )
    for command in ("validate", "run"):
        result = daskgrad(command, config)
        assert result.returncode == 2, result.stderr
        line = _one_line(result.stderr)
        assert (
            line
            == f"{config}: input.path: {url!r} needs the package {package!r}, which is not installed (pip install {package})"
        )
    assert not (tmp_path / "o.zarr").exists()
    figures(line[len(str(config)) + 2 :])


def test_names_with_a_backslash_are_refused(tmp_path, figures):
    """`output.name: d{var}\\d{dim}`, a netCDF variable named `T\\2m`, and the accessor's `name=` => refused up front with one line (exit 2) or a ValueError naming the argument; nothing written."""
    inp = tmp_path / "in.nc"
    xr.Dataset({"T\\2m": (("y", "x"), np.ones((4, 5)))}).to_netcdf(inp)
    lines = []
    for name, extra in [("name", {"name": "d{var}\\d{dim}"}), ("variable", {})]:
        config = grid_config(tmp_path / f"{name}.yaml", inp, tmp_path / "o.zarr", output=extra)
        for command in ("validate", "run"):
            result = invoke(command, config)
            assert result.exit_code == 2, result.output
            lines.append(_one_line(result.stderr))
    assert "output.name: name='d{var}\\\\d{dim}' contains '\\\\', which zarr reads" in lines[0]
    assert "input.variables: variables: 'T\\\\2m' contains '\\\\'" in lines[2]
    assert not (tmp_path / "o.zarr").exists()
    ds = xr.open_dataset(inp)
    with pytest.raises(ValueError, match=r"^variables: 'T\\\\2m' contains"):
        ds.grad.to_zarr(tmp_path / "acc.zarr")
    ok = ds.rename({"T\\2m": "T2m"})
    with pytest.raises(ValueError, match=r"^name='d\{var\}\\\\d\{dim\}' contains"):
        ok.grad.to_zarr(tmp_path / "acc.zarr", name="d{var}\\d{dim}")
    assert not (tmp_path / "acc.zarr").exists()
    figures(lines[2][lines[2].index("input.variables") :][:80])


# --------------------------------------------------------------------------------------------
# 9, 10. Clusters that cannot start
# --------------------------------------------------------------------------------------------


def test_address_that_is_not_a_dask_scheduler(tmp_path, figures):
    """`cluster.kind: address` pointing at a TCP server that accepts and never answers => exit 1 with one line within cluster.connect_timeout (2 s here), nothing written (it hung for 650 s)."""
    inp, out = tmp_path / "in.zarr", tmp_path / "out.zarr"
    write_grid(inp, 32, 8)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(60)  # bounded: the server stops by itself
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                held.append(server.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    config = _small_config(
        tmp_path, inp, out, cluster={"kind": "address", "address": address, "connect_timeout": 2}
    )
    t0 = time.monotonic()
    try:
        result = daskgrad("run", "--no-progress", config, timeout=60)
    finally:
        server.close()
        for conn in held:
            conn.close()
    seconds = time.monotonic() - t0
    assert result.returncode == 1, result.stderr
    line = _one_line(result.stderr)
    assert line.startswith(
        f"error: cannot start or reach the cluster (existing cluster at {address}): "
    )
    assert "did not answer as a dask scheduler within 2 s (cluster.connect_timeout)" in line
    assert not out.exists()
    figures(f"ended in {seconds:.1f} s (process start included)")


def test_jobqueue_without_its_submit_command(tmp_path, figures):
    """`cluster.kind: slurm` (and pbs, lsf) where sbatch/qsub/bsub is not on PATH => exit 2 at once with one line naming the command; nothing started, nothing written (it gave two tracebacks and hung)."""
    inp, out = tmp_path / "in.zarr", tmp_path / "out.zarr"
    write_grid(inp, 32, 8)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    lines = []
    for kind, command in [("slurm", "sbatch"), ("pbs", "qsub"), ("lsf", "bsub")]:
        config = _small_config(
            tmp_path, inp, out, cluster={"kind": kind, "jobqueue": {"cores": 1, "memory": "1GiB"}}
        )
        result = invoke("run", "--no-progress", config) if shutil.which(command) is None else None
        if result is None:
            continue
        assert result.exit_code == 2, result.output
        line = _one_line(result.stderr)
        assert (
            f"cluster.kind: {kind} submits worker jobs with {command!r}, which is not on PATH"
            in line
        )
        lines.append(line)
        assert not out.exists()
    if not lines:
        pytest.skip(reason="every batch system's submit command is installed here")
    figures(lines[0][lines[0].index("cluster.kind") :][:80])


# --------------------------------------------------------------------------------------------
# 11. A run killed while creating its store
# --------------------------------------------------------------------------------------------

KILL_POINTS = (1, 3, 10, 25, 40, 49)


def test_store_creation_killed_then_resume_or_overwrite(tmp_path, figures):
    """The store creation SIGKILLed at 6 of its 50 file events, from the 1st to the 49th (a directory made, a temporary opened, a rename) => `resume` starts afresh and `overwrite` replaces it, both equal bits; a folder of someone else's files is still refused."""
    inp = tmp_path / "in.zarr"
    values = write_grid(inp, 64, 8)
    want = grid_reference(values)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])
        ),
    }

    def kill_at(k: int) -> tuple[int, Path]:
        out = tmp_path / f"k{k}" / "out.zarr"
        out.parent.mkdir()
        config = _small_config(out.parent, inp, out)
        proc = subprocess.run([sys.executable, str(HERE / "kill_during_creation.py"), str(config), str(k)],
                              capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
        return proc.returncode, out

    with ThreadPoolExecutor(2) as pool:
        killed = list(pool.map(kill_at, KILL_POINTS))
    states = set()
    for (code, out), k in zip(killed, KILL_POINTS):
        assert code == -signal.SIGKILL, f"creation ended before event {k}"
        states.add(
            "absent" if not out.exists() else "state" if zstore.read_state(str(out)) else "no state"
        )
        copy = out.with_name("copy.zarr")
        if out.exists():
            shutil.copytree(out, copy)
        for mode, path in (("resume", out), ("overwrite", copy)):
            if not path.exists():
                continue
            config = _small_config(out.parent, inp, path, output={"mode": mode})
            result = invoke("run", "--no-progress", config)
            assert result.exit_code == 0, f"killed at event {k}, then {mode}: {result.output}"
            assert_same_bits(path, want)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    result = invoke(
        "run", "--no-progress", _small_config(tmp_path, inp, foreign, output={"mode": "overwrite"})
    )
    assert (
        result.exit_code == 2 and "is not a zarr store; refusing to overwrite it" in result.stderr
    )
    assert (foreign / "thesis.tex").exists()
    figures(f"{len(KILL_POINTS)} kill points; left {sorted(states)}; all resumed and overwritten")


# --------------------------------------------------------------------------------------------
# 12. --verify on a complete store
# --------------------------------------------------------------------------------------------


def test_verify_repairs_a_complete_store(tmp_path, figures):
    """Chunks of a *complete* store truncated, overwritten with garbage, deleted => `--verify` (or `output.verify: true`) decodes every chunk, un-marks the store while repairing, rewrites the damaged ones, marks it complete again and says how many; equal bits."""
    inp, out = tmp_path / "in.zarr", tmp_path / "out.zarr"
    values = write_grid(inp, 64, 8)
    config = _small_config(tmp_path, inp, out)
    assert invoke("run", "--no-progress", config).exit_code == 0
    files = sorted(chunk_files(out))
    files[0].write_bytes(files[0].read_bytes()[:10])
    files[7].write_bytes(np.random.default_rng(2).bytes(files[7].stat().st_size))
    files[9].unlink()
    plain = invoke("run", "--no-progress", config, "--set", "output.mode=resume")
    assert "is already complete; nothing to do" in plain.stdout  # without --verify: trusted
    result = invoke("run", "--no-progress", "--verify", config, "--set", "output.mode=resume")
    assert result.exit_code == 0, result.output
    assert "repaired 3 damaged chunk(s) of a complete store" in result.stdout
    assert "blocks written: 3 of 128" in result.stdout
    assert _state(out)["complete"] is True
    assert_same_bits(out, grid_reference(values))
    assert (
        xr.open_zarr(out, consolidated=True)["da_dx"].values.tobytes()
        == grid_reference(values)["da_dx"].tobytes()
    )
    again = invoke(
        "run", "--no-progress", config, "--set", "output.mode=resume", "--set", "output.verify=true"
    )
    assert "is already complete; every chunk decodes; nothing to do" in again.stdout
    figures("3 of 128 damaged; repaired 3; verified again: all decode")


# --------------------------------------------------------------------------------------------
# 13. daskgrad demo --out somewhere it cannot write
# --------------------------------------------------------------------------------------------


def test_demo_out_where_it_cannot_write(tmp_path, figures):
    """`daskgrad demo --out` under a regular file, or in a place that cannot be written (/proc) => exit 2 with one line naming --out; no traceback."""
    (tmp_path / "afile").write_text("x")
    lines = []
    for out in (tmp_path / "afile" / "demo", Path("/proc/daskgrad-demo")):
        result = invoke("demo", "--no-progress", "--out", out)
        assert result.exit_code == 2, result.output
        lines.append(_one_line(result.stderr))
        assert lines[-1].startswith(f"--out: cannot write to {str(out)!r}: ")
    figures("; ".join(line.split(": ", 2)[2] for line in lines))
