"""Peak memory against array size, grown along each dim in turn and along all together.

float32 inputs in zarr (chunks (16, 256, 256) = 4 MiB), gradient along all three dims, written
to zarr. The base shape is (64, 512, 512) = 64 MiB; each other case grows it 4x along one dim,
and the last 4x along every dim (4 GiB). Each contender runs in a fresh process and reports its
own peak resident memory (the kernel's ``VmHWM``):

* ``daskgrad run`` with ``cluster.kind: threads`` and ``cluster.memory_limit`` (the budget);
* ``ds.grad.to_zarr`` under the same budget (``dask.config`` ``daskgrad.memory-limit``);
* ``daskgrad.gradient`` + ``dask.array.store``: the read-once graph, no budget;
* ``dask.array.gradient`` + ``dask.array.store``.

Also runs the 4 GiB case of the bounded-memory issue on two workers with spilling off
(``--cluster``). Writes a table and ``docs/benchmark_memory.png``. Run::

    python benchmarks/bench_memory.py [--budget-mib 384] [--cases base z y x all] [--cluster]

Every process runs the numpy kernel (``DASKGRAD_KERNEL=numpy``, unless set otherwise): numba's
code (``daskgrad[fast]``) adds 100-125 MiB to each process, more than a budget of 256 MiB holds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHUNKS = (16, 256, 256)
BASE = (64, 512, 512)
CASES = {
    "base": (1, 1, 1),
    "z": (4, 1, 1),
    "y": (1, 4, 1),
    "x": (1, 1, 4),
    "all": (4, 4, 4),
}
CONTENDERS = (
    "daskgrad run",
    "ds.grad.to_zarr",
    "daskgrad.gradient + store",
    "dask.array.gradient + store",
)
HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"


def make_input(path: Path, shape: tuple[int, ...], chunks: tuple[int, ...] = CHUNKS) -> None:
    """A smooth float32 field plus noise, written chunk by chunk (bounded memory)."""
    if path.exists():
        return
    import dask.array as da
    import xarray as xr

    def block(block_info=None):
        loc = block_info[None]["array-location"]
        z, y, x = np.meshgrid(*(np.arange(a, b, dtype=np.float32) for a, b in loc), indexing="ij")
        rng = np.random.default_rng(loc[0][0] * 7 + loc[1][0] * 3 + loc[2][0])
        noise = rng.standard_normal(z.shape, dtype=np.float32)
        return np.sin(z / 17) * np.cos(y / 29) + x / 512 + np.float32(0.01) * noise

    arr = da.map_blocks(
        block,
        chunks=da.core.normalize_chunks(chunks, shape),
        dtype=np.float32,
        meta=np.empty((0, 0, 0), np.float32),
    )
    tmp = path.with_suffix(".tmp.zarr")
    shutil.rmtree(tmp, ignore_errors=True)
    xr.Dataset({"f": (("z", "y", "x"), arr)}).to_zarr(tmp, zarr_format=3, consolidated=False)
    tmp.rename(path)


def _vmhwm() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def one(contender: str, inp: str, out: str, budget: int) -> None:
    """Run one contender in this (fresh) process; print its figures as JSON."""
    import dask
    import dask.array as da
    import xarray as xr
    import zarr

    import daskgrad

    t0 = time.perf_counter()
    if contender == "ds.grad.to_zarr":
        with dask.config.set({"daskgrad.memory-limit": budget, "scheduler": "threads"}):
            xr.open_zarr(inp, consolidated=False).grad.to_zarr(out, mode="w")
    else:
        src = zarr.open_array(inp, path="f", mode="r")
        x = da.from_zarr(src)
        grads = daskgrad.gradient(x) if contender.startswith("daskgrad") else da.gradient(x)
        group = zarr.open_group(out, mode="w")
        targets = [
            group.create_array(
                f"d{i}", shape=src.shape, chunks=src.chunks, dtype=src.dtype, fill_value=np.nan
            )
            for i in range(3)
        ]
        da.store(list(grads), targets, lock=False, scheduler="threads")
    print(json.dumps({"seconds": time.perf_counter() - t0, "peak": _vmhwm()}))


def run_contender(contender: str, inp: Path, out: Path, budget: int, workdir: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    if contender == "daskgrad run":
        import yaml

        cfg = workdir / "run.yaml"
        cfg.write_text(
            yaml.safe_dump(
                {
                    "input": {"path": str(inp)},
                    "output": {"path": str(out), "mode": "overwrite"},
                    "cluster": {
                        "kind": "threads",
                        "n_workers": os.cpu_count(),
                        "memory_limit": f"{budget // 2**20}MiB",
                    },
                }
            )
        )
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "daskgrad.batch.cli", "run", str(cfg), "--no-progress"],
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - t0
        if proc.returncode:
            raise RuntimeError(proc.stdout + proc.stderr)
        peak = re.search(r"^peak memory driver: ([0-9.]+) (\w+)$", proc.stdout, re.MULTILINE)
        # What the run read, from its summary (the plan line's figure before it is a forecast).
        read = re.search(
            r"^read [0-9.]+ \w+ \(([+-][0-9]+)% of the input read again\)", proc.stdout, re.M
        )
        read = read or re.search(r"reading [0-9.]+ \w+ \(([+-][0-9]+)% of the input", proc.stdout)
        units = {"MiB": 2**20, "GiB": 2**30, "KiB": 2**10}
        return {
            "seconds": seconds,
            "peak": float(peak.group(1)) * units[peak.group(2)],
            "extra_read": int(read.group(1)) if read else 0,
        }
    proc = subprocess.run(
        [sys.executable, __file__, "--one", contender, str(inp), str(out), str(budget)],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise RuntimeError(proc.stdout + proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_equal(out: Path, inp: Path) -> None:
    """One corner of each output against numpy.gradient of the same corner's neighbourhood."""
    import xarray as xr
    import zarr

    got = xr.open_zarr(out, consolidated=None)
    src = zarr.open_array(str(inp), path="f", mode="r")[:40, :300, :300]
    for name, axis in (("df_dz", 0), ("df_dy", 1), ("df_dx", 2)):
        want = np.gradient(src, axis=axis)[1:-1, 1:-1, 1:-1]
        assert np.array_equal(got[name].values[1:39, 1:299, 1:299], want), name


def cluster_case(workdir: Path) -> str:
    """The issue's example: 4 GiB float32 (128, 2048, 4096), 2 workers x 768 MiB, spilling off."""
    import yaml

    inp = workdir / "issue-4gib.zarr"
    make_input(inp, (128, 2048, 4096), (64, 256, 256))
    out = workdir / "issue-out.zarr"
    cfg = workdir / "cluster.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "input": {"path": str(inp)},
                "output": {"path": str(out), "mode": "overwrite"},
                "cluster": {
                    "kind": "local",
                    "n_workers": 2,
                    "memory_limit": "768MiB",
                    "stall_timeout": 300,
                },
            }
        )
    )
    env = dict(
        os.environ,
        DASK_DISTRIBUTED__WORKER__MEMORY__SPILL="false",
        DASK_DISTRIBUTED__WORKER__MEMORY__TARGET="false",
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "daskgrad.batch.cli", "run", str(cfg), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - t0
    text = proc.stdout + proc.stderr
    if proc.returncode:
        raise RuntimeError(text)
    check_equal(out, inp)
    paused = text.count("Pausing worker")
    lines = [
        line
        for line in proc.stdout.splitlines()
        if line.startswith(("memory:", "peak memory", "read "))
    ]
    shutil.rmtree(out, ignore_errors=True)
    return "\n".join(
        [
            f"4 GiB float32 (128, 2048, 4096), chunks (64, 256, 256), 2 workers x 768 MiB, spilling off: "
            f"finished in {seconds:.1f} s, bit-exact on the checked corner, {paused} pause message(s)",
            *(f"    {line}" for line in lines),
        ]
    )


def plot(rows: dict, budget: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    sizes = {case: np.prod(BASE) * np.prod(CASES[case]) * 4 / 2**20 for case in rows}
    for contender in CONTENDERS:
        if contender not in next(iter(rows.values())):
            continue
        xs = [sizes[c] for c in rows]
        ys = [rows[c][contender]["peak"] / 2**20 for c in rows]
        ax.plot(xs, ys, "o", label=contender)
        for case, x, y in zip(rows, xs, ys):
            ax.annotate(case, (x, y), textcoords="offset points", xytext=(4, 2), fontsize=7)
    ax.axhline(budget / 2**20, color="grey", linestyle="--", linewidth=1, label="budget")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("input size (MiB), grown 4x along z, y, x or all")
    ax.set_ylabel("peak resident memory (MiB)")
    ax.set_title("Peak memory against array size (float32, 3 dims, zarr to zarr)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(DOCS / "benchmark_memory.png", dpi=110)


def main() -> None:
    os.environ.setdefault("DASKGRAD_KERNEL", "numpy")  # inherited by every contender's process
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-mib", type=int, default=384)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument(
        "--contenders", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS)
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/daskgrad-bench-memory"))
    parser.add_argument("--cluster", action="store_true", help="also the 4 GiB two-worker case")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        contender, inp, out, budget = args.one
        one(contender, inp, out, int(budget))
        return
    budget = args.budget_mib * 2**20
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(
        f"float32, chunks {CHUNKS} (4 MiB), 3 dims, {os.cpu_count()} cores; daskgrad's budget "
        f"{args.budget_mib} MiB (cluster.memory_limit, kind threads)\n"
    )
    rows: dict[str, dict] = {}
    for case in args.cases:
        shape = tuple(b * g for b, g in zip(BASE, CASES[case]))
        inp = args.workdir / f"input-{'x'.join(map(str, shape))}.zarr"
        make_input(inp, shape)
        rows[case] = {}
        for contender in args.contenders:
            out = args.workdir / "out.zarr"
            rows[case][contender] = run_contender(contender, inp, out, budget, args.workdir)
            if contender == "daskgrad run":
                check_equal(out, inp)
            shutil.rmtree(out, ignore_errors=True)
    head = "| case | shape | input (MiB) |" + "".join(
        f" {c}: peak MiB (s) |" for c in args.contenders
    )
    print(head)
    print("|---|---|---:|" + "---:|" * len(args.contenders))
    for case, figures in rows.items():
        shape = tuple(b * g for b, g in zip(BASE, CASES[case]))
        size = np.prod(shape) * 4 / 2**20
        cells = "".join(
            f" {figures[c]['peak'] / 2**20:.0f} ({figures[c]['seconds']:.1f}) |"
            for c in args.contenders
        )
        print(f"| {case} | {shape} | {size:.0f} |{cells}")
    if "daskgrad run" in args.contenders and "base" in rows:
        base = rows["base"]["daskgrad run"]["peak"]
        ratios = ", ".join(f"{c} {rows[c]['daskgrad run']['peak'] / base:.2f}" for c in rows)
        reads = ", ".join(f"{c} {rows[c]['daskgrad run']['extra_read']:+d}%" for c in rows)
        print(f"\ndaskgrad run peak / base case: {ratios}")
        print(f"daskgrad run extra bytes read (bordering blocks read again): {reads}")
    if args.cluster:
        print()
        print(cluster_case(args.workdir))
    if not args.no_plot and len(rows) > 1:
        plot(rows, budget)
        print("\nwrote docs/benchmark_memory.png")


if __name__ == "__main__":
    main()
