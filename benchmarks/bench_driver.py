"""The driver at scale: ``daskgrad validate`` and ``run`` on virtual 1, 10 and 112 TiB inputs.

Each input is an ERA5-like pressure-level variable written as zarr metadata only (no chunk is
stored, so every read returns the fill value): float32 ``t(time, level, latitude, longitude)``,
37 levels, 0.25 degrees (721 x 1440), hourly, chunks (24, 37, 121, 240) = 103 MiB. The time
axis sets the size: 7,200 hours = 1 TiB, 72,000 = 10 TiB, 770,000 = 112 TiB (1.17 million
blocks). The gradient is taken along latitude and longitude on the sphere, longitude periodic.

For each size, in fresh processes:

1. ``daskgrad validate``: wall time;
2. ``daskgrad run`` on a 2-worker local cluster: time from the start of the process to the
   first output chunk on disk, and the peak resident memory of the driver process alone
   (sampled every 50 ms; its workers are other processes), over ``--run-seconds`` of writing;
   then the run is killed (SIGKILL: an unclean stop);
3. ``--prefill`` fills a share of the output with chunk files, as an earlier run would have
   left them (copies of a written chunk, dated an hour back), so that the resume must list
   them;
4. ``daskgrad run --set output.mode=resume``: time to its first new chunk, and the driver's
   peak memory until then;
5. the planner alone, in this process: how many tiles per second the driver turns into task
   graphs (:class:`daskgrad.batch.tile_tasks.NativeProgram`) for the 112 TiB plan.

Run::

    python benchmarks/bench_driver.py [--sizes 1 10 112] [--run-seconds 20] [--prefill 0.05]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

HOURS = {1: 7_200, 10: 72_000, 112: 770_000}
CHUNKS = (24, 37, 121, 240)
LEVELS = 37


def make_input(path: Path, hours: int) -> None:
    """An ERA5-like store: coordinates written, the data variable metadata only."""
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    t = root.create_array(
        "t",
        shape=(hours, LEVELS, 721, 1440),
        chunks=CHUNKS,
        dtype="f4",
        fill_value=np.float32(250.0),
        dimension_names=("time", "level", "latitude", "longitude"),
        attributes={"units": "K", "standard_name": "air_temperature"},
    )
    del t
    coords = {
        "time": (
            np.arange(hours, dtype="i8"),
            {"units": "hours since 1940-01-01", "calendar": "proleptic_gregorian"},
        ),
        "level": (np.linspace(1.0, 1000.0, LEVELS), {"units": "hPa"}),
        "latitude": (np.linspace(90.0, -90.0, 721), {"units": "degrees_north"}),
        "longitude": (np.arange(1440) * 0.25, {"units": "degrees_east"}),
    }
    for name, (values, attrs) in coords.items():
        a = root.create_array(
            name, shape=values.shape, chunks=values.shape, dtype=values.dtype,
            dimension_names=(name,), attributes=attrs,
        )  # fmt: skip
        a[:] = values
    zarr.consolidate_metadata(str(path))


def write_config(path: Path, inp: Path, out: Path) -> None:
    path.write_text(
        f"""input: {{path: {inp}}}
gradient:
  dims: [latitude, longitude]
  geometry: spherical
  periodic: {{longitude: 360.0}}
output: {{path: {out}, mode: overwrite}}
cluster: {{kind: local, n_workers: 2, threads_per_worker: 1, memory_limit: 4GiB}}
"""
    )


def _daskgrad() -> list[str]:
    return [sys.executable, "-c", "from daskgrad.batch.cli import main; main()"]


def _chunk_files(out: Path) -> int:
    n = 0
    for var in ("dt_dlatitude", "dt_dlongitude"):
        root = out / var / "c"
        if root.exists():
            for _dir, _sub, files in os.walk(root):
                n += sum(1 for f in files if ".partial" not in f)
    return n


def watch(args: list[str], out: Path, *, after: float, run_seconds: float, baseline: int) -> dict:
    """Start a run; return the time to its first new chunk and the driver's peak RSS."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    driver = psutil.Process(proc.pid)
    peak, first, last_scan = 0, None, 0.0
    try:
        while True:
            now = time.monotonic()
            try:
                peak = max(peak, driver.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            if proc.poll() is not None:
                break
            if first is None and now - last_scan > 0.25:
                last_scan = now
                if _chunk_files(out) > baseline:
                    first = now - t0
            if first is not None and now - t0 > first + run_seconds:
                break
            if now - t0 > after:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=60)
    return {"first": first, "peak": peak, "output": output, "elapsed": time.monotonic() - t0}


def prefill(out: Path, share: float) -> int:
    """Chunk files for a share of the blocks, dated an hour back, copied from a written one."""
    import zarr

    made = 0
    for var in ("dt_dlatitude", "dt_dlongitude"):
        arr = zarr.open_array(str(out), path=var, mode="r")
        grid = tuple(-(-n // c) for n, c in zip(arr.shape, arr.chunks))
        root = out / var / "c"
        sample = next((Path(d) / f for d, _s, fs in os.walk(root) for f in fs), None)
        if sample is None:
            continue
        data = sample.read_bytes()
        old = time.time() - 3600
        count = int(share * np.prod(grid))
        for flat in range(count):
            idx = np.unravel_index(flat, grid)
            path = root.joinpath(*map(str, idx))
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            os.utime(path, (old, old))
            made += 1
    return made


def planner_rate(config: Path, seconds: float = 5.0) -> tuple[float, float]:
    """Tiles per second (and tasks per tile) that the driver turns into task graphs."""
    from daskgrad.batch.budget import WorkerMemory
    from daskgrad.batch.config import load_config
    from daskgrad.batch.run_plan import plan
    from daskgrad.batch.runner import programs_for
    from daskgrad.batch.schedule import iter_tiles, tile_plans

    p = plan(load_config(config))
    plans = tile_plans(p.groups, WorkerMemory(4 * 2**30, 1, 150 * 2**20, 0.6), 500)
    missing = p.expected()
    programs = programs_for(p, missing, keep_faces=False)
    tiles = iter_tiles(p.groups, plans, missing)
    n, tasks, t0 = 0, 0, time.perf_counter()
    for tile in tiles:
        tasks += len(programs[tile.group].tasks(tile, set(), None).graph)
        n += 1
        if time.perf_counter() - t0 > seconds:
            break
    return n / (time.perf_counter() - t0), tasks / max(1, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 112], choices=sorted(HOURS))
    parser.add_argument("--run-seconds", type=float, default=20.0, help="writing watched per run")
    parser.add_argument("--prefill", type=float, default=0.02, help="share of blocks pre-written")
    parser.add_argument("--timeout", type=float, default=180.0, help="give up on a first block")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("DASKGRAD_BENCH_DIR")) as tmp:
        for size in args.sizes:
            inp, out, cfg = (
                Path(tmp) / f"in{size}.zarr",
                Path(tmp) / f"out{size}.zarr",
                Path(tmp) / f"c{size}.yaml",
            )
            make_input(inp, HOURS[size])
            write_config(cfg, inp, out)
            t = time.monotonic()
            done = subprocess.run(
                [*_daskgrad(), "validate", str(cfg)], capture_output=True, text=True
            )
            validate = time.monotonic() - t
            assert done.returncode == 0, done.stdout + done.stderr
            run = watch([*_daskgrad(), "run", "--no-progress", str(cfg)], out, after=args.timeout,
                        run_seconds=args.run_seconds, baseline=0)  # fmt: skip
            written = _chunk_files(out)
            filled = prefill(out, args.prefill)
            resume = watch(
                [*_daskgrad(), "run", "--no-progress", str(cfg), "--set", "output.mode=resume"],
                out, after=args.timeout, run_seconds=2.0, baseline=written + filled,
            )  # fmt: skip
            import zarr

            blocks = int(
                np.prod(
                    [-(-n // c) for n, c in zip(zarr.open_array(str(inp), path="t").shape, CHUNKS)]
                )
            )
            rows.append((size, blocks, validate, run, written, filled, resume))
            tail = [ln for ln in run["output"].splitlines() if ln.startswith(("memory:", "error"))]
            print(f"{size} TiB: {blocks:,} blocks; {tail[:1]}", flush=True)
            shutil.rmtree(out, ignore_errors=True)
        rate, per_tile = planner_rate(Path(tmp) / f"c{args.sizes[-1]}.yaml")
    print()
    print(
        "| input | blocks | `validate` (s) | first block (s) | driver peak (MiB) | chunks written "
        "| chunks listed on resume | resume: first new block (s) | driver peak on resume (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, blocks, validate, run, written, filled, resume in rows:
        first = "-" if run["first"] is None else f"{run['first']:.1f}"
        rfirst = "-" if resume["first"] is None else f"{resume['first']:.1f}"
        print(
            f"| {size} TiB | {blocks:,} | {validate:.1f} | {first} | {run['peak'] / 2**20:.0f} | "
            f"{written:,} | {written + filled:,} | {rfirst} | {resume['peak'] / 2**20:.0f} |"
        )
    print(
        f"\nplanner: {rate:.0f} tiles/s turned into task graphs ({per_tile:.0f} tasks per tile) "
        f"for the {args.sizes[-1]} TiB plan with 500 workers of 4 GiB"
    )


if __name__ == "__main__":
    main()
