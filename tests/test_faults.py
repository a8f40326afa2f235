"""Real faults injected into real runs: killed workers and drivers, Ctrl-C, torn and corrupted
chunks, a full disk, NaN/inf, hostile configs, network exposure (docs/reliability.md).

Each test's docstring starts with ``<fault injected> => <what must hold>``; that line and the
figures a test records (``figures(...)``, kept as junit properties) make the table in
docs/reliability.md (``python tests/reliability_table.py`` rewrites it). Nothing is mocked except
in ``test_failed_stop_mark_keeps_the_original_error``. Arrays are small; a "mid-run" kill waits
until some chunk files exist and checks the run was not finished yet. Linux only (``/proc``,
``mount``).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from cli_helpers import (
    alive,
    assert_same_bits,
    chunk_files,
    daskgrad,
    grid_blocks,
    grid_config,
    grid_reference,
    invoke,
    partial_files,
    start,
    stderr_lines,
    tree_snapshot,
    wait_for_chunks,
    wait_for_workers,
    write_grid,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daskgrad.batch import store as zstore
from daskgrad.batch.config import load_config
from daskgrad.batch.runner import RunError, plan, prepare_store, run, write_blocks

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and mount"),
]

N, CHUNK = 256, 16  # 2 x 256 output blocks: ~2 s with threads, ~10 s on a 2-worker LocalCluster
TOTAL = grid_blocks(N, CHUNK)


@pytest.fixture
def figures(record_property):
    """Record the figures of a fault (shown in the docs table): ``figures("killed at 40")``."""
    items: list[str] = []

    def add(text: str) -> None:
        items.append(text)
        record_property("figures", "; ".join(items))

    return add


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A 256 x 256 float64 input in 16 x 16 chunks, shared read-only by the tests."""
    path = tmp_path_factory.mktemp("grid") / "in.zarr"
    values = write_grid(path, N, CHUNK)
    return path, values


def _state(out: Path) -> dict:
    state = zstore.read_state(str(out))
    assert state is not None
    return state


def _resumed_count(stdout: str) -> int:
    for line in stdout.splitlines():
        if line.startswith("resuming: "):
            return int(line.split()[1])
    raise AssertionError(f"no 'resuming:' line in\n{stdout}")


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def _resume(config: Path, *extra: str) -> subprocess.CompletedProcess:
    result = daskgrad("run", "--no-progress", config, "--set", "output.mode=resume", *extra)
    assert result.returncode == 0, result.stderr
    return result


# --------------------------------------------------------------------------------------------
# 1, 9. A dask worker killed mid-run
# --------------------------------------------------------------------------------------------


def _kill_a_worker(config: Path, out: Path, *args: str) -> tuple[subprocess.Popen, int, float]:
    proc = start("run", "--no-progress", config, *args)
    try:
        workers = wait_for_workers(proc.pid, 2)
        at_kill = wait_for_chunks(out, 30, proc)
        t = time.monotonic()
        os.kill(workers[0], signal.SIGKILL)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    assert at_kill < TOTAL
    return proc, at_kill, t


@pytest.mark.cluster
def test_worker_killed_mid_run(grid, tmp_path, figures):
    """A dask worker process SIGKILLed mid-run (LocalCluster, 2 workers) => the run finishes (exit 0) and the store equals numpy.gradient bit for bit."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out, cluster={"kind": "local", "n_workers": 2})
    t0 = time.monotonic()
    proc, at_kill, t_kill = _kill_a_worker(config, out)
    stdout, stderr = _finish(proc)
    assert proc.returncode == 0, stderr
    assert f"blocks written: {TOTAL} of {TOTAL}" in stdout
    assert "Restarting worker" in stderr  # the kill was seen, and the Nanny replaced the worker
    assert not [line for line in stderr.splitlines() if line.startswith("INFO ")]  # no -v: quiet
    assert _state(out)["complete"] is True
    assert_same_bits(out, grid_reference(values))
    figures(
        f"killed at {at_kill} of {TOTAL} blocks, {t_kill - t0:.1f} s in; run took {time.monotonic() - t0:.1f} s"
    )


@pytest.mark.cluster
def test_worker_death_beyond_allowed_failures(grid, tmp_path, figures):
    """A worker SIGKILLed with cluster.allowed_failures: 0 => exit 1 saying a worker died while a tile was in flight, more than allowed_failures allows; store not complete; resume completes it bit for bit."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out, cluster={"kind": "local", "n_workers": 2})
    proc, at_kill, _ = _kill_a_worker(config, out, "--set", "cluster.allowed_failures=0")
    stdout, stderr = _finish(proc)
    assert proc.returncode == 1, stderr
    assert "allowed-failures 0" in stdout
    assert "worker(s) died while one tile" in stderr
    assert "more than cluster.allowed_failures (0) allows" in stderr
    assert (
        f"the output {out} is incomplete; resume with: daskgrad run {config} --set output.mode=resume"
        in stderr
    )
    assert "Traceback" not in stderr.split("error: ")[-1]
    state = _state(out)
    assert state["complete"] is False and state["state"] == "stopped"
    present = len(chunk_files(out))

    # Resume on the threaded scheduler: the fingerprint does not include the cluster.
    result = _resume(config, "--set", "cluster.kind=threads")
    assert _resumed_count(result.stdout) == present
    assert f"blocks written: {TOTAL - present} of {TOTAL}" in result.stdout
    assert _state(out)["complete"] is True
    assert_same_bits(out, grid_reference(values))
    figures(
        f"killed at {at_kill} of {TOTAL}; {present} on disk at exit 1; resume wrote {TOTAL - present}"
    )


def test_unreachable_scheduler(small_grid, tmp_path, figures):
    """kind: address pointing at a scheduler that does not answer => exit 1 with one line naming the address, no traceback, nothing written."""
    inp, _ = small_grid
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    out = tmp_path / "out.zarr"
    config = grid_config(
        tmp_path / "c.yaml",
        inp,
        out,
        cluster={"kind": "address", "address": address, "connect_timeout": 2},
    )
    result = daskgrad(
        "run", "--no-progress", config, env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    )
    assert result.returncode == 1, result.stderr
    (line,) = stderr_lines(result.stderr)
    assert line.startswith(
        f"error: cannot start or reach the cluster (existing cluster at {address}): "
    )
    assert line.endswith("; nothing was written")
    assert not out.exists()
    figures(line[:110] + "...")


# --------------------------------------------------------------------------------------------
# 2. The whole `daskgrad run` process killed or interrupted
# --------------------------------------------------------------------------------------------


def test_driver_sigkill_then_resume(grid, tmp_path, figures):
    """The whole `daskgrad run` process group SIGKILLed mid-run => complete stays false; `--set output.mode=resume` writes only the missing blocks; equal bits."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out)
    proc = start("run", "--no-progress", config)
    at_kill = wait_for_chunks(out, 40, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    _finish(proc)
    assert proc.returncode == -signal.SIGKILL
    state = _state(out)
    assert state["complete"] is False and state["state"] == "running"  # never stopped cleanly
    present = len(chunk_files(out))
    assert at_kill <= present < TOTAL
    partials = len(partial_files(out))

    t0 = time.monotonic()
    result = _resume(config)
    assert (
        f"resuming: {present} of {TOTAL} blocks already written, {TOTAL - present} to go"
        in result.stdout
    )
    assert f"blocks written: {TOTAL - present} of {TOTAL}" in result.stdout
    assert partial_files(out) == []
    assert _state(out)["complete"] is True
    assert_same_bits(out, grid_reference(values))
    figures(
        f"killed with {present} of {TOTAL} blocks on disk ({partials} .partial); "
        f"resume wrote {TOTAL - present} in {time.monotonic() - t0:.1f} s"
    )


@pytest.mark.cluster
def test_driver_sigkill_leaves_no_orphan_workers(grid, tmp_path, figures):
    """Only the `daskgrad run` process SIGKILLed (kind: local) => its worker processes exit by themselves within 15 s; resume completes; equal bits."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out, cluster={"kind": "local", "n_workers": 2})
    proc = start("run", "--no-progress", config)
    try:
        workers = wait_for_workers(proc.pid, 2)
        wait_for_chunks(out, 30, proc)
        os.kill(proc.pid, signal.SIGKILL)  # the driver only, not its group
        t0 = time.monotonic()
        while any(alive(w) for w in workers) and time.monotonic() - t0 < 15:
            time.sleep(0.005)
        gone_after = time.monotonic() - t0
        orphans = [w for w in workers if alive(w)]
        assert orphans == [], "worker processes outlived the driver"
        _finish(proc)
    finally:
        for w in workers if "workers" in locals() else []:
            if alive(w):
                os.kill(w, signal.SIGKILL)
    assert _state(out)["complete"] is False
    present = len(chunk_files(out))
    result = _resume(config, "--set", "cluster.kind=threads")
    assert _resumed_count(result.stdout) == present
    assert_same_bits(out, grid_reference(values))
    figures(f"workers gone {gone_after * 1000:.0f} ms after the driver; {present} of {TOTAL} kept")


@pytest.mark.parametrize(
    "kind",
    ["threads", pytest.param("local", marks=pytest.mark.cluster)],
)
def test_sigint_stops_cleanly_then_resume(grid, tmp_path, figures, kind):
    """SIGINT (Ctrl-C) mid-run: to `daskgrad run` (threads), or to its whole process group as a terminal does (local cluster) => exit 130, one message saying how to resume (the only stderr line with threads), never complete; resume completes; equal bits."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out, cluster={"kind": kind, "n_workers": 2})
    proc = start("run", "--no-progress", config)
    if kind == "local":
        wait_for_workers(proc.pid, 2)
    at_signal = wait_for_chunks(out, 40 if kind == "threads" else 30, proc)
    t0 = time.monotonic()
    if kind == "threads":
        proc.send_signal(signal.SIGINT)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    _stdout, stderr = _finish(proc)
    stop_s = time.monotonic() - t0
    assert proc.returncode == 130, stderr
    message = (
        f"interrupted: the output {out} is incomplete; resume with: daskgrad run {config} "
        "--set output.mode=resume"
    )
    if kind == "threads":
        assert stderr_lines(stderr) == [message]  # no traceback
    else:
        # The worker processes get the signal too and print their own KeyboardInterrupt
        # tracebacks (distributed's, on the same stderr); daskgrad's message is printed once.
        assert [line for line in stderr_lines(stderr) if line.startswith("interrupted")] == [
            message
        ]
    state = _state(out)
    assert state["complete"] is False and state["state"] == "stopped"
    present = len(chunk_files(out))
    assert present < TOTAL

    result = _resume(config, "--set", "cluster.kind=threads")
    assert _resumed_count(result.stdout) == present
    assert _state(out)["complete"] is True
    assert_same_bits(out, grid_reference(values))
    figures(
        f"signalled at {at_signal} of {TOTAL} blocks; stopped in {stop_s:.2f} s with {present} on disk"
    )


# --------------------------------------------------------------------------------------------
# 3. Torn output chunks
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_grid(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A 64 x 64 input in 8 x 8 chunks (2 x 64 output blocks)."""
    path = tmp_path_factory.mktemp("small") / "in.zarr"
    return path, write_grid(path, 64, 8)


SMALL_TOTAL = grid_blocks(64, 8)


def _half_written(inp: Path, out: Path, config: Path, state: str) -> int:
    """An interrupted store: every second block written, then left in ``state``."""
    cfg = load_config(config)
    p = plan(cfg)
    missing, _ = prepare_store(p)
    subset = {v: set(sorted(b)[::2]) for v, b in missing.items()}
    write_blocks(p, subset)
    zstore.set_state(str(out), state=state)
    return sum(len(b) for b in subset.values())


@pytest.mark.parametrize(
    ("state", "flags"),
    [("running", ()), ("stopped", ("--verify",))],
    ids=["after-crash", "verify-flag"],
)
def test_torn_output_chunks_are_rewritten(small_grid, tmp_path, caplog, figures, state, flags):
    """Output chunks truncated, overwritten with garbage, emptied, plus a stray .partial file => found on resume (automatically after an unclean stop, or with --verify) and rewritten; equal bits."""
    inp, values = small_grid
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out)
    written = _half_written(inp, out, config, state)
    files = sorted(chunk_files(out))
    truncated, garbage, empty = files[0], files[5], files[9]
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    garbage.write_bytes(np.random.default_rng(1).bytes(garbage.stat().st_size))
    empty.write_bytes(b"")
    stray = files[3].with_name(files[3].name + ".0123abcd.partial")
    stray.write_bytes(b"half a chunk")

    result = invoke("run", "--no-progress", *flags, config, "--set", "output.mode=resume")
    assert result.exit_code == 0, result.output
    kept = written - 3
    assert f"resuming: {kept} of {SMALL_TOTAL} blocks already written" in result.stdout
    assert f"blocks written: {SMALL_TOTAL - kept} of {SMALL_TOTAL}" in result.stdout
    torn = [r.getMessage() for r in caplog.records if "unreadable (torn write)" in r.getMessage()]
    assert len(torn) == 2, torn
    assert not stray.exists()
    assert _state(out)["complete"] is True
    assert_same_bits(out, grid_reference(values))
    figures(
        f"{written} of {SMALL_TOTAL} blocks present, 3 damaged + 1 .partial; {SMALL_TOTAL - kept} rewritten"
    )


def test_after_a_crash_only_the_chunks_written_near_it_are_decoded(
    small_grid, tmp_path, caplog, monkeypatch, figures
):
    """A run killed with its lease held, its older chunks dated an hour back and one chunk torn at the crash => the resume decodes only the chunks written since two minutes before the lease's last renewal, finds the torn one and rewrites it; equal bits."""
    import json

    from daskgrad.batch.lease import LEASE_FILE, Lease

    inp, values = small_grid
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out)
    p = plan(load_config(config))
    lease = Lease(str(out), 60)
    missing, _ = prepare_store(p, lease=lease)
    write_blocks(p, {v: set(sorted(b)[::2]) for v, b in missing.items()})
    files = sorted(chunk_files(out))
    hour_ago = time.time() - 3600
    for f in files:
        os.utime(f, (hour_ago, hour_ago))
    torn = files[4]
    torn.write_bytes(torn.read_bytes()[:7])  # written at the crash: now
    # The crashed owner: its lease never released, its process gone.
    dead = subprocess.Popen(["true"])
    dead.wait()
    record = json.loads((out / LEASE_FILE).read_text())
    (out / LEASE_FILE).write_text(json.dumps({**record, "pid": dead.pid, "start": None}))

    decoded: list = []
    readable = zstore.chunk_is_readable

    def counting(*args):  # the resume decodes in this process (kind: threads)
        decoded.append(args[1:])
        return readable(*args)

    monkeypatch.setattr(zstore, "chunk_is_readable", counting)
    result = invoke("run", "--no-progress", config, "--set", "output.mode=resume")
    assert result.exit_code == 0, result.output
    assert len(decoded) == 1, decoded  # the torn chunk only, of the 64 present
    rewritten = [r for r in caplog.records if "unreadable (torn write)" in r.getMessage()]
    assert len(rewritten) == 1
    assert _state(out)["complete"] is True
    assert_same_bits(out, grid_reference(values))
    figures(f"{len(files)} chunks present, 1 decoded after the crash (torn), rewritten")


# --------------------------------------------------------------------------------------------
# 4. Corrupted and missing input chunks
# --------------------------------------------------------------------------------------------


@pytest.fixture
def private_grid(tmp_path) -> tuple[Path, np.ndarray]:
    path = tmp_path / "in.zarr"
    return path, write_grid(path, 64, 8)


def test_corrupted_input_chunk(private_grid, tmp_path, figures):
    """An input chunk file overwritten with garbage => exit 1, the error names the variable and the chunk, nothing marked complete; with the chunk restored the input has changed, so resume is refused (exit 2) and overwrite completes."""
    inp, values = private_grid
    chunk = inp / "a" / "c" / "3" / "5"
    original = chunk.read_bytes()
    chunk.write_bytes(np.random.default_rng(2).bytes(len(original)))
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out)

    result = invoke("run", "--no-progress", config)
    assert result.exit_code == 1, result.output
    lines = stderr_lines(result.stderr)
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith(
        "error: InputReadError: cannot read input variable 'a', chunk (3, 5) (region [24:32, 40:48])"
    )
    assert (
        lines[1]
        == f"the output {out} is incomplete; resume with: daskgrad run {config} --set output.mode=resume"
    )
    state = _state(out)
    assert state["complete"] is False and state["state"] == "stopped"

    chunk.write_bytes(original)
    # The input the store was begun from is not the input now (issue #13): no resume.
    resumed = invoke("run", "--no-progress", config, "--set", "output.mode=resume")
    assert resumed.exit_code == 2, resumed.output
    assert "the input changed since the store was created" in resumed.stderr
    again = invoke("run", "--no-progress", config, "--set", "output.mode=overwrite")
    assert again.exit_code == 0, again.output
    assert_same_bits(out, grid_reference(values))
    figures(f"error line: {lines[0][:80]}...")


def test_missing_input_chunk_reads_as_fill_value(private_grid, tmp_path, figures):
    """An input chunk file deleted => not an error (zarr reads an absent chunk as fill_value NaN, as it stores all-NaN chunks); the run says how many chunks are absent and the result equals numpy.gradient of the NaN-filled input."""
    inp, values = private_grid
    (inp / "a" / "c" / "3" / "5").unlink()
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out)

    result = invoke("run", "--no-progress", config)
    assert result.exit_code == 0, result.output
    note = "note: input variable 'a': 1 of 64 chunks are not in the store; zarr reads them as the fill value nan"
    assert note in result.stdout
    filled = values.copy()
    filled[24:32, 40:48] = np.nan
    expected = grid_reference(filled)
    assert_same_bits(out, expected)
    assert int(np.isnan(expected["da_dx"]).sum()) > 64  # the hole spreads into its neighbours
    figures(
        f"NaN outputs: da_dy {int(np.isnan(expected['da_dy']).sum())}, da_dx {int(np.isnan(expected['da_dx']).sum())}"
    )


# --------------------------------------------------------------------------------------------
# 5. The output disk fills up
# --------------------------------------------------------------------------------------------


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            check=True,
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(
            reason=f"cannot mount a small tmpfs to fill up (needs root or CAP_SYS_ADMIN): {err}"
        )


def _umount(folder: Path) -> None:
    if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_full_disk_then_resume(tmp_path, figures):
    """The output on a 2 MiB tmpfs that fills up mid-run => exit 1 saying the disk is full, not complete, no .partial left; after growing the disk to 64 MiB resume completes; equal bits."""
    inp = tmp_path / "in.zarr"
    values = write_grid(inp, 512, 64)  # 2 MiB in; 4 MiB out (128 blocks)
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "2m")
    try:
        out = disk / "out.zarr"
        config = grid_config(tmp_path / "c.yaml", inp, out)
        result = invoke("run", "--no-progress", config)
        assert result.exit_code == 1, result.output
        lines = stderr_lines(result.stderr)
        assert lines[0] == (
            "error: the output disk is full ([Errno 28] No space left on device); free space, then resume"
        ), result.stderr
        assert lines[1].startswith(f"the output {out} is incomplete; resume with:")
        assert _state(out)["complete"] is False
        assert partial_files(out) == []
        present = len(chunk_files(out))
        assert 0 < present < 128

        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True, timeout=30)
        resumed = invoke("run", "--no-progress", config, "--set", "output.mode=resume")
        assert resumed.exit_code == 0, resumed.output
        assert _resumed_count(resumed.stdout) == present
        assert _state(out)["complete"] is True
        assert_same_bits(out, grid_reference(values))
    finally:
        _umount(disk)
    figures(f"{present} of 128 blocks fit in 2 MiB; resume wrote {128 - present}")


def test_full_disk_before_the_store_exists(tmp_path, figures):
    """The output disk already full when the store is created => exit 1, one line saying the store could not be created because the disk is full and what to do; no traceback, no resume hint."""
    inp = tmp_path / "in.zarr"
    write_grid(inp, 64, 8)
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "1m")
    try:
        (disk / "filler").write_bytes(b"")
        with open(disk / "filler", "wb") as f, pytest.raises(OSError) as info:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
                os.fsync(f.fileno())
        assert info.value.errno == errno.ENOSPC
        out = disk / "out.zarr"
        config = grid_config(tmp_path / "c.yaml", inp, out)
        result = invoke("run", "--no-progress", config)
        assert result.exit_code == 1, result.output
        assert stderr_lines(result.stderr) == [
            f"error: could not create the output store {str(out)!r}: the disk is full ([Errno 28] "
            "No space left on device); it holds no block yet: fix that, then run again with "
            "--set output.mode=overwrite"
        ]
    finally:
        _umount(disk)
    figures("message: could not create the output store ...: the disk is full")


def test_failed_stop_mark_keeps_the_original_error(private_grid, tmp_path, monkeypatch, figures):
    """Marking the store 'stopped' itself fails (ENOSPC, simulated) after a run error => the run's own error is raised, not the secondary one; the state stays 'running', so resume verifies."""
    inp, _ = private_grid
    (inp / "a" / "c" / "0" / "0").write_bytes(b"garbage")
    out = tmp_path / "out.zarr"
    cfg = load_config(grid_config(tmp_path / "c.yaml", inp, out))
    real = zstore.set_state

    def full_disk_on_stop(store, **changes):
        if changes.get("state") == "stopped":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(store, **changes)

    monkeypatch.setattr(zstore, "set_state", full_disk_on_stop)
    with pytest.raises(RunError, match=r"cannot read input variable 'a', chunk \(0, 0\)"):
        run(cfg, progress=False, echo=lambda s: None)
    assert _state(out)["state"] == "running"
    figures("RunError names the input chunk; state left 'running'")


def test_a_new_store_at_the_same_path_in_the_same_process(small_grid, tmp_path, figures):
    """A store overwritten in the same process (or on a long-lived worker) by a run with other chunks => blocks go to the new layout, never through the old store's cached array; equal bits."""
    inp, values = small_grid
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out, output={"mode": "overwrite"})
    layouts = []
    for chunks in (None, {"y": 16, "x": 16}, {"y": 8, "x": 32}):
        cfg = load_config(config, [f"input.chunks={chunks}"] if chunks else [])
        run(cfg, progress=False, echo=lambda s: None)
        arr = zstore.zarr.open_array(str(out), path="da_dx", mode="r")
        layouts.append(arr.chunks)
        assert_same_bits(out, grid_reference(values))
    assert layouts == [(8, 8), (16, 16), (8, 32)]
    figures(f"chunk layouts {layouts}, all bit-identical")


# --------------------------------------------------------------------------------------------
# 6. NaN and inf
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("edge_order", [1, 2], ids=["edge_order=1", "edge_order=2"])
def test_nan_and_inf_values_propagate_like_numpy(tmp_path, edge_order, figures):
    """NaN, +inf and -inf in the values, inside blocks, on block edges and on the array edge => the store equals numpy.gradient bit for bit (same NaN/inf pattern)."""
    inp = tmp_path / "in.zarr"
    values = np.random.default_rng(3).standard_normal((64, 64))
    values[0, 0] = np.nan  # array corner
    values[7, 8] = np.inf  # block corner (chunks of 8)
    values[15, 20] = -np.inf  # block edge along y
    values[33, 40] = np.nan  # block edge along x
    values[50, 50] = np.nan  # interior
    values[60, 63] = np.inf  # array edge
    write_grid(inp, 64, 8, values)
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out, gradient={"edge_order": edge_order})
    run(load_config(config), progress=False, echo=lambda s: None)
    expected = grid_reference(values, edge_order)
    assert_same_bits(out, expected)
    n_nan = sum(int(np.isnan(a).sum()) for a in expected.values())
    n_inf = sum(int(np.isinf(a).sum()) for a in expected.values())
    figures(f"edge_order {edge_order}: {n_nan} NaN, {n_inf} inf in the outputs, all in place")


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("nan", "coordinate for dim 'x' must be finite, got nan at index 5"),
        ("inf", "coordinate for dim 'x' must be finite, got inf at index 63"),
        ("repeated", "coordinate for dim 'x' repeats the value"),
    ],
    ids=["nan", "inf", "repeated"],
)
def test_bad_coordinates_are_one_line_errors(tmp_path, kind, problem, figures):
    """A NaN, inf or repeated coordinate value => exit 2 (validate and run) with one line naming the dim and the index; nothing written."""
    import xarray as xr

    x = np.linspace(0.0, 1.0, 64)
    if kind == "nan":
        x[5] = np.nan
    elif kind == "inf":
        x[63] = np.inf
    else:
        x[6] = x[5]
    inp = tmp_path / "in.zarr"
    xr.Dataset({"a": (("y", "x"), np.ones((64, 64)))}, coords={"y": np.arange(64.0), "x": x}).chunk(
        8
    ).to_zarr(inp, zarr_format=3, consolidated=False)
    out = tmp_path / "out.zarr"
    config = grid_config(tmp_path / "c.yaml", inp, out)
    for command in ("validate", "run"):
        result = invoke(command, config)
        assert result.exit_code == 2, result.output
        (line,) = stderr_lines(result.stderr)
        assert line.startswith(f"{config}: gradient.dims: ") and problem in line, line
    assert not out.exists()
    figures(line.split(": ", 1)[1][:90])


# --------------------------------------------------------------------------------------------
# 7. Hostile configs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
        "!!python/name:os.system",
        "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
    ],
    ids=["apply", "new", "name", "long-form"],
)
def test_yaml_python_tags_do_nothing(tmp_path, tag, figures):
    """YAML python tags (os.system, subprocess.Popen) in a config => exit 2 with one line naming the tag; nothing runs, nothing is written."""
    marker = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(f"input: {{path: in.zarr}}\noutput:\n  path: {tag.format(marker=marker)}\n")
    for command in ("validate", "run"):
        result = invoke(command, config)
        assert result.exit_code == 2, result.output
        (line,) = stderr_lines(result.stderr)
        assert line.startswith(f"{config}:") and "is not allowed" in line, line
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.yaml"]
    figures(line.split(": ", 1)[1][:80])


_KEYS = {
    "input": ["path", "variables", "chunks", "engine"],
    "gradient": ["dims", "edge_order", "datetime_unit", "periodic", "geometry", "radius"],
    "output": ["path", "mode", "name", "verify"],
    "cluster": [
        "kind",
        "n_workers",
        "threads_per_worker",
        "memory_limit",
        "address",
        "tls",
        "dashboard",
        "allowed_failures",
        "jobqueue",
    ],
}
_WORDS = [
    "off",
    "yes",
    "2:00:00",
    "010",
    "6.371e6",
    "1e3",
    "tls://h:1",
    "tcp://h:1",
    "slurm",
    "local",
    "threads",
    "resume",
    "overwrite",
    "d{var}_d{dim}",
    "{var}",
    "spherical",
    "s",
    "M",
    "4GiB",
    "auto",
    "a",
    "y",
    "x",
    "in.zarr",
    "*.nc",
    "file:///tmp/x",
    "~",
    "..",
    "/",
]
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 2**40),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(_WORDS),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from([k for keys in _KEYS.values() for k in keys]) | st.text(max_size=6),
            inner,
            max_size=3,
        )
    ),
    max_leaves=6,
)


# Values near the valid ones, per key: most keep the config valid, some are classic mistakes.
_PLAUSIBLE: dict[str, list] = {
    "variables": [["a"], "a", ["b"], []],
    "chunks": [{"x": 16}, {"y": 8, "x": 32}, {"y": 0}, None],
    "engine": ["zarr", "netcdf", None],
    "dims": [["x"], ["y", "x"], "y", ["z"], None],
    "edge_order": [1, 2, 3, "2", True],
    "datetime_unit": ["s", "D", "ns", "M"],
    "periodic": [{}, ["x"], {"x": 1.0}, {"x": -1.0}, None],
    "geometry": [None, "spherical", "flat"],
    "radius": [6371000.0, 0, "6.371e6"],
    "mode": ["error", "overwrite", "resume", "off"],
    "name": ["d{var}_d{dim}", "g_{var}_{dim}", "{var}", "{var}/{dim}"],
    "verify": [True, False, "yes"],
    "kind": ["threads", "local", "slurm", "address"],
    "n_workers": [1, 2, 4, 0],
    "threads_per_worker": [1, 2],
    "memory_limit": ["4GiB", "auto", "lots"],
    "dashboard": [False, True],
    "allowed_failures": [3, 0, -1],
    "address": ["tcp://127.0.0.1:1", "127.0.0.1:1"],
    "jobqueue": [{"cores": 8, "memory": "32GiB", "walltime": "02:00:00"}, {"cores": 8}],
}


@st.composite
def _documents(draw, inp: str, out: str):
    """A valid config with a few keys replaced by plausible or random values, or a random
    document."""
    if draw(st.integers(0, 4)) == 0:
        return draw(_values)
    doc = {
        "input": {"path": inp},
        "gradient": {"edge_order": 2},
        "output": {"path": out},
        "cluster": {"kind": "threads", "n_workers": 2},
    }
    for _ in range(draw(st.integers(0, 2))):
        section = draw(st.sampled_from([*_KEYS, "extra"]))
        key = draw(st.sampled_from([*_KEYS.get(section, []), "typo"]))
        how = draw(st.integers(0, 5))
        if how <= 3:
            doc.setdefault(section, {})
            if isinstance(doc[section], dict):
                choices = _PLAUSIBLE.get(key)
                plausible = choices is not None and how <= 2
                doc[section][key] = draw(st.sampled_from(choices) if plausible else _values)
        elif how == 4:
            doc.pop(section, None)
        else:
            doc[section] = draw(_values)
    return doc


@pytest.mark.filterwarnings("ignore:Failed to open Zarr store with consolidated metadata")
def test_random_config_documents_never_crash(small_grid, tmp_path, figures, monkeypatch):
    """Random YAML documents and random text as `daskgrad validate` configs (hypothesis) => exit 0, or exit 2 with exactly one line; never a traceback, nothing written."""
    inp, _ = small_grid
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "random.yaml"
    out = tmp_path / "out.zarr"
    before = tree_snapshot(inp)
    seen = {0: 0, 2: 0}

    def check(text: str) -> None:
        config.write_text(text, encoding="utf-8", errors="surrogatepass")
        result = invoke("validate", config)
        assert result.exit_code in (0, 2), (text, result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            text,
            result.exception,
        )
        assert "Traceback" not in result.output
        if result.exit_code == 2:
            lines = stderr_lines(result.stderr)
            assert len(lines) == 1, (text, result.stderr)
            assert lines[0].startswith(str(config)) or lines[0].startswith("--set"), lines[0]
        else:
            assert result.stdout.startswith(f"{config}: OK")
        seen[result.exit_code] += 1

    @settings(
        max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(_documents(str(inp), str(out)))
    def documents(doc):
        check(yaml.safe_dump(doc, allow_unicode=True))

    @settings(
        max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=200))
    def texts(text):
        check(text)

    documents()
    texts()
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["random.yaml"]
    assert tree_snapshot(inp) == before
    figures(f"{seen[0]} valid (exit 0), {seen[2]} refused (exit 2), 0 tracebacks")


# --------------------------------------------------------------------------------------------
# 8. Network exposure
# --------------------------------------------------------------------------------------------


@pytest.mark.cluster
def test_local_cluster_listens_on_loopback_only(small_grid, tmp_path, figures):
    """`daskgrad run -v` with kind: local and dashboard: true => every listening socket of the driver and its workers (scheduler, nannies, workers, dashboard) is on 127.0.0.1; the printed dashboard link is 127.0.0.1."""
    psutil = pytest.importorskip("psutil")
    inp, values = small_grid
    out = tmp_path / "out.zarr"
    config = grid_config(
        tmp_path / "c.yaml", inp, out, cluster={"kind": "local", "n_workers": 2, "dashboard": True}
    )
    proc = start("run", "-v", "--no-progress", config)
    listening: set[tuple[int, str, int]] = set()
    try:
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    for conn in p.net_connections(kind="inet"):
                        if conn.status == psutil.CONN_LISTEN:
                            listening.add((p.pid, conn.laddr.ip, conn.laddr.port))
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            time.sleep(0.05)
        stdout, stderr = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, stderr
    assert listening, "no listening socket seen"
    assert {ip for _, ip, _ in listening} == {"127.0.0.1"}, listening
    assert len({pid for pid, _, _ in listening}) >= 3  # the driver and two worker processes
    (link,) = [line for line in stdout.splitlines() if line.startswith("dashboard: ")]
    assert link.startswith("dashboard: http://127.0.0.1:")
    port = int(link.split(":")[3].split("/")[0])
    assert (proc.pid, "127.0.0.1", port) in listening
    assert "bound to 127.0.0.1, dashboard on 127.0.0.1" in stdout
    assert "Scheduler at:     tcp://127.0.0.1:" in stderr  # -v shows distributed's INFO lines
    assert_same_bits(out, grid_reference(values))
    figures(
        f"{len(listening)} listening sockets in {len({p for p, _, _ in listening})} processes, all 127.0.0.1"
    )
