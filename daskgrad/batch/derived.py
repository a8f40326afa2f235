"""The derived fields of a write (``gradient.derived``): their outputs, recipes and tile groups.

A batch run and ``ds.grad.to_zarr(..., derived=...)`` write the derived fields of a
:class:`~daskgrad.vector_plan.DerivedPlan` beside the gradients, in the same bounded tiles, and
read each input block once for all of them. So the outputs are grouped by grid: one
:class:`DerivedUnit` per set of dims holds every derived field whose inputs live on it
(divergence and vorticity of ``(u, v)``, the advection and the Laplacian of each scalar) **and
the gradients of those inputs**; a unit is one :class:`~daskgrad.batch.schedule.Group` (with
several ``inputs``), tiled together, each tile reading each input block once.

* Where every part of a unit runs from a block and its neighbours' faces (the gradients'
  :func:`daskgrad.blocks.block_recipe` and the operators'
  :func:`daskgrad.operators.fused_recipe`, on a regular chunk grid whose blocks are long
  enough), the unit's :class:`~daskgrad.batch.derived_tasks.UnitRecipe` computes all its
  outputs in one kernel task per block (:mod:`daskgrad.batch.derived_tasks`) and its outputs
  here are templates, never computed.
* Otherwise (a Laplacian, a curvilinear grid, ...) the outputs are the accessor's lazy graphs
  of the whole array, one graph for the unit (:class:`~daskgrad.batch.graph_tasks.GraphProgram`
  walks each tile's tasks from it, so a tile still reads each block once), and the recipe is
  the reason.

Examples
--------
>>> import dask.array as da, numpy as np, xarray as xr
>>> from daskgrad.vector_request import plan_with_derived
>>> from daskgrad.core.options import GradientOptions
>>> ds = xr.Dataset({k: (("y", "x"), da.zeros((4, 6), chunks=(2, 3))) for k in ("u", "v")})
>>> g, d = plan_with_derived(ds, GradientOptions(), ["divergence"], {"u": "u", "v": "v"}, True)
>>> out = derived_outputs(ds, d, g)
>>> [(u.label, u.names) for u in out.units]
[('u+v', ('du_dy', 'du_dx', 'dv_dy', 'dv_dx', 'divergence'))]
>>> type(out.recipes["u+v"]).__name__, out.taken
('UnitRecipe', ['u', 'v'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from daskgrad.accessor import build_gradients
from daskgrad.batch.budget import BlockCost
from daskgrad.batch.derived_tasks import UnitRecipe, unit_recipe
from daskgrad.batch.grid import chunk_grid
from daskgrad.batch.schedule import Group, _common_shard
from daskgrad.blocks import block_recipe
from daskgrad.core.chunking import as_regular
from daskgrad.core.mask import mask_array
from daskgrad.operators import build_derived, fused_recipe, operator_inputs
from daskgrad.plan import GradientPlan
from daskgrad.vector_blocks import VectorRecipe, chunk_problem
from daskgrad.vector_plan import DerivedPlan

__all__ = ["DerivedOutputs", "DerivedUnit", "derived_groups", "derived_outputs", "stand_in"]


@dataclass(frozen=True)
class DerivedUnit:
    """The outputs on one grid: gradients of its inputs and derived fields, tiled together.

    Attributes
    ----------
    label
        The group's name (its input variables joined by ``+``): the key of its tiles.
    names
        Its outputs (the gradients first, then the derived fields).
    inputs
        The input variables it reads.
    axes, periodic
        The axes along which its blocks need their neighbours, and those that wrap.
    block_bytes
        Bytes of one block position of every array its kernel takes.
    """

    label: str
    names: tuple[str, ...]
    inputs: tuple[str, ...]
    axes: tuple[int, ...]
    periodic: tuple[int, ...]
    block_bytes: int


@dataclass
class DerivedOutputs:
    """What :func:`derived_outputs` gives a write: per output its array (a template where a
    recipe computes it, else the lazy whole-array graph) and chunk shape; per unit (by label)
    its recipe or the reason for the graph, and the arrays its kernel takes; and the gradient
    variables whose outputs moved into a unit (``taken``: they get no group of their own)."""

    outputs: dict[str, xr.DataArray] = field(default_factory=dict)
    chunk_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    recipes: dict[str, UnitRecipe | str] = field(default_factory=dict)
    values: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    units: list[DerivedUnit] = field(default_factory=list)
    taken: list[Hashable] = field(default_factory=list)


def stand_in(dplan: DerivedPlan, name: str) -> DerivedPlan:
    """``dplan`` with the DataArray itself (key ``None``) as the variable ``name`` of a Dataset
    (``ds.grad.to_zarr`` of a DataArray writes from ``obj.to_dataset(name=...)``)."""
    if None not in dplan.variables:
        return dplan
    variables = {
        (name if k is None else k): (dataclasses.replace(vp, key=name) if k is None else vp)
        for k, vp in dplan.variables.items()
    }
    fields = tuple(
        dataclasses.replace(f, var=name) if f.var is None and f.operator == "laplacian" else f
        for f in dplan.fields
    )
    return dataclasses.replace(dplan, variables=variables, fields=fields)


def _parts(dplan: DerivedPlan) -> list[tuple[list[Any], tuple[Any, ...]]]:
    """The derived parts: (fields, input keys) — divergence and vorticity share one."""
    out: list[tuple[list[Any], tuple[Any, ...]]] = []
    pair = [f for f in dplan.fields if f.operator in ("divergence", "vorticity")]
    if pair:
        out.append((pair, (dplan.u, dplan.v)))
    for f in dplan.fields:
        if f.operator == "advection":
            out.append(([f], (f.var, dplan.u, dplan.v)))
        elif f.operator == "laplacian":
            out.append(([f], (f.var,)))
    return out


def _template(x: xr.DataArray, chunk_shape: tuple[int, ...], dtype: Any, f: Any) -> xr.DataArray:
    data = da.empty(x.shape, chunks=chunk_shape, dtype=dtype)
    return xr.DataArray(data, dims=x.dims, coords=x.coords, attrs=dict(f.attrs), name=f.name)


def _slot(arrays: list[Any], array: Any) -> int:
    """The index of ``array`` among the kernel's inputs (added once: by graph name)."""
    for i, a in enumerate(arrays):
        if a.name == array.name:
            return i
    arrays.append(array)
    return len(arrays) - 1


def derived_outputs(
    ds: xr.Dataset, dplan: DerivedPlan, gplan: GradientPlan | None = None
) -> DerivedOutputs:
    """The units of ``dplan`` (with the gradients of their inputs from ``gplan``), their
    outputs, recipes and kernel inputs (see the module)."""
    out = DerivedOutputs()
    derived_values = operator_inputs(ds, dplan)
    gradient_vps = {vp.key: vp for vp in (gplan.variables if gplan is not None else ())}
    by_dims: dict[tuple, list] = {}
    for fields, keys in _parts(dplan):
        by_dims.setdefault(ds[keys[0]].dims, []).append((fields, keys))
    for dims, parts in by_dims.items():
        names = list(dict.fromkeys(k for _, ks in parts for k in ks))
        grads = [gradient_vps[k] for k in names if k in gradient_vps and ds[k].dims == dims]
        _unit(out, ds, dplan, gplan, derived_values, dims, parts, names, grads)
    return out


def _unit(
    out: DerivedOutputs,
    ds: xr.Dataset,
    dplan: DerivedPlan,
    gplan: GradientPlan | None,
    derived_values: Mapping[Any, Any],
    dims: tuple,
    parts: list,
    keys: list,
    grads: list,
) -> None:
    """Add one unit (the outputs on the grid ``dims``) to ``out``."""
    ref = ds[keys[0]]
    first, chunk_shape = as_regular(derived_values[keys[0]])
    chunks = first.chunks
    arrays: list[Any] = []
    names: list[str] = []
    pieces: list[tuple[Any, tuple[int, ...]]] = []
    dtypes: dict[str, Any] = {}
    reason: str | None = None
    for vp in grads:  # the gradients' own values (masked, in their own dtype)
        data = ds[vp.key].data
        data = (data if isinstance(data, da.Array) else da.from_array(data)).rechunk(chunks)
        if vp.mask is not None:
            data = mask_array(data, vp.mask.broadcastable())
        recipe: Any = block_recipe(ds, gplan, vp, chunk_shape)
        if isinstance(recipe, str):
            reason = reason or f"{vp.key}: {recipe}"
        else:
            dtypes.update({str(f.name): recipe.out_dtype for f in vp.fields})
        pieces.append((recipe, (_slot(arrays, data),)))
        names += [str(f.name) for f in vp.fields]
    for fields, ks in parts:
        ops = [f.operator for f in fields]
        if ops == ["laplacian"]:
            recipe = "a Laplacian (a derivative of derivatives) comes from the whole-array graph"
        else:
            recipe = fused_recipe(ds, dplan, ops, list(ks))
            if isinstance(recipe, VectorRecipe):
                recipe = chunk_problem(recipe, chunk_shape) or recipe
        if isinstance(recipe, str):
            reason = reason or recipe
        pieces.append((recipe, tuple(_slot(arrays, derived_values[k].rechunk(chunks)) for k in ks)))
        names += [f.name for f in fields]
    label = "+".join(map(str, keys))
    axes: tuple[int, ...]
    periodic: tuple[int, ...]
    if reason is None:
        unit = unit_recipe(tuple(pieces), len(arrays))
        out.recipes[label] = unit
        axes, periodic = unit.axes, unit.periodic
        for vp in grads:
            for f in vp.fields:
                out.outputs[str(f.name)] = _template(ref, chunk_shape, dtypes[str(f.name)], f)
        for fields, _ in parts:
            for f in fields:
                out.outputs[f.name] = _template(ref, chunk_shape, dplan.dtype, f)
    else:
        out.recipes[label] = reason
        axes, periodic = _graph_axes(grads, dplan, keys)
        source = ds.assign({k: ds[k].chunk(dict(zip(dims, chunk_shape))) for k in keys})
        built: dict[Any, Any] = {}
        if grads and gplan is not None:
            sub = dataclasses.replace(gplan, variables=tuple(grads))
            built.update(dict(build_gradients(source, sub).data_vars))
        mine = tuple(f for fields, _ in parts for f in fields)
        built.update(build_derived(source, dataclasses.replace(dplan, fields=mine)))
        for name in names:
            arr, _ = as_regular(built[name].data)
            out.outputs[name] = built[name].copy(data=arr)
    for name in names:
        out.chunk_shapes[name] = chunk_shape
    out.values[label] = tuple(arrays)
    out.taken += [vp.key for vp in grads]
    block_bytes = int(np.prod(chunk_shape)) * sum(a.dtype.itemsize for a in arrays)
    out.units.append(
        DerivedUnit(label, tuple(names), tuple(map(str, keys)), axes, periodic, block_bytes)
    )


def _graph_axes(
    grads: list, dplan: DerivedPlan, keys: list
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    axes: list[int] = []
    periodic: list[int] = []
    for vp in [*grads, *(dplan.variables[k] for k in keys)]:
        axes += [a for a in vp.halo_axes if a not in axes]
        periodic += [a for a in vp.periodic_axes if a not in periodic]
    return tuple(axes), tuple(periodic)


def derived_groups(
    result: xr.Dataset,
    units: list[DerivedUnit],
    chunk_shapes: Mapping[str, tuple[int, ...]],
    shards: Mapping[str, tuple[int, ...] | None] | None = None,
) -> list[Group]:
    """The :class:`~daskgrad.batch.schedule.Group` of each unit."""
    groups = []
    for unit in units:
        first = result[unit.names[0]]
        chunk_shape = chunk_shapes[unit.names[0]]
        elements = int(np.prod(chunk_shape))
        cost = BlockCost(
            in_bytes=unit.block_bytes,
            out_bytes=elements * max(result[o].dtype.itemsize for o in unit.names),
            outputs=len(unit.names),
        )
        groups.append(
            Group(
                source=unit.label,
                outputs=unit.names,
                grid=chunk_grid(first.shape, chunk_shape),
                axes=unit.axes,
                periodic=unit.periodic,
                cost=cost,
                block_text=", ".join(
                    f"{d}: {c}" for d, c in zip(map(str, first.dims), chunk_shape)
                ),
                shard=_common_shard([(shards or {}).get(o) for o in unit.names]),
                inputs=unit.inputs,
                faces_kept=False,
            )
        )
    return groups
