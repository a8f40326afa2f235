"""Tile tasks from a dask graph: the tasks a few keys need, without the graph's whole key set.

:func:`tasks_for` finds the tasks behind some keys of a ``HighLevelGraph`` in time proportional
to what it finds (``Blockwise`` layers are culled for just those keys); the input reads of every
tile come from it. :class:`TileTasks` is what a program makes of one tile, and
:class:`GraphProgram` makes it from the lazy gradients of the whole array, for the variables
whose blocks cannot be computed from their neighbours' faces alone
(:func:`daskgrad.blocks.block_recipe`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import dask.core
from dask._task_spec import GraphNode
from dask.blockwise import Blockwise

from daskgrad.batch.grid import blocks_of_shard, region, shard_of
from daskgrad.batch.store import Store, write_block
from daskgrad.batch.tiles import Tile
from daskgrad.core._compat import make_task, ref

__all__ = ["GraphProgram", "Program", "TileTasks", "shard_members", "tasks_for"]

Index = tuple[int, ...]
Key = Hashable


# -- culling a graph for a few keys -----------------------------------------------------------


def _dependencies(graph: Mapping, task: Any) -> Iterable[Key]:
    if isinstance(task, GraphNode):
        return task.dependencies
    layers = getattr(graph, "layers", None)
    if layers is None:
        return dask.core.get_dependencies(graph, task=task)  # a legacy tuple task, a dict graph
    if not dask.core.istask(task) and not isinstance(task, (list, tuple)):
        return ()  # plain data (the array an input layer reads from): nothing to wait for
    # A legacy tuple task in a HighLevelGraph: its keys are those of the graph's layers.
    # (dask.core.get_dependencies would ask the graph for every argument, and a Blockwise layer
    # answers ``in`` by materializing all its keys.)
    found: list = []
    stack = [task]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            name = item[0] if item else None
            # A key is a tuple led by a layer's name, or found in a layer named otherwise
            # (overlap's getitem keys live in its own layer).
            if (
                isinstance(item, tuple)
                and isinstance(name, str)
                and _layer_of(layers, item) is not None
            ):
                found.append(item)
                continue
            stack.extend(item)
        elif isinstance(item, str) and _layer_of(layers, item) is not None:
            found.append(item)
    return found


def _layer_of(layers: Mapping[str, Any], key: Key) -> str | None:
    name = key[0] if isinstance(key, tuple) and key else key
    if isinstance(name, str) and name in layers:
        return name
    for lname, layer in layers.items():  # a key named unlike its layer (rare): search
        if not isinstance(layer, Blockwise) and key in layer:
            return lname
    return None


def tasks_for(graph: Mapping, keys: Iterable[Key], stop: Collection[Key] = ()) -> tuple[dict, set]:
    """The tasks that ``keys`` need, and the keys of ``stop`` the walk reached.

    Keys in ``stop`` are known already: neither they nor what only they need are taken. The
    cost is proportional to the tasks found, never to ``graph``: a ``HighLevelGraph``'s
    ``Blockwise`` layers are culled for the keys asked of them (materializing only those), and
    other layers are looked up by name. (dask's own culling lists every key of every layer
    first: dask#8570.)

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.ones((6, 6), chunks=2) + 1
    >>> tasks, _ = tasks_for(x.dask, [(x.name, 1, 2)])
    >>> sorted(k[1:] for k in tasks if k[0] == x.name)
    [(1, 2)]
    >>> tasks, reached = tasks_for(x.dask, [(x.name, 1, 2)], stop={(x.name, 1, 2)})
    >>> len(tasks), len(reached)
    (0, 1)
    """
    layers = getattr(graph, "layers", None)
    out: dict = {}
    reached: set = set()
    pending = list(keys)
    while pending:
        by_layer: dict[str | None, list] = {}
        for key in pending:
            if key in out or key in reached:
                continue
            if key in stop:
                reached.add(key)
                continue
            by_layer.setdefault(None if layers is None else _layer_of(layers, key), []).append(key)
        pending = []
        for name, ks in by_layer.items():
            ks = list(dict.fromkeys(ks))
            layer = graph if name is None else layers[name]  # type: ignore[index]
            if isinstance(layer, Blockwise):
                culled, deps = layer.cull(set(ks), ())
                tasks = dict(culled)
                for k in ks:
                    out[k] = tasks[k]
                    pending.extend(deps[k])
                continue
            for k in ks:
                task = layer[k]
                out[k] = task
                pending.extend(_dependencies(graph, task))
    return out, reached


# -- what a tile's tasks are ------------------------------------------------------------------


@dataclass
class TileTasks:
    """One tile's graph and what to wait for.

    Attributes
    ----------
    graph
        The tasks (keys already held by the caller are left out and referred to by key).
    waits
        The keys whose results are the bytes written (block and shard writes, face keeps).
    blocks
        Output blocks each key of ``waits`` writes (0 for a face keep).
    handover
        Keys the next tile of the same column needs that this graph computes (read once,
        handed over in memory).
    read_bytes
        Input bytes this graph reads (its own blocks and the bordering ones read for their
        faces); ``None`` where the program cannot tell.
    """

    graph: dict
    waits: list
    blocks: dict
    handover: list = field(default_factory=list)
    read_bytes: int | None = None


class Program(Protocol):
    """How the tasks of a tile are made."""

    def tasks(self, tile: Tile, known: Collection[Key], following: Tile | None) -> TileTasks: ...

    def finished(self, tile: Tile) -> None: ...


def shard_members(
    variable: str, shard: Index, per: Sequence[int], grid: Sequence[int], have: Iterable[Index]
) -> list[Index]:
    """The blocks of ``shard``; refused unless the tile holds them all (two tasks writing parts
    of one shard would each rewrite the whole shard file)."""
    members = blocks_of_shard(shard, per, grid)
    held = {tuple(i) for i in have if shard_of(tuple(i), per) == shard}
    if held != set(members):
        raise ValueError(
            f"a tile holds {len(held)} of the {len(members)} blocks of shard {shard} of "
            f"{variable!r}; shards must be written whole (round tiles to shards)"
        )
    return members


# -- tasks from the whole-array graph ---------------------------------------------------------


class GraphProgram:
    """Tile tasks walked from the lazy gradients of the whole array (the paths
    :func:`daskgrad.blocks.block_recipe` leaves to the graph).

    The graph is built once for the whole array (its cost grows with the number of blocks); each
    tile's tasks are then found from its write tasks by :func:`tasks_for`.
    """

    def __init__(self, arrays: Mapping[str, Any], store: Store, token: str | None) -> None:
        from dask.highlevelgraph import HighLevelGraph

        self.arrays = dict(arrays)
        self.store = store
        self.token = token
        self.graph = HighLevelGraph.merge(*(a.dask for a in self.arrays.values()))
        self._name = f"dg-write-{uuid.uuid4().hex[:12]}"
        self._chunks = {v: tuple(c[0] if c else 1 for c in a.chunks) for v, a in arrays.items()}
        self._shards = {v: _shards_in(store, v) for v in arrays}

    def finished(self, tile: Tile) -> None:
        pass

    def _writes(self, tile: Tile) -> tuple[dict, dict]:
        writes: dict = {}
        sizes: dict = {}
        for v, blocks in tile.blocks.items():
            arr = self.arrays[v]
            per = self._shards[v]
            grid = tuple(len(c) for c in arr.chunks)
            if per is None:
                for idx in blocks:
                    key = (self._name, v, *idx)
                    reg = region(idx, self._chunks[v], arr.shape)
                    writes[key] = make_task(
                        key, write_block, ref((arr.name, *idx)), self.store, v, reg, self.token
                    )
                    sizes[key] = 1
                continue
            from daskgrad.batch import shards

            for shard in sorted({shard_of(i, per) for i in blocks}):
                members = shard_members(v, shard, per, grid, blocks)
                first, last = members[0], members[-1]
                reg = tuple(
                    slice(a * c, min(n, (b + 1) * c))
                    for a, b, c, n in zip(first, last, self._chunks[v], arr.shape)
                )
                layout = tuple(b - a + 1 for a, b in zip(first, last))
                key = (self._name, v, "shard", *shard)
                writes[key] = make_task(
                    key,
                    shards.write_shard,
                    self.store,
                    v,
                    reg,
                    self.token,
                    layout,
                    *(ref((arr.name, *m)) for m in members),
                )
                sizes[key] = len(members)
        return writes, sizes

    def tasks(
        self, tile: Tile, known: Collection[Key] = (), following: Tile | None = None
    ) -> TileTasks:
        writes, sizes = self._writes(tile)
        deps = [d for task in writes.values() for d in task.dependencies]
        needed, _ = tasks_for(self.graph, deps, stop=set(known))
        needed.update(writes)
        handover: list = []
        if following is not None:
            later, _ = self._writes(following)
            later_deps = [d for task in later.values() for d in task.dependencies]
            full, _ = tasks_for(self.graph, later_deps)
            shared = (set(needed) | set(known)) & set(full)
            handover = sorted(tasks_for(full, later_deps, stop=shared)[1], key=str)
        return TileTasks(needed, list(writes), sizes, handover)


def _shards_in(store: Any, variable: str) -> tuple[int, ...] | None:
    """Blocks per shard of an output array in the store, or None if it has no shards."""
    import zarr

    from daskgrad.batch.remote import zarr_store_of
    from daskgrad.batch.shards import shard_blocks_of

    return shard_blocks_of(zarr.open_array(zarr_store_of(store), path=variable, mode="r"))
