"""Time against array size, in memory: daskgrad, dask.array.gradient and numpy.gradient.

3-D float64 arrays of 64 MiB to 1 GiB (shape (nz, 512, 512), chunks (64, 256, 256)), gradient
along all dims, threaded scheduler; the dask contenders read chunks held as arrays of their own
(as after ``persist()`` or a zarr read) and keep their results as chunks (``dask.persist``). Writes a table and ``docs/benchmark_scaling.png``. Run::

    python benchmarks/bench_scaling.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dask
import dask.array as da
import numpy as np
from _measure import measure, same_allocator_for_everyone

import daskgrad


def time_one_size(nz: int, repeat: int) -> dict[str, float]:
    x = np.random.default_rng(0).standard_normal((nz, 512, 512))
    (dx,) = dask.persist(
        da.from_array(x, chunks=(64, 256, 256)).map_blocks(np.copy), scheduler="threads"
    )
    return {
        "daskgrad.gradient": measure(
            "d", lambda: dask.persist(*daskgrad.gradient(dx), scheduler="threads"), repeat
        ).seconds,
        "dask.array.gradient": measure(
            "a", lambda: dask.persist(*da.gradient(dx), scheduler="threads"), repeat
        ).seconds,
        "numpy.gradient": measure("n", lambda: np.gradient(x), repeat).seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    parser.add_argument("--repeat", type=int, default=2)
    default_png = Path(__file__).resolve().parent.parent / "docs" / "benchmark_scaling.png"
    parser.add_argument("--out", type=Path, default=default_png)
    parser.add_argument("--system-malloc", action="store_true")
    args = parser.parse_args()
    same_allocator_for_everyone(sys.argv)

    rows = []
    for mib in args.sizes_mib:
        nz = max(8, mib * 2**20 // (512 * 512 * 8))
        t = time_one_size(nz, args.repeat)
        rows.append((nz * 512 * 512 * 8 / 2**20, t))
        print(
            f"{rows[-1][0]:6.0f} MiB  " + "  ".join(f"{k} {v:.3f}s" for k, v in t.items()),
            flush=True,
        )

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in rows[0][1]:
        ax.plot([r[0] for r in rows], [r[1][name] for r in rows], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("array size (MiB, float64, 3-D)")
    ax.set_ylabel("time (s), gradient along all 3 dims")
    ax.set_title("In-memory gradient, 2 cores, threaded scheduler")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"\nplot: {args.out}")


if __name__ == "__main__":
    main()
