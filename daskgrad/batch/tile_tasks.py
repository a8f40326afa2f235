"""The tasks of one tile, built from the tile and the plan: reads, faces, kernels, writes.

Nothing here looks at the whole array's graph. A tile (:class:`daskgrad.batch.tiles.Tile`: the
output blocks it writes, all of one input variable) gets, per block position:

* its **read**: the input array's own task for that block, found by culling the input's graph
  for just the blocks the tile reads (:func:`daskgrad.batch.graph_tasks.tasks_for`; a zarr or netCDF input is one
  ``Blockwise`` layer, culled in time proportional to the blocks asked for);
* its **faces** (``dg-faces``): the first and last ``depth`` points along each differentiated
  axis, copied, so the block itself can be freed;
* its **kernel** (``dg-write``): :func:`daskgrad.blocks.block_fields` on the block and its
  neighbours' faces, then every output block written (or, for sharded outputs, handed to one
  ``dg-shard`` task per shard);
* where a block turns a face to a block of another tile that is still to be written, a
  **keep** task (``dg-keep``) that stores that face in the face store (:mod:`daskgrad.batch.faces`).

A block bordering the tile is read for its faces, unless its own tile finished earlier in this
run: then its face comes from the face store (``dg-stored``), a few bytes instead of a block.
The input is read through the tasks of its own graph, so a read error still names the chunk.

Paths whose blocks cannot be computed from faces alone (:func:`daskgrad.blocks.block_recipe`
says why) get their tasks from the whole-array graph instead
(:class:`daskgrad.batch.graph_tasks.GraphProgram`), walked
from the tile's write tasks as before.

Every task name carries the run's program token, so a cluster that outlives a run never mixes
two runs' tasks.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dask._task_spec import DataNode, GraphNode

from daskgrad.batch import faces as face_store
from daskgrad.batch.graph_tasks import GraphProgram, Program, TileTasks, shard_members, tasks_for
from daskgrad.batch.grid import BlockBitmap, region, shard_of
from daskgrad.batch.store import Store, write_block
from daskgrad.batch.tiles import Tile
from daskgrad.blocks import BlockRecipe, block_fields
from daskgrad.core._compat import make_task, ref
from daskgrad.core.stencil import neighbour, take_slabs

__all__ = ["NativeProgram", "NativeUnit", "make_programs"]

Index = tuple[int, ...]
Key = Hashable


# -- tasks from the plan ----------------------------------------------------------------------


@dataclass
class NativeUnit:
    """One input variable's outputs, as :class:`NativeProgram` computes them.

    Attributes
    ----------
    group
        The number of the variable (it names the face arrays).
    values
        The input as a dask array on the outputs' chunk grid (one block per output chunk).
    recipe
        How each block is computed (:func:`daskgrad.blocks.block_recipe`).
    chunks, shape, grid
        The blocks' shape, the array's shape and the block grid.
    shards
        Per output name, blocks per shard (``None``: one chunk per block).
    todo
        Block positions still to write (any output): faces are kept only for them.
    """

    group: int
    values: Any
    recipe: BlockRecipe
    chunks: tuple[int, ...]
    shape: tuple[int, ...]
    grid: tuple[int, ...]
    shards: Mapping[str, tuple[int, ...] | None]
    todo: BlockBitmap
    faces: dict[int, face_store.FaceSpec] = field(default_factory=dict)
    stored: BlockBitmap | None = None

    @property
    def axes(self) -> tuple[int, ...]:
        return self.recipe.axes

    def face_specs(self) -> list[face_store.FaceSpec]:
        """The face arrays of this variable (one per differentiated axis)."""
        dtype = self.values.dtype
        return [
            face_store.FaceSpec(self.group, a, self.recipe.depth, self.shape, self.chunks, dtype)
            for a in self.axes
        ]


@dataclass(frozen=True)
class _Source:
    """Where one face of a kernel comes from: a faces task (pick axis, which end) or a stored
    face (taken as it is), or nothing (a non-periodic end)."""

    axis: int
    pick: int | None  # 0: the neighbour's first points, 1: its last; None: a stored face


def compute_block(
    recipe: BlockRecipe,
    start: Index,
    sources: Sequence[_Source | None],
    writes: Sequence[tuple[int, str, tuple[slice, ...]]],
    store: Store | None,
    token: str | None,
    block: Any,
    *face_values: Any,
) -> Any:
    """One block's fields from the block and its neighbours' faces; written, or returned.

    ``sources`` and ``face_values`` come in pairs, two per differentiated axis (lower, upper).
    With ``store``, the fields named in ``writes`` (field number, output name, region) are
    written and the bytes written returned; without, the fields are returned (shards).

    Examples
    --------
    The second of two blocks of ``[0, 1, 4, 9, 16, 25]``, its lower neighbour's faces taken
    with :func:`daskgrad.core.stencil.take_slabs` (``pick=1``: that block's last point):

    >>> import numpy as np
    >>> from daskgrad.core.spacing import axis_spacing
    >>> from daskgrad.core.stencil import take_slabs
    >>> s = axis_spacing(None, axis=0, size=6, edge_order=1)
    >>> recipe = BlockRecipe(("d",), (0,), (s,), (None,), False, np.dtype("f8"))
    >>> f = np.arange(6.0) ** 2
    >>> faces = take_slabs(f[:3], [0], 1)
    >>> compute_block(recipe, (3,), [_Source(0, 1), None], [], None, None, f[3:], faces, None)
    [array([6., 8., 9.])]
    >>> np.gradient(f)[3:]
    array([6., 8., 9.])
    """
    faces: dict[int, list] = {a: [None, None] for a in recipe.axes}
    for i, (source, value) in enumerate(zip(sources, face_values)):
        if source is None:
            continue
        faces[source.axis][i % 2] = (
            value if source.pick is None else value[source.axis][source.pick]
        )
    fields = block_fields(recipe, block, start, {a: (lo, hi) for a, (lo, hi) in faces.items()})
    if store is None:
        return fields
    return sum(write_block(fields[i], store, name, reg, token) for i, name, reg in writes)


def write_shard_of(
    store: Store,
    variable: str,
    reg: tuple[slice, ...],
    token: str | None,
    layout: tuple[int, ...],
    field_index: int,
    *blocks_fields: Any,
) -> int:
    """Write one shard from the fields of its blocks (each a list, ``field_index`` taken)."""
    from daskgrad.batch.shards import write_shard

    return write_shard(
        store, variable, reg, token, layout, *(f[field_index] for f in blocks_fields)
    )


class NativeProgram:
    """Tile tasks built from the plan (see the module docstring).

    Parameters
    ----------
    units
        Per input variable (by source name), its :class:`NativeUnit`.
    store
        The output store; ``None`` for nothing (tests).
    token
        Passed to every write (the run's fingerprint and id).
    keep_faces
        Store outward faces and read them back (the face store must exist).
    """

    def __init__(
        self,
        units: Mapping[str, NativeUnit],
        store: Store,
        token: str | None,
        *,
        keep_faces: bool = True,
    ) -> None:
        self.units = dict(units)
        self.store = store
        self.token = token
        self.keep = keep_faces
        name = uuid.uuid4().hex[:12]
        self._faces = f"dg-faces-{name}"
        self._kernel = f"dg-write-{name}"
        self._recipe = f"dg-recipe-{name}"
        self._read = f"dg-read-{name}"
        self._keep = f"dg-keep-{name}"
        self._stored = f"dg-stored-{name}"
        self._shard = f"dg-shard-{name}"
        for u in self.units.values():
            u.faces = {s.axis: s for s in u.face_specs()} if keep_faces else {}
            u.stored = BlockBitmap(u.grid)

    def face_specs(self) -> list[face_store.FaceSpec]:
        """Every face array the program writes (create them before the first tile)."""
        return [s for u in self.units.values() for s in u.faces.values()]

    def finished(self, tile: Tile) -> None:
        """Record that ``tile`` is written: its outward faces are in the face store now."""
        u = self.units[str(tile.group)]
        if u.stored is not None and u.faces:
            u.stored.update(_positions(tile))

    def _stored_face(self, u: NativeUnit, n: Index, axis: int) -> bool:
        spec = u.faces.get(axis)
        return spec is not None and spec.storable and u.stored is not None and n in u.stored

    def tasks(
        self, tile: Tile, known: Collection[Key] = (), following: Tile | None = None
    ) -> TileTasks:
        u = self.units[str(tile.group)]
        x = u.values
        own = _positions(tile)
        own_set = set(own)
        later = set(_positions(following)) if following is not None else set()
        periodic = set(u.recipe.periodic)
        corner = tile.corner or own[0]

        def faces_key(b: Index) -> tuple:
            # A block that only borders this tile gets keys of this tile's own: its read and
            # faces run on this tile's worker, never fetched whole from a neighbour's worker
            # that happens to hold it (a key shared with a tile in flight elsewhere would be).
            if b in own_set or b in later:
                return (self._faces, u.group, *b)
            return (self._faces, u.group, "border", *corner, *b)

        graph: dict = {}
        reads: set[Index] = set(own)
        kernels: dict[Index, tuple[list, list]] = {}
        for c in own:
            sources: list[_Source | None] = []
            args: list = []
            for a in u.axes:
                for step in (-1, 1):
                    n = neighbour(c, a, step, u.grid, a in periodic)
                    pick = 1 if step < 0 else 0  # the lower neighbour gives its last points
                    if n is None:
                        sources.append(None)
                        args.append(None)
                    elif n not in own_set and self._stored_face(u, n, a):
                        key = (self._stored, u.group, a, pick, *n)
                        if key not in known:
                            graph[key] = make_task(
                                key,
                                face_store.read_face,
                                self.store,
                                u.faces[a],
                                n,
                                pick,
                                self.token,
                            )
                        sources.append(_Source(a, None))
                        args.append(ref(key))
                    else:
                        reads.add(n)
                        sources.append(_Source(a, pick))
                        args.append(ref(faces_key(n)))
            kernels[c] = (sources, args)

        read_keys = [(x.name, *b) for b in sorted(reads)]
        found, _ = tasks_for(x.dask, [k for k in read_keys if k not in known], stop=set(known))
        for b in reads:
            key = faces_key(b)
            read: tuple = (x.name, *b)
            if key[2] == "border" and read in found:  # this tile's own copy of the read
                task = found.pop(read)
                read = (self._read, u.group, *corner, *b)
                found[read] = task.substitute({}, key=read) if isinstance(task, GraphNode) else task
            if key not in known:
                graph[key] = make_task(key, take_slabs, ref(read), u.axes, u.recipe.depth)
        graph.update(found)

        waits, blocks = self._kernels(u, tile, kernels, graph)
        waits += self._keeps(u, own, own_set, graph)
        blocks.update({k: 0 for k in waits if k not in blocks})
        handover: list = []
        if following is not None:
            for b in sorted(reads & later):
                handover += [(x.name, *b), (self._faces, u.group, *b)]
        fresh = reads - _held(known, x.name)
        nbytes = x.dtype.itemsize * sum(
            math.prod(r.stop - r.start for r in region(b, u.chunks, u.shape)) for b in fresh
        )
        return TileTasks(graph, waits, blocks, handover, read_bytes=nbytes)

    def _kernels(self, u: NativeUnit, tile: Tile, kernels: dict, graph: dict) -> tuple[list, dict]:
        x = u.values
        names = list(u.recipe.names)
        sharded = any(u.shards.get(str(nm)) for nm in names)
        by_position: dict[Index, list] = {}
        for name, positions in tile.blocks.items():
            for c in positions:
                by_position.setdefault(tuple(c), []).append(name)
        waits: list = []
        sizes: dict = {}
        # The recipe (spacing records of whole axes, the metric) once per tile graph, not per task.
        recipe_key = (self._recipe, u.group)
        graph[recipe_key] = DataNode(recipe_key, u.recipe)
        for c, (sources, args) in kernels.items():
            key = (self._kernel, u.group, *c)
            start = tuple(i * ch for i, ch in zip(c, u.chunks))
            reg = region(c, u.chunks, u.shape)
            writes = [(names.index(nm), nm, reg) for nm in by_position.get(c, [])]
            graph[key] = make_task(
                key,
                compute_block,
                ref(recipe_key),
                start,
                sources,
                writes,
                None if sharded else self.store,
                self.token,
                ref((x.name, *c)),
                *args,
            )
            if not sharded:
                waits.append(key)
                sizes[key] = len(writes)
        if sharded:
            for name, positions in tile.blocks.items():
                waits += self._shard_writes(
                    u, str(name), names.index(name), positions, graph, sizes
                )
        return waits, sizes

    def _shard_writes(
        self,
        u: NativeUnit,
        name: str,
        index: int,
        positions: Sequence[Index],
        graph: dict,
        sizes: dict,
    ) -> list:
        per = u.shards.get(name) or tuple(1 for _ in u.grid)
        keys = []
        for shard in sorted({shard_of(c, per) for c in positions}):
            members = shard_members(name, shard, per, u.grid, positions)
            first, last = members[0], members[-1]
            reg = tuple(
                slice(a * c, min(n, (b + 1) * c))
                for a, b, c, n in zip(first, last, u.chunks, u.shape)
            )
            layout = tuple(b - a + 1 for a, b in zip(first, last))
            key = (self._shard, name, *shard)
            graph[key] = make_task(
                key,
                write_shard_of,
                self.store,
                name,
                reg,
                self.token,
                layout,
                index,
                *(ref((self._kernel, u.group, *m)) for m in members),
            )
            sizes[key] = len(members)
            keys.append(key)
        return keys

    def _keeps(self, u: NativeUnit, own: Sequence[Index], own_set: set, graph: dict) -> list:
        """Keep tasks: the faces own blocks turn to blocks of other tiles still to write."""
        if not u.faces:
            return []
        periodic = set(u.recipe.periodic)
        keys = []
        for c in own:
            wanted = []
            for a in u.axes:
                spec = u.faces[a]
                if not spec.storable:
                    continue
                for step, side in ((-1, 0), (1, 1)):
                    n = neighbour(c, a, step, u.grid, a in periodic)
                    if n is not None and n not in own_set and n in u.todo:
                        wanted.append((spec, c, side))
            if wanted:
                key = (self._keep, u.group, *c)
                graph[key] = make_task(
                    key,
                    face_store.keep_faces,
                    ref((u.values.name, *c)),
                    self.store,
                    wanted,
                    self.token,
                )
                keys.append(key)
        return keys


def _positions(tile: Tile) -> list[Index]:
    """The block positions a tile writes (any output), in order."""
    return sorted({tuple(c) for blocks in tile.blocks.values() for c in blocks})


def _held(known: Collection[Key], name: str) -> set[Index]:
    return {tuple(k[1:]) for k in known if isinstance(k, tuple) and k and k[0] == name}


def make_programs(
    groups: Sequence[Any],
    recipes: Mapping[str, BlockRecipe | str],
    values: Mapping[str, Any],
    outputs: Mapping[str, Any],
    chunk_shapes: Mapping[str, tuple[int, ...]],
    shards: Mapping[str, tuple[int, ...] | None],
    missing: Mapping[str, BlockBitmap],
    store: Store,
    token: str | None,
    *,
    keep_faces: bool = True,
) -> dict[str | None, Program]:
    """Per input variable (by :attr:`Group.source`), the program that makes its tile tasks.

    Parameters
    ----------
    groups
        The :class:`daskgrad.batch.schedule.Group` of each input variable.
    recipes
        Per input variable, its :class:`~daskgrad.blocks.BlockRecipe` (tasks from the plan),
        or why its outputs come from the whole-array graph (then ``outputs`` holds that graph);
        per group of derived fields its :class:`~daskgrad.vector_blocks.VectorRecipe`
        (:class:`~daskgrad.batch.derived_tasks.DerivedProgram`) or the reason.
    values
        Per input variable, the values on the outputs' chunk grid (a lazy dask array).
    outputs
        Per output variable, its lazy array (the whole-array graph, where a recipe is missing).
    chunk_shapes, shards
        Per output variable, its block shape and blocks per shard (or None).
    missing
        Per output variable, the blocks still to write.
    store, token
        Where, and with which token, blocks are written.
    keep_faces
        Keep faces between tiles in the face store (:mod:`daskgrad.batch.faces`).
    """
    units: dict[str, NativeUnit] = {}
    derived: dict[str, Any] = {}
    programs: dict[str | None, Program] = {}
    for number, g in enumerate(groups):
        recipe = recipes[g.source]
        if isinstance(recipe, str):
            programs[g.source] = GraphProgram({o: outputs[o] for o in g.outputs}, store, token)
            continue
        if not isinstance(recipe, BlockRecipe):  # derived fields (daskgrad.batch.derived)
            from daskgrad.batch.derived_tasks import DerivedUnitTasks

            derived[g.source] = DerivedUnitTasks(
                values=tuple(values[g.source]),
                recipe=recipe,
                names=tuple(g.outputs),
                chunks=tuple(chunk_shapes[g.outputs[0]]),
                shape=tuple(values[g.source][0].shape),
                grid=tuple(g.grid),
                shards={o: shards.get(o) for o in g.outputs},
            )
            continue
        first = g.outputs[0]
        todo = BlockBitmap(g.grid)
        for o in g.outputs:
            todo = todo | missing[o]
        units[g.source] = NativeUnit(
            group=number,
            values=values[g.source],
            recipe=recipe,
            chunks=tuple(chunk_shapes[first]),
            shape=tuple(values[g.source].shape),
            grid=tuple(g.grid),
            shards={o: shards.get(o) for o in g.outputs},
            todo=todo,
        )
    if units:
        native = NativeProgram(units, store, token, keep_faces=keep_faces)
        programs.update(dict.fromkeys(units, native))
    if derived:
        from daskgrad.batch.derived_tasks import DerivedProgram

        programs.update(dict.fromkeys(derived, DerivedProgram(derived, store, token)))
    return programs
