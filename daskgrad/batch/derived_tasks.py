"""Tile tasks of a group of derived fields, from its recipe: reads, faces, one kernel per block.

The derived-field counterpart of :class:`daskgrad.batch.tile_tasks.NativeProgram`, for a group
of :mod:`daskgrad.batch.derived` whose blocks the fused kernel computes
(:func:`daskgrad.vector_blocks.vector_block`). Per block position of a tile:

* the **reads** of every input of the group (``u`` and ``v`` for divergence and vorticity;
  the scalar, ``u`` and ``v`` for an advection): each input's own task for that block, culled
  from the input's graph (:func:`daskgrad.batch.graph_tasks.tasks_for`), once per tile;
* the **faces** (``dg-vfaces``) of the inputs whose neighbours' faces the kernel needs, for
  the blocks of the tile and those bordering it: the first and last ``depth`` points along
  the group's axes, copied (:func:`daskgrad.core.stencil.take_slabs`);
* one **kernel** (``dg-vwrite``) that computes every output of the group for the block and
  writes it (or hands it to one ``dg-vshard`` task per shard).

The numbers are the lazy accessor operator's, bit for bit: the same kernel on the same blocks
and faces (``tests/test_vector_run.py``). Blocks bordering a tile are read again by the
neighbouring tile (no face store here: at the default budget a 1 GiB pair is one tile).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dask._task_spec import DataNode

from daskgrad.batch.graph_tasks import TileTasks, shard_members, tasks_for
from daskgrad.batch.grid import region, shard_of
from daskgrad.batch.store import Store, write_block
from daskgrad.batch.tile_tasks import write_shard_of
from daskgrad.batch.tiles import Tile
from daskgrad.blocks import BlockRecipe, block_fields
from daskgrad.core._compat import make_task, ref
from daskgrad.core.stencil import call_kernel, neighbour, take_slabs
from daskgrad.vector_blocks import VectorRecipe, vector_block

__all__ = ["DerivedProgram", "DerivedUnitTasks", "UnitRecipe", "compute_derived", "unit_recipe"]

Index = tuple[int, ...]
Key = Hashable


@dataclass(frozen=True)
class UnitRecipe:
    """What every block of one unit (:class:`daskgrad.batch.derived.DerivedUnit`) is computed
    with: its parts, each a gradient (:class:`~daskgrad.blocks.BlockRecipe`, one input) or
    operators (:class:`~daskgrad.vector_blocks.VectorRecipe`, its inputs), and the inputs each
    takes (indices into the kernel's blocks).

    Attributes
    ----------
    parts
        ``(recipe, inputs)`` per part, in output order.
    face_axes
        Per kernel input, the axes along which its neighbours' faces are needed.
    depth
        Points per face (the most any part needs; each part trims its own).
    periodic, axes
        The axes that wrap, and every axis with faces.
    """

    parts: tuple[tuple[BlockRecipe | VectorRecipe, tuple[int, ...]], ...]
    face_axes: tuple[tuple[int, ...], ...]
    depth: int
    periodic: tuple[int, ...]
    axes: tuple[int, ...]

    def __repr__(self) -> str:
        return f"UnitRecipe(parts={[type(p).__name__ for p, _ in self.parts]}, depth={self.depth})"


def unit_recipe(
    parts: Sequence[tuple[BlockRecipe | VectorRecipe, tuple[int, ...]]], inputs: int
) -> UnitRecipe:
    """The :class:`UnitRecipe` of ``parts`` over ``inputs`` kernel inputs.

    Examples
    --------
    The gradient of ``u`` along its axis 1 and the vorticity of ``(u, v)`` along axes 1, 0:

    >>> import numpy as np
    >>> from daskgrad.core.spacing import axis_spacing
    >>> from daskgrad.vector_blocks import vector_recipe
    >>> s0 = axis_spacing(None, axis=0, size=4, edge_order=1)
    >>> s1 = axis_spacing(None, axis=1, size=5, edge_order=1)
    >>> grad = BlockRecipe(("du_dx",), (1,), (s1,), (None,), False, np.dtype("f8"))
    >>> vort = vector_recipe(("vorticity",), 1, 0, s1, s0, np.dtype("f8"))
    >>> r = unit_recipe([(grad, (0,)), (vort, (0, 1))], 2)
    >>> r.face_axes, r.depth
    (((1, 0), (1, 0)), 1)
    >>> u, v = np.zeros((4, 5)), np.tile(np.arange(5.0), (4, 1))
    >>> none = {0: (None, None), 1: (None, None)}
    >>> [f[0].tolist() for f in unit_kernel(r, (0, 0), (u, v), (none, none))]
    [[0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]]
    """
    faces: list[list[int]] = [[] for _ in range(inputs)]
    periodic: list[int] = []
    for recipe, which in parts:
        wanted = [recipe.axes] if isinstance(recipe, BlockRecipe) else list(recipe.face_axes)
        for i, axes in zip(which, wanted):
            faces[i] += [a for a in axes if a not in faces[i]]
        periodic += [a for a in recipe.periodic if a not in periodic]
    axes = tuple(dict.fromkeys(a for f in faces for a in f))
    depth = max((r.depth for r, _ in parts), default=1)
    return UnitRecipe(tuple(parts), tuple(map(tuple, faces)), depth, tuple(periodic), axes)


def unit_kernel(recipe: UnitRecipe, start: Any, blocks: Any, faces: Any) -> tuple[Any, ...]:
    """Every output of one block of a unit, in order (``call_kernel``'s ``kernel``)."""
    out: list[Any] = []
    for part, which in recipe.parts:
        if isinstance(part, BlockRecipe):
            (i,) = which
            out += block_fields(part, blocks[i], start, {a: faces[i][a] for a in part.axes})
        else:
            out += vector_block(part, start, [blocks[j] for j in which], [faces[j] for j in which])
    return tuple(out)


@dataclass
class DerivedUnitTasks:
    """One derived group as :class:`DerivedProgram` computes it.

    Attributes
    ----------
    values
        Its inputs on the outputs' chunk grid (dask arrays, one chunking).
    recipe
        How each block is computed.
    names
        Its outputs, in the recipe's order.
    chunks, shape, grid
        The blocks' shape, the arrays' shape, the block grid.
    shards
        Per output, blocks per shard (``None``: one chunk per block).
    """

    values: tuple[Any, ...]
    recipe: UnitRecipe
    names: tuple[str, ...]
    chunks: tuple[int, ...]
    shape: tuple[int, ...]
    grid: tuple[int, ...]
    shards: Mapping[str, tuple[int, ...] | None]


def compute_derived(
    recipe: UnitRecipe,
    start: Index,
    layout: tuple[tuple[int, ...], ...],
    writes: Sequence[tuple[int, str, tuple[slice, ...]]],
    store: Store | None,
    token: str | None,
    *args: Any,
) -> Any:
    """One block's derived fields from its blocks and the neighbours' faces (the flat
    arguments of :func:`daskgrad.core.stencil.call_kernel`); written (the bytes written are
    returned), or returned (for shards) without ``store``."""
    fields = call_kernel(unit_kernel, recipe, start, layout, *args)
    if store is None:
        return list(fields)
    return sum(write_block(fields[i], store, name, reg, token) for i, name, reg in writes)


def _positions(tile: Tile) -> list[Index]:
    return sorted({tuple(c) for blocks in tile.blocks.values() for c in blocks})


def _held(known: Collection[Key], name: str) -> set[Index]:
    return {tuple(k[1:]) for k in known if isinstance(k, tuple) and k and k[0] == name}


class DerivedProgram:
    """Tile tasks of derived groups built from their recipes (see the module docstring).

    Parameters
    ----------
    units
        Per group (:attr:`daskgrad.batch.schedule.Group.source`), its
        :class:`DerivedUnitTasks`.
    store, token
        Where, and with which token, blocks are written.
    """

    def __init__(self, units: Mapping[str, DerivedUnitTasks], store: Store, token: str | None):
        self.units = dict(units)
        self.store = store
        self.token = token
        name = uuid.uuid4().hex[:12]
        self._faces = f"dg-vfaces-{name}"
        self._kernel = f"dg-vwrite-{name}"
        self._recipe = f"dg-vrecipe-{name}"
        self._shard = f"dg-vshard-{name}"

    def face_specs(self) -> list:
        """No face store: a derived group's bordering blocks are read again."""
        return []

    def finished(self, tile: Tile) -> None:
        pass

    def tasks(
        self, tile: Tile, known: Collection[Key] = (), following: Tile | None = None
    ) -> TileTasks:
        unit = self.units[str(tile.group)]
        recipe = unit.recipe
        layout = recipe.face_axes
        periodic = set(recipe.periodic)
        own = _positions(tile)
        graph: dict = {}
        recipe_key = (self._recipe, str(tile.group))
        graph[recipe_key] = DataNode(recipe_key, recipe)
        reads: list[set[Index]] = [set(own) for _ in unit.values]
        kernels: dict[Index, list] = {}
        for c in own:
            args: list = []
            for i, axes in enumerate(layout):
                for axis in axes:
                    for step in (-1, 1):
                        n = neighbour(c, axis, step, unit.grid, axis in periodic)
                        if n is None:
                            args.append(None)
                            continue
                        reads[i].add(n)
                        args.append(ref((self._faces, str(tile.group), i, *n)))
            kernels[c] = args
        nbytes = 0
        for i, (x, positions) in enumerate(zip(unit.values, reads)):
            keys = [(x.name, *b) for b in sorted(positions)]
            found, _ = tasks_for(x.dask, [k for k in keys if k not in known], stop=set(known))
            graph.update(found)
            fresh = positions - _held(known, x.name)
            nbytes += x.dtype.itemsize * sum(
                math.prod(r.stop - r.start for r in region(b, unit.chunks, unit.shape))
                for b in fresh
            )
            if layout[i]:
                for b in positions:
                    key = (self._faces, str(tile.group), i, *b)
                    if key not in known:
                        graph[key] = make_task(
                            key, take_slabs, ref((x.name, *b)), layout[i], recipe.depth
                        )
        waits, sizes = self._kernels(unit, tile, kernels, graph, recipe_key)
        handover: list = []
        if following is not None:
            later = set(_positions(following))
            for i, (x, positions) in enumerate(zip(unit.values, reads)):
                for b in sorted(positions & later):
                    handover.append((x.name, *b))
                    if layout[i]:
                        handover.append((self._faces, str(tile.group), i, *b))
        return TileTasks(graph, waits, sizes, handover, read_bytes=nbytes)

    def _kernels(
        self, unit: DerivedUnitTasks, tile: Tile, kernels: dict, graph: dict, recipe_key: Any
    ) -> tuple[list, dict]:
        names = list(unit.names)
        sharded = any(unit.shards.get(n) for n in names)
        by_position: dict[Index, list] = {}
        for name, positions in tile.blocks.items():
            for c in positions:
                by_position.setdefault(tuple(c), []).append(name)
        waits: list = []
        sizes: dict = {}
        for c, args in kernels.items():
            key = (self._kernel, str(tile.group), *c)
            start = tuple(i * ch for i, ch in zip(c, unit.chunks))
            reg = region(c, unit.chunks, unit.shape)
            writes = [(names.index(n), n, reg) for n in by_position.get(c, [])]
            graph[key] = make_task(
                key,
                compute_derived,
                ref(recipe_key),
                start,
                unit.recipe.face_axes,
                writes,
                None if sharded else self.store,
                self.token,
                *(ref((x.name, *c)) for x in unit.values),
                *args,
            )
            if not sharded:
                waits.append(key)
                sizes[key] = len(writes)
        if sharded:
            for name, positions in tile.blocks.items():
                per = unit.shards.get(str(name)) or tuple(1 for _ in unit.grid)
                for shard in sorted({shard_of(tuple(c), per) for c in positions}):
                    members = shard_members(str(name), shard, per, unit.grid, positions)
                    first, last = members[0], members[-1]
                    reg = tuple(
                        slice(a * ch, min(n, (b + 1) * ch))
                        for a, b, ch, n in zip(first, last, unit.chunks, unit.shape)
                    )
                    layout = tuple(b - a + 1 for a, b in zip(first, last))
                    key = (self._shard, str(name), *shard)
                    graph[key] = make_task(
                        key,
                        write_shard_of,
                        self.store,
                        str(name),
                        reg,
                        self.token,
                        layout,
                        names.index(name),
                        *(ref((self._kernel, str(tile.group), *m)) for m in members),
                    )
                    sizes[key] = len(members)
                    waits.append(key)
        return waits, sizes
