"""Helpers for the CLI and fault tests: the real ``daskgrad`` command, processes, chunk files.

Sections
--------
* ``daskgrad`` / ``start``: the command line as a real subprocess (``python -m daskgrad.batch.cli``).
* ``invoke``: the same command in-process through ``click.testing.CliRunner`` (no start-up cost).
* ``write_grid``: a 2-D float64 zarr input ``a(y, x)`` with many small chunks and a non-uniform
  ``x``, plus ``grid_config`` and the numpy oracle ``grid_reference``.
* ``chunk_files`` / ``wait_for_chunks``: what a run has written so far (``.partial`` excluded).
* ``descendants`` / ``worker_pids``: processes under a pid, read from ``/proc`` (Linux).
* ``tree_snapshot``: names, sizes and mtimes of every file under a folder ("nothing written").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
import yaml
import zarr
from click.testing import CliRunner, Result

from daskgrad.batch.cli import main

COMMAND = [sys.executable, "-m", "daskgrad.batch.cli"]


# --------------------------------------------------------------------------------------------
# Running the command
# --------------------------------------------------------------------------------------------


def daskgrad(
    *args: str, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``daskgrad ARGS`` as a real process and wait for it (``env`` adds variables)."""
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )


def start(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    """Start ``daskgrad ARGS`` in its own session (so the whole group can be signalled)."""
    return subprocess.Popen(
        [*COMMAND, *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def invoke(*args: str) -> Result:
    """Run ``daskgrad ARGS`` in this process (stdout and stderr kept apart)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------
# A grid input with many small chunks
# --------------------------------------------------------------------------------------------


def grid_coords(n: int) -> dict[str, np.ndarray]:
    """``y`` uniform, ``x`` non-uniform (so both of numpy's spacing paths run)."""
    return {"y": np.arange(n) * 0.5, "x": np.linspace(0.0, 1.0, n) ** 2 + np.arange(n)}


def write_grid(
    path: Path, n: int = 256, chunk: int = 16, values: np.ndarray | None = None
) -> np.ndarray:
    """Write ``a(y, x)``, n x n float64 in chunk x chunk chunks; returns the values."""
    if values is None:
        values = np.random.default_rng(7).standard_normal((n, n))
    ds = xr.Dataset({"a": (("y", "x"), values)}, coords=grid_coords(n))
    ds.chunk({"y": chunk, "x": chunk}).to_zarr(path, mode="w", zarr_format=3, consolidated=False)
    return values


def grid_config(path: Path, inp: Path, out: Path, **sections: dict) -> Path:
    """Write a YAML config for a ``write_grid`` input; ``sections`` update the defaults."""
    cfg: dict = {
        "input": {"path": str(inp)},
        "gradient": {"edge_order": 2},
        "output": {"path": str(out)},
        "cluster": {"kind": "threads", "n_workers": 2},
    }
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(cfg))
    return path


def grid_reference(values: np.ndarray, edge_order: int = 2) -> dict[str, np.ndarray]:
    """numpy.gradient of a grid input, by output name."""
    c = grid_coords(values.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        dy, dx = np.gradient(values, c["y"], c["x"], edge_order=edge_order)
    return {"da_dy": dy, "da_dx": dx}


def assert_same_bits(out: Path, expected: dict[str, np.ndarray]) -> None:
    """Every output array has the dtype, shape and exact bytes of the oracle."""
    for name, want in expected.items():
        got = zarr.open_array(str(out), path=name, mode="r")[...]
        assert got.dtype == want.dtype, name
        assert got.shape == want.shape, name
        assert got.tobytes() == want.tobytes(), f"{name}: {np.sum(got != want)} values differ"


def grid_blocks(n: int = 256, chunk: int = 16, outputs: int = 2) -> int:
    return outputs * (-(-n // chunk)) ** 2


# --------------------------------------------------------------------------------------------
# What a run has written
# --------------------------------------------------------------------------------------------


def _is_index_coordinate(array_dir: Path) -> bool:
    try:
        meta = json.loads((array_dir / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("dimension_names") == [array_dir.name]


def chunk_files(store: Path) -> list[Path]:
    """Chunk files of the data variables of a store (index coordinates and ``.partial`` files
    left out)."""
    found = []
    for array in Path(store).glob("*/c"):
        if _is_index_coordinate(array.parent):
            continue
        for dirpath, _dirs, files in os.walk(array):
            found += [Path(dirpath) / f for f in files if ".partial" not in f]
    return found


def partial_files(store: Path) -> list[Path]:
    return [p for p in Path(store).rglob("*") if ".partial" in p.name]


def wait_for_chunks(store: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> int:
    """Poll until ``n`` chunk files exist; fail if the process ends or time runs out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = len(chunk_files(store))
        if count >= n:
            return count
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(
                f"the run ended (status {proc.returncode}) before {n} chunks:\n{out}\n{err}"
            )
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"fewer than {n} chunks after {timeout} s")


def tree_snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """``relative path -> (size, mtime_ns)`` of every file under ``folder``."""
    snap = {}
    for dirpath, _dirs, files in os.walk(folder):
        for f in files:
            p = Path(dirpath) / f
            st = p.stat()
            snap[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return snap


# --------------------------------------------------------------------------------------------
# Processes (Linux /proc)
# --------------------------------------------------------------------------------------------


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren ...)."""
    parents = {int(d): _ppid(int(d)) for d in os.listdir("/proc") if d.isdigit()}
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found += kids
        frontier += kids
    return found


def worker_pids(pid: int) -> list[int]:
    """The dask worker processes a LocalCluster in process ``pid`` started (multiprocessing spawn)."""
    return [p for p in descendants(pid) if "spawn_main" in cmdline(p)]


def wait_for_workers(pid: int, n: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = worker_pids(pid)
        if len(pids) >= n:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} worker processes under {pid} after {timeout} s")


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# TLS certificates (openssl CLI)
# --------------------------------------------------------------------------------------------


def make_certificates(directory: Path) -> tuple[str, str, str]:
    """A throwaway CA and one certificate for 127.0.0.1: ``(ca_file, cert, key)``."""
    ca_key, ca, key, csr, cert, ext = (
        str(directory / name)
        for name in ("ca.key", "ca.pem", "node.key", "node.csr", "node.pem", "ext")
    )
    Path(ext).write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "1", "-subj", "/CN=daskgrad-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "1", "-extfile", ext],
    ):  # fmt: skip
        subprocess.run(["openssl", *command], check=True, capture_output=True, timeout=60)
    return ca, cert, key
