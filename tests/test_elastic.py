"""Clusters whose workers come and go, on real processes: a scheduler and workers started with
``dask scheduler`` / ``dask worker`` (as a job queue starts them), ``daskgrad run`` with
``kind: address``. Each run is compared with numpy bit for bit and its summary must say what
happened to the workers.

Tiles are kept small (``DASK_DASKGRAD__MAX_TILE_BLOCKS``) so that a run has many units of
work to hand around; the input is the 256 x 256 grid of the fault tests (512 output blocks).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import (
    assert_same_bits,
    chunk_files,
    daskgrad,
    grid_blocks,
    grid_config,
    grid_reference,
    wait_for_chunks,
    write_grid,
)

from daskgrad.batch import store as zstore

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.faults,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses process groups"),
]

N, CHUNK = 256, 16
TOTAL = grid_blocks(N, CHUNK)
DASK = [sys.executable, "-m", "distributed.cli.dask_worker"]
ENV = {
    **os.environ,
    "DASK_DASKGRAD__MAX_TILE_BLOCKS": "4",
    # daskgrad counts worker deaths per tile (cluster.allowed_failures); the scheduler's own
    # count per task would stop a preempted run first, so a job-queue scheduler raises it.
    "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "100",
    "ZARR_ARRAY__WRITE_EMPTY_CHUNKS": "True",
}


class Cluster:
    """A scheduler and worker processes, each in its own process group."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.file = folder / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.scheduler = self._spawn(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(self.file)],
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.file.exists():
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.05)
        time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]

    def _spawn(self, cmd: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"proc{len(self.procs)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def worker(self, *args: str) -> subprocess.Popen:
        return self._spawn(
            [*DASK, self.address, "--nthreads", "1", "--memory-limit", "1GiB", "--host",
             "127.0.0.1", "--no-dashboard", *args],
        )  # fmt: skip

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30)

    def pids(self, n: int = 2, timeout: float = 60) -> dict[str, int]:
        """Worker address -> pid, once ``n`` workers answer (one may still be restarting)."""
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while True:
                try:
                    c.wait_for_workers(n, timeout=timeout)
                    pids = c.run(os.getpid)
                    if len(pids) >= n:
                        return pids
                except OSError:  # a worker died while answering: ask again
                    pass
                assert time.monotonic() < deadline, "the workers did not come back"
                time.sleep(0.2)

    def wait_workers(self, n: int, timeout: float = 60) -> list[str]:
        with self.client() as c:
            c.wait_for_workers(n, timeout=timeout)
            return sorted(c.scheduler_info(n_workers=-1)["workers"])

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(timeout=30)


@pytest.fixture
def figures(record_property):
    """Record the figures of a case (shown in docs/reliability.md's table)."""
    items: list[str] = []

    def add(text: str) -> None:
        items.append(text)
        record_property("figures", "; ".join(items))

    return add


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("grid") / "in.zarr"
    return path, write_grid(path, N, CHUNK)


def _config(tmp_path: Path, inp: Path, out: Path, address: str, **cluster) -> Path:
    return grid_config(
        tmp_path / "c.yaml",
        inp,
        out,
        cluster={"kind": "address", "address": address, "stall_timeout": 60, **cluster},
    )


def _start(config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "daskgrad.batch.cli", "run", "--no-progress", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def _workers_line(stdout: str) -> str:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("workers: ")]
    assert lines, stdout
    return lines[-1]


def test_a_worker_that_joins_mid_run_gets_tiles(cluster, grid, tmp_path, figures):
    """A second worker started mid-run (a job queue's late job) => it runs tasks within seconds, the run finishes bit-exact and its summary says a worker joined."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    cluster.worker()
    (first,) = cluster.wait_workers(1)
    proc = _start(_config(tmp_path, inp, out, cluster.address))
    busy = None
    try:
        wait_for_chunks(out, 20, proc, timeout=120)
        joined_at = time.monotonic()
        cluster.worker()
        (new,) = set(cluster.wait_workers(2)) - {first}
        with cluster.client() as c:
            while busy is None and time.monotonic() - joined_at < 30 and proc.poll() is None:
                counts = c.run(lambda dask_worker: dask_worker.state.transition_counter)
                if counts.get(new, 0) > 0:
                    busy = time.monotonic() - joined_at
                time.sleep(0.1)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    stdout, stderr = _finish(proc)
    assert proc.returncode == 0, stderr
    assert busy is not None and busy < 10, f"the new worker ran nothing for {busy} s"
    assert _workers_line(stdout).startswith("workers: 1 at the start, 1 joined, 0 left")
    figures(f"the new worker ran its first task {busy:.1f} s after it started")
    assert zstore.read_state(str(out))["complete"] is True
    assert_same_bits(out, grid_reference(values))


def test_a_worker_retired_mid_run_hands_its_work_on(cluster, grid, tmp_path, figures):
    """client.retire_workers on one of two workers mid-run => nothing hangs, the run finishes bit-exact and says a worker left (retired)."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    cluster.worker()
    cluster.worker()
    addresses = cluster.wait_workers(2)
    proc = _start(_config(tmp_path, inp, out, cluster.address))
    try:
        wait_for_chunks(out, 30, proc, timeout=120)
        with cluster.client() as c:
            c.retire_workers([addresses[0]], close_workers=True)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    stdout, stderr = _finish(proc)
    assert proc.returncode == 0, stderr
    line = _workers_line(stdout)
    assert "1 left (retired)" in line and "0 died" in line, line
    figures(line)
    assert zstore.read_state(str(out))["complete"] is True
    assert_same_bits(out, grid_reference(values))


def test_a_worker_at_the_end_of_its_lifetime_retires_cleanly(cluster, grid, tmp_path, figures):
    """A worker started with --lifetime (a job's walltime) leaves mid-run => the run finishes bit-exact, the other worker takes the rest, and the summary says a worker retired."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    cluster.worker()
    cluster.wait_workers(1)
    proc = _start(_config(tmp_path, inp, out, cluster.address))
    try:
        # The second worker joins once the run is writing and leaves 3 s after it started:
        # its lifetime ends mid-run however long the run's own start-up takes.
        wait_for_chunks(out, 20, proc, timeout=120)
        cluster.worker("--lifetime", "3s", "--lifetime-stagger", "0s")
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    stdout, stderr = _finish(proc)
    assert proc.returncode == 0, stderr
    line = _workers_line(stdout)
    assert "1 left (retired)" in line, line
    figures(line)
    assert zstore.read_state(str(out))["complete"] is True
    assert_same_bits(out, grid_reference(values))


def test_workers_killed_and_replaced_again_and_again(cluster, grid, tmp_path, figures):
    """A worker process SIGKILLed three times mid-run, its nanny starting a new one each time (a preemptible queue) => the run finishes bit-exact within cluster.allowed_failures (3, counted per tile) and says how many died."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    cluster.worker("--nanny")
    cluster.worker("--nanny")
    cluster.wait_workers(2)
    proc = _start(_config(tmp_path, inp, out, cluster.address, allowed_failures=3))
    kills = 0
    try:
        seen = 10
        for _ in range(3):
            seen = wait_for_chunks(out, seen + 25, proc, timeout=120)
            pids = cluster.pids()
            os.kill(pids[sorted(pids)[kills % len(pids)]], signal.SIGKILL)
            kills += 1
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    stdout, stderr = _finish(proc)
    assert proc.returncode == 0, stderr
    line = _workers_line(stdout)
    # The deaths the nannies saw (a worker process ended by a signal or an error): the kills,
    # and any restart that failed on a loaded machine; the summary must count exactly those.
    ended = re.compile(r"Worker process \d+ (was killed|exited)")
    deaths = sum(len(ended.findall(log.read_text())) for log in tmp_path.glob("proc*.log"))
    assert deaths >= kills
    assert f"{deaths} died" in line, (line, deaths)
    figures(line)
    assert zstore.read_state(str(out))["complete"] is True
    assert_same_bits(out, grid_reference(values))


def test_the_scheduler_killed_mid_run(cluster, grid, tmp_path, figures):
    """kind: address and its scheduler SIGKILLed mid-run => exit 1 with one line naming the scheduler, the store never marked complete; resumed on the threaded scheduler, equal bits."""
    inp, values = grid
    out = tmp_path / "out.zarr"
    cluster.worker()
    cluster.worker()
    cluster.wait_workers(2)
    config = _config(tmp_path, inp, out, cluster.address, connect_timeout=5)
    proc = _start(config)
    try:
        wait_for_chunks(out, 30, proc, timeout=120)
        os.killpg(cluster.scheduler.pid, signal.SIGKILL)
        t = time.monotonic()
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    stdout, stderr = _finish(proc, timeout=120)
    waited = time.monotonic() - t
    assert proc.returncode == 1, (stdout, stderr)
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "scheduler" in errors[0], stderr
    assert "Traceback" not in stderr
    assert waited < 60
    figures(f"exit 1 {waited:.1f} s after the scheduler died, {len(chunk_files(out))} chunks kept")
    state = zstore.read_state(str(out))
    assert state["complete"] is False
    present = len(chunk_files(out))
    assert present < TOTAL

    # Resumed on the threaded scheduler: the fingerprint does not include the cluster.
    again = grid_config(tmp_path / "again.yaml", inp, out, cluster={"kind": "threads"})
    resumed = daskgrad("run", "--no-progress", again, "--set", "output.mode=resume")
    assert resumed.returncode == 0, resumed.stderr
    assert zstore.read_state(str(out))["complete"] is True
    assert_same_bits(out, grid_reference(values))
