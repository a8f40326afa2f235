"""Run tiles: one at a time per worker, in bounded memory, on clusters whose workers come and go.

Each tile's tasks come from a program (:mod:`daskgrad.batch.tile_tasks`: built from the plan,
or walked from a whole-array graph). Then:

* ``kind: threads``: tiles run one after another on dask's threaded scheduler;
* a distributed cluster: each worker has a *lane*: one column of tiles at a time, each tile
  submitted pinned to that worker (loosely: if the worker leaves, the scheduler runs its tasks
  elsewhere), so a worker's memory is bounded by one tile and the scheduler holds at most one
  tile's graph per worker, whatever the array's size;
* tiles of one column (a streamed tiling, :func:`daskgrad.batch.tiles.choose_plan`) run in
  order on one worker, each handing the next what they share (the plane between them) in
  memory;
* tiles are taken from a lazy iterator as lanes free up: the driver never holds the list of
  all tiles;
* workers come and go: a worker that joins gets the next column within a second; one that
  leaves (retired, or a job's walltime) has its tile finished elsewhere and the rest of its
  column handed to the next free lane; worker deaths are counted per tile, and a tile that saw
  more than ``allowed_failures`` of them ends the run;
* a watchdog ends the run when no block was written for ``stall_timeout`` seconds while
  workers exist (typically workers paused at distributed's memory threshold), or when the
  connection to the scheduler is lost, naming the cause.

The cluster's part (lanes, workers coming and going, the watchdog) is :mod:`daskgrad.batch.lanes`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import dask.threaded
from dask._task_spec import DataNode

from daskgrad.batch.graph_tasks import GraphProgram, Program, TileTasks
from daskgrad.batch.lanes import (
    ClusterRun,
    SchedulerLost,
    Stalled,
    TileDeaths,
    _count_reads,
    worker_infos,
)
from daskgrad.batch.tiles import Tile

__all__ = [
    "Progress",
    "SchedulerLost",
    "Stalled",
    "TileDeaths",
    "TileWriter",
    "WriteReport",
    "graph_writer",
    "worker_infos",
]


@dataclass
class Progress:
    """Progress lines at most every ``every`` seconds: blocks written, elapsed, time to go.

    Examples
    --------
    >>> lines = []
    >>> p = Progress(total=4, echo=lines.append, every=0.0)
    >>> p.add(1); p.add(3)
    >>> lines[-1].startswith("written 4 of 4 blocks (100%)")
    True
    """

    total: int
    echo: Callable[[str], None] = print
    every: float = 10.0
    enabled: bool = True
    done: int = 0
    _start: float = field(default_factory=time.monotonic)
    _last: float = field(default_factory=time.monotonic)

    def add(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if not self.enabled or (now - self._last < self.every and self.done < self.total):
            return
        self._last = now
        elapsed = now - self._start
        share = self.done / self.total if self.total else 1.0
        line = f"written {self.done} of {self.total} blocks ({share:.0%}) in {elapsed:.0f} s"
        if 0 < share < 1:
            line += f", about {elapsed / share - elapsed:.0f} s to go"
        self.echo(line)


@dataclass
class WriteReport:
    """What a write did: bytes written and read, and what the cluster's workers did meanwhile."""

    written: int = 0
    read_bytes: int = 0
    #: Tiles whose reads their program could not count (the whole-array graph's).
    uncounted: int = 0
    tiles: int = 0
    workers_at_start: int = 0
    joined: int = 0
    retired: int = 0
    died: int = 0
    handed_on: int = 0
    most_deaths: int = 0
    first_block_seconds: float | None = None

    def workers_line(self) -> str | None:
        """One line on the workers' comings and goings (None when none came or went).

        Examples
        --------
        >>> WriteReport(workers_at_start=2, joined=1, retired=1, handed_on=1).workers_line()
        'workers: 2 at the start, 1 joined, 1 left (retired), 0 died; 1 tile(s) handed on'
        """
        if not (self.joined or self.retired or self.died):
            return None
        line = (
            f"workers: {self.workers_at_start} at the start, {self.joined} joined, "
            f"{self.retired} left (retired), {self.died} died; {self.handed_on} tile(s) handed on"
        )
        if self.died:
            line += f"; at most {self.most_deaths} death(s) while one tile was in flight"
        return line


def _columns(tiles: Iterable[Tile]) -> Iterator[list[Tile]]:
    """Runs of consecutive tiles of one column (a tile without column is a column alone)."""
    run: list[Tile] = []
    for tile in tiles:
        if run and (tile.column is None or tile.column != run[-1].column):
            yield run
            run = []
        run.append(tile)
    if run:
        yield run


class TileWriter:
    """Writes tiles of output blocks, each tile's tasks made by its variable's program.

    Parameters
    ----------
    programs
        By :attr:`Tile.group`: the program that makes the tile's tasks.

    Examples
    --------
    >>> import tempfile, numpy as np, dask.array as da, zarr
    >>> path = tempfile.mkdtemp() + "/out.zarr"
    >>> _ = zarr.open_group(path, mode="w").create_array("y", shape=(6,), chunks=(2,), dtype="f8")
    >>> w = graph_writer({"y": da.arange(6.0, chunks=2) * 2}, path, token="t")
    >>> w.run([Tile({"y": [(0,), (1,)]}), Tile({"y": [(2,)]})]).written
    48
    >>> zarr.open_array(path, path="y")[:].tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    """

    def __init__(self, programs: Mapping[str | None, Program]) -> None:
        self.programs = dict(programs)

    def _tasks(self, tile: Tile, known: Iterable[Hashable], following: Tile | None) -> TileTasks:
        return self.programs[tile.group].tasks(tile, set(known), following)

    def _finished(self, tile: Tile) -> None:
        self.programs[tile.group].finished(tile)

    def run(
        self,
        tiles: Iterable[Tile],
        *,
        client: Any = None,
        stall_timeout: float | None = None,
        progress: Progress | None = None,
        allowed_failures: int | None = None,
        connect_timeout: float = 30.0,
    ) -> WriteReport:
        """Write every block of ``tiles`` (taken lazily, a column at a time).

        Raises
        ------
        Stalled
            On a cluster, when no block was written for ``stall_timeout`` seconds.
        SchedulerLost
            When the connection to the scheduler is gone for ``connect_timeout`` seconds.
        TileDeaths
            When more than ``allowed_failures`` workers died while one tile was in flight.
        """
        progress = progress or Progress(0, enabled=False)
        report = WriteReport()
        start = time.monotonic()

        def wrote(nbytes: int, blocks: int) -> None:
            report.written += nbytes
            if blocks:
                if report.first_block_seconds is None:
                    report.first_block_seconds = time.monotonic() - start
                progress.add(blocks)

        if client is None:
            self._run_here(tiles, report, wrote)
        else:
            ClusterRun(
                self, client, report, wrote, stall_timeout, allowed_failures, connect_timeout
            ).run(_columns(tiles))
        return report

    def _run_here(self, tiles: Iterable[Tile], report: WriteReport, wrote: Callable) -> None:
        held: dict = {}  # handed over by the previous tile of the column
        for column in _columns(tiles):
            held = {}
            for i, tile in enumerate(column):
                following = column[i + 1] if i + 1 < len(column) else None
                t = self._tasks(tile, held, following)
                dsk = dict(t.graph)
                for key, value in held.items():
                    dsk[key] = DataNode(key, value)
                results = dask.threaded.get(dsk, t.waits + t.handover)
                self._finished(tile)
                report.tiles += 1
                _count_reads(report, t.read_bytes)
                wrote(int(sum(results[: len(t.waits)])), sum(t.blocks[k] for k in t.waits))
                held = dict(zip(t.handover, results[len(t.waits) :]))


def graph_writer(arrays: Mapping[str, Any], store: Any, token: str | None) -> TileWriter:
    """A writer of lazy arrays (one dask block per zarr chunk), tiles walked from their graph."""
    return TileWriter({None: GraphProgram(arrays, store, token)})
