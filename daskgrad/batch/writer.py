"""Write gradient blocks to zarr tile by tile: bounded memory, progress lines, never a silent hang.

The lazy gradients of a whole array form one graph; computing it at once lets dask read every
block before any is finished (a wavefront of a whole cross-section of the block grid). Here
each tile of :mod:`daskgrad.batch.tiles` is submitted on its own: its write tasks and, found by
walking their dependencies (:func:`subgraph`, cost proportional to the tile, not the array),
the reads, faces and kernels they need. Then:

* ``kind: threads``: tiles run one after another on dask's threaded scheduler;
* a distributed cluster: each worker gets one tile at a time, pinned to it (loosely: if the
  worker dies, another takes the tasks), so each worker's memory is bounded by one tile, the
  scheduler holds at most one tile's graph per worker, and faces never cross the network;
* tiles of one column (a streamed tiling, :func:`daskgrad.batch.tiles.choose_plan`) run in order on
  one worker, and each hands the next what they share (the plane between them, the faces of
  its last plane) in memory instead of having it read again;
* a watchdog ends the run when no block has been written for ``stall_timeout`` seconds while
  workers exist (typically workers paused at distributed's memory threshold), naming the cause.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
import dask.array as da
import dask.core
import dask.threaded
from dask._task_spec import DataNode, GraphNode
from dask.highlevelgraph import HighLevelGraph

from daskgrad.batch import store as zstore
from daskgrad.batch.remote import zarr_store_of
from daskgrad.batch.store import Store
from daskgrad.core._compat import make_task, ref

__all__ = ["Progress", "Stalled", "Tile", "TileWriter", "subgraph", "worker_infos"]

log = logging.getLogger("daskgrad")

Index = tuple[int, ...]


class Stalled(RuntimeError):
    """No block was written for longer than the stall timeout."""


def _dependencies(graph: Mapping, task: Any) -> Iterable[Hashable]:
    if isinstance(task, GraphNode):
        return task.dependencies
    return dask.core.get_dependencies(graph, task=task)  # a legacy tuple task


def subgraph(graph: Mapping, keys: Iterable[Hashable], stop: Collection[Hashable] = ()) -> dict:
    """The tasks that ``keys`` need, found by walking dependencies from them.

    The cost is proportional to the tasks found, not to ``graph``: a ``HighLevelGraph`` finds
    a key's task through its layer name in O(1). (dask's own culling intersects every layer's
    keys: 0.2 s per call on the graph of a 1 TiB array, once per tile.) Keys in ``stop`` are
    known already: neither they nor what only they need are taken.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones(6, chunks=2) + 1
    >>> sorted(k[1] for k in subgraph(x.dask, [(x.name, 1)]) if k[0] == x.name)
    [1]
    >>> len(subgraph(x.dask, [(x.name, 1)], stop={(x.name, 1)}))
    0
    """
    return _walk(graph, keys, stop)[0]


def _walk(graph: Mapping, keys: Iterable[Hashable], stop: Collection[Hashable]) -> tuple[dict, set]:
    """:func:`subgraph`, and the keys of ``stop`` the walk reached."""
    out: dict = {}
    reached: set = set()
    stack = list(keys)
    while stack:
        key = stack.pop()
        if key in out or key in reached:
            continue
        if key in stop:
            reached.add(key)
            continue
        task = graph[key]
        out[key] = task
        stack.extend(d for d in _dependencies(graph, task) if d not in out)
    return out, reached


def _region(index: Index, chunk_shape: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(i * c, min(n, (i + 1) * c)) for i, c, n in zip(index, chunk_shape, shape))


@dataclass(frozen=True)
class Tile:
    """One unit of bounded work: output blocks to write, and the input blocks it reads."""

    blocks: Mapping[str, Sequence[Index]]
    read_bytes: int = 0  # input bytes it reads: its own blocks and those bordering it
    column: Hashable | None = None  # tiles of one column run in order on one worker

    @property
    def count(self) -> int:
        return sum(len(b) for b in self.blocks.values())


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


class TileWriter:
    """Writes the blocks of lazy output arrays into an existing zarr store, tile by tile.

    Parameters
    ----------
    arrays
        Output variable -> dask array with one block per zarr chunk of that variable.
    path
        The zarr store (created, with every output array, beforehand).
    token
        Passed to :func:`daskgrad.batch.store.write_block` with every block (identifies the run).

    Examples
    --------
    >>> import tempfile, numpy as np, dask.array as da, zarr
    >>> path = tempfile.mkdtemp() + "/out.zarr"
    >>> _ = zarr.open_group(path, mode="w").create_array("y", shape=(6,), chunks=(2,), dtype="f8")
    >>> y = da.arange(6.0, chunks=2) * 2
    >>> w = TileWriter({"y": y}, path, token="t")
    >>> w.run([Tile({"y": [(0,), (1,)]}), Tile({"y": [(2,)]})])
    48
    >>> zarr.open_array(path, path="y")[:].tolist()
    [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    """

    def __init__(self, arrays: Mapping[str, da.Array], path: Store, token: str | None) -> None:
        self.arrays = dict(arrays)
        self.path = path
        self.token = token
        self.graph = HighLevelGraph.merge(*(a.dask for a in arrays.values()))
        # Unique per writer: a long-lived cluster never confuses two runs' write tasks.
        self._name = f"daskgrad-write-{uuid.uuid4().hex}"
        self._chunks = {v: tuple(c[0] if c else 1 for c in a.chunks) for v, a in arrays.items()}
        # Sharded arrays (output.encoding.shards) are written a whole shard per task.
        self._shards = {v: _shards_in(path, v) for v in arrays}
        self._sizes: dict[Hashable, int] = {}

    def _writes(self, tile: Tile) -> dict:
        writes = {}
        for v, blocks in tile.blocks.items():
            arr = self.arrays[v]
            per = self._shards[v]
            if per is not None:
                writes.update(self._shard_writes(v, blocks, per))
                continue
            for idx in blocks:
                key = (self._name, v, *idx)
                region = _region(idx, self._chunks[v], arr.shape)
                writes[key] = make_task(
                    key, zstore.write_block, ref((arr.name, *idx)), self.path, v, region, self.token
                )
        return writes

    def _shard_writes(self, v: str, blocks: Sequence[Index], per: Index) -> dict:
        """One task per shard, taking all the shard's blocks; a tile must hold whole shards."""
        from daskgrad.batch import shards

        arr = self.arrays[v]
        grid = tuple(len(c) for c in arr.chunks)
        by_shard: dict[Index, set[Index]] = {}
        for idx in blocks:
            by_shard.setdefault(tuple(i // p for i, p in zip(idx, per)), set()).add(idx)
        writes = {}
        for shard, have in sorted(by_shard.items()):
            members = shards.blocks_of_shard(shard, per, grid)
            if have != set(members):
                # Two tasks writing parts of one shard would each rewrite the whole shard file.
                raise ValueError(
                    f"a tile holds {len(have)} of the {len(members)} blocks of shard {shard} of "
                    f"{v!r}; shards must be written whole (round tiles to shards)"
                )
            first, last = members[0], members[-1]
            region = tuple(
                slice(a * c, min(n, (b + 1) * c))
                for a, b, c, n in zip(first, last, self._chunks[v], arr.shape)
            )
            layout = tuple(b - a + 1 for a, b in zip(first, last))
            key = (self._name, v, "shard", *shard)
            writes[key] = make_task(
                key,
                shards.write_shard,
                self.path,
                v,
                region,
                self.token,
                layout,
                *(ref((arr.name, *m)) for m in members),
            )
            self._sizes[key] = len(members)
        return writes

    def blocks_in(self, key: Hashable) -> int:
        """Blocks a write task writes: one, or all of its shard's."""
        return self._sizes.get(key, 1)

    def tile_graph(
        self, tile: Tile, known: Collection[Hashable] = (), following: Tile | None = None
    ) -> tuple[dict, list, list]:
        """The tasks of ``tile``: ``(graph, write keys, keys to hand over)``.

        ``known`` are keys computed before and handed over (left out of the graph). With
        ``following`` (the next tile of the same column), the keys to hand over are those
        ``following`` needs that this tile computes or holds: the plane they share and the faces
        of this tile's last plane, never more.
        """
        writes = self._writes(tile)
        needed = subgraph(self.graph, _deps(writes), stop=known)
        needed.update(writes)
        handover: list = []
        if following is not None:
            later = self._writes(following)
            full = subgraph(self.graph, _deps(later))
            shared = (set(needed) | set(known)) & set(full)
            handover = sorted(_walk(full, _deps(later), shared)[1], key=str)
        return needed, list(writes), handover

    def run(
        self,
        tiles: Sequence[Tile],
        *,
        client: Any = None,
        stall_timeout: float | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Write every block of ``tiles``; returns the bytes written (uncompressed).

        Consecutive tiles of one column run in order, handing over what they share.

        Raises
        ------
        Stalled
            On a cluster, when no block was written for ``stall_timeout`` seconds.
        """
        progress = progress or Progress(sum(t.count for t in tiles), enabled=False)
        if client is None:
            return self._run_here(tiles, progress)
        return self._run_on_cluster(tiles, client, stall_timeout, progress)

    def _run_here(self, tiles: Sequence[Tile], progress: Progress) -> int:
        written = 0
        held: dict = {}  # handed over by the previous tile of the column
        for i, tile in enumerate(tiles):
            following = _following(tiles, i)
            dsk, writes, handover = self.tile_graph(tile, held, following)
            for key, value in held.items():
                dsk[key] = DataNode(key, value)
            results = dask.threaded.get(dsk, writes + handover)
            written += int(sum(results[: len(writes)]))
            held = dict(zip(handover, results[len(writes) :]))
            progress.add(sum(self.blocks_in(k) for k in writes))
        return written

    def _run_on_cluster(
        self, tiles: Sequence[Tile], client: Any, stall_timeout: float | None, progress: Progress
    ) -> int:
        columns = deque(_columns(tiles))
        lanes: dict[str, _Lane] = {}  # per worker: its column, its tile in flight, what it holds
        written = 0
        last_write = time.monotonic()
        infos = worker_infos(client)
        refreshed = time.monotonic()
        waiting_said = False
        try:
            while columns or any(lane.busy or lane.tiles for lane in lanes.values()):
                now = time.monotonic()
                if now - refreshed > 1.0:
                    infos, refreshed = worker_infos(client), now
                    for address in [a for a in lanes if a not in infos]:  # a worker died:
                        lane = lanes.pop(address)  # its in-flight tasks run elsewhere (loose
                        if lane.tiles:  # restrictions); the rest of its column starts anew
                            columns.appendleft(list(lane.tiles))
                        lane.tiles, lane.held, lane.orphaned = deque(), {}, True
                        lanes[f"{address}#{id(lane)}"] = lane
                for address in _running(infos):
                    lane = lanes.setdefault(address, _Lane())
                    if lane.writes:
                        continue
                    if not lane.tiles and columns:
                        lane.tiles = deque(columns.popleft())
                        lane.held = {}
                    if lane.tiles:
                        lane.submit(self, client, address)
                finished = 0
                for lane in lanes.values():
                    done, count = lane.harvest()
                    written += done
                    finished += count
                lanes = {
                    a: lane for a, lane in lanes.items() if not (lane.orphaned and not lane.busy)
                }
                if finished:
                    last_write = now
                    progress.add(finished)
                    continue
                if not infos:  # a job queue still starting workers is not a stall
                    if not waiting_said:
                        log.warning("waiting for workers to join the cluster")
                        waiting_said = True
                    last_write = now
                elif stall_timeout is not None and now - last_write > stall_timeout:
                    raise Stalled(stall_cause(client, now - last_write))
                time.sleep(0.02)
        finally:
            for lane in lanes.values():
                lane.cancel(client)
        return written


def _shards_in(path: Any, variable: str) -> Index | None:
    """Blocks per shard of an output array in the store, or None if it has no shards."""
    import zarr

    from daskgrad.batch.shards import shard_blocks_of

    return shard_blocks_of(zarr.open_array(zarr_store_of(path), path=variable, mode="r"))


def _deps(writes: Mapping) -> list:
    return [key for task in writes.values() for key in task.dependencies]


def _following(tiles: Sequence[Tile], i: int) -> Tile | None:
    """The next tile if it continues the same column."""
    if (
        i + 1 < len(tiles)
        and tiles[i].column is not None
        and tiles[i + 1].column == tiles[i].column
    ):
        return tiles[i + 1]
    return None


def _columns(tiles: Sequence[Tile]) -> list[list[Tile]]:
    """Runs of consecutive tiles of one column (a tile without column is a column alone)."""
    out: list[list[Tile]] = []
    for i, tile in enumerate(tiles):
        if i and tile.column is not None and tile.column == tiles[i - 1].column:
            out[-1].append(tile)
        else:
            out.append([tile])
    return out


@dataclass
class _Lane:
    """One worker's column: the tiles left, the writes in flight, the futures handed over."""

    tiles: deque = field(default_factory=deque)
    writes: list = field(default_factory=list)
    held: dict = field(default_factory=dict)
    incoming: dict = field(default_factory=dict)
    sizes: dict = field(default_factory=dict)  # blocks each write future writes
    orphaned: bool = False

    @property
    def busy(self) -> bool:
        return bool(self.writes)

    def submit(self, writer: TileWriter, client: Any, address: str) -> None:
        tile = self.tiles.popleft()
        following = self.tiles[0] if self.tiles else None
        dsk, writes, handover = writer.tile_graph(tile, self.held, following)
        futures = client.get(
            dsk, writes + handover, sync=False, workers=[address], allow_other_workers=True
        )
        self.writes = list(futures[: len(writes)])
        self.sizes = {f.key: writer.blocks_in(k) for f, k in zip(self.writes, writes)}
        # The graph just sent refers to what was held; the scheduler keeps it for that graph.
        self.held = {}
        self.incoming = dict(zip(handover, futures[len(writes) :]))

    def harvest(self) -> tuple[int, int]:
        """Bytes and blocks written since the last call; raises a failed task's error."""
        pending, written, count = [], 0, 0
        for f in self.writes:
            if f.done():
                written += int(f.result())
                count += self.sizes.get(f.key, 1)
            else:
                pending.append(f)
        self.writes = pending
        if not pending and self.incoming:
            self.held, self.incoming = self.incoming, {}
        return written, count

    def cancel(self, client: Any) -> None:
        for futures in (self.writes, list(self.held.values()), list(self.incoming.values())):
            if futures:
                client.cancel(futures)


def worker_infos(client: Any) -> dict[str, dict]:
    """The scheduler's record of every worker, by address."""
    try:
        return dict(client.scheduler_info(n_workers=-1)["workers"])
    except TypeError:  # older distributed: no n_workers argument
        return dict(client.scheduler_info()["workers"])


def _running(infos: Mapping[str, Mapping]) -> list[str]:
    return sorted(a for a, w in infos.items() if w.get("status", "running") == "running")


def stall_cause(client: Any, seconds: float) -> str:
    """One line on why a cluster run wrote nothing for ``seconds``."""
    infos = worker_infos(client)
    paused = sorted(a for a, w in infos.items() if w.get("status") == "paused")
    head = f"no block written for {seconds:.0f} s (cluster.stall_timeout)"
    if paused:
        return (
            f"{head}: {len(paused)} of {len(infos)} worker(s) paused, their memory above "
            "distributed's pause threshold (80% of cluster.memory_limit); give workers more "
            "memory or set smaller input.chunks"
        )
    return f"{head}: workers are alive but finish no task (a hung read or write?)"
