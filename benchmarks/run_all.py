"""Run every benchmark once and write docs/benchmarks-latest.md from what they print.

    python benchmarks/run_all.py [--quick]

``--quick`` uses smaller arrays (a smoke run, not figures to report). Each benchmark is its own
process, so none inherits another's memory. ``docs/benchmarks.md`` is the curated page: its
tables come from these outputs, with the commentary they need.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs" / "benchmarks-latest.md"

BENCHMARKS = [
    ("In memory", "bench_inmemory.py", [], ["--size-gib", "0.125", "--repeat", "1"]),
    (
        "Out of core (zarr to zarr)",
        "bench_out_of_core.py",
        ["--memory-larger"],
        ["--size-gib", "0.25", "--repeat", "1"],
    ),
    ("Planning a 1 TiB array", "bench_planning.py", [], []),
    ("Bytes moved between workers", "bench_transfer.py", [], []),
    (
        "Time against array size",
        "bench_scaling.py",
        [],
        ["--sizes-mib", "32", "64", "--repeat", "1"],
    ),
    (
        "Peak memory against array size, grown along each dim",
        "bench_memory.py",
        ["--cluster"],
        ["--cases", "base", "z", "--no-plot"],
    ),
    ("A run at scale, on paper", "scale_estimate.py", [], []),
    (
        "Divergence and vorticity",
        "bench_vector.py",
        [],
        ["--size-gib", "0.25", "--repeat", "1", "--no-metpy"],
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sections = []
    for title, script, full, quick in BENCHMARKS:
        print(f"== {title}: {script}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(HERE / script), *(quick if args.quick else full)],
            capture_output=True,
            text=True,
            cwd=HERE,
        )
        text = proc.stdout.strip()
        print(text, flush=True)
        if proc.returncode:
            print(proc.stderr, file=sys.stderr)
            raise SystemExit(f"{script} failed")
        sections.append(
            f"## {title}\n\n`python benchmarks/{script}` ({time.perf_counter() - t0:.0f} s)\n\n{text}\n"
        )
    header = (
        "# Benchmarks: raw output of the latest run\n\n"
        f"Measured with `python benchmarks/run_all.py` on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}. Timings on a shared "
        "machine are noisy: compare contenders as ratios within one run.\n"
    )
    if not args.quick:
        DOCS.write_text(
            header
            + "\n"
            + "\n".join(sections)
            + "\n![time against size](benchmark_scaling.png)\n"
            + "\n![peak memory against size](benchmark_memory.png)\n"
        )
        print(f"\nwrote {DOCS}")


if __name__ == "__main__":
    main()
