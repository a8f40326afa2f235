"""Step 1 of a batch run: the plan, made before anything is written.

:func:`plan` opens the input read-only, plans the gradients with the accessor's own planner (a
mistake there is a config error naming its key, exit status 2), fixes the output chunks (one
dask block per zarr chunk) and layouts, the run's fingerprint and the input's digest, and
checks that a worker's memory can hold a tile.

Its cost does not grow with the number of blocks: each variable gets a
:class:`~daskgrad.blocks.BlockRecipe` from which every tile's tasks are built later
(:mod:`daskgrad.batch.tile_tasks`), and its outputs in :attr:`Plan.result` are templates (lazy,
never computed) that give the store its metadata. Only a variable whose blocks cannot be
computed from their neighbours' faces alone (a curvilinear grid, an N-D coordinate, ...) gets
the accessor's lazy graph of the whole array, as :attr:`Plan.recipes` records with the reason.

Examples
--------
>>> from daskgrad.batch.config import load_config_text
>>> plan(load_config_text("input: {path: /nonexistent.zarr}\\noutput: {path: /tmp/o.zarr}"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
daskgrad.batch.config.errors.ConfigError: <config>: input.path: cannot open '/nonexistent.zarr': ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

import daskgrad
from daskgrad.accessor import build_gradients
from daskgrad.batch import store as zstore
from daskgrad.batch.budget import configured_worker, size_text
from daskgrad.batch.config import OPTION_KEYS, ConfigError, RunConfig
from daskgrad.batch.encoding import Layout, resolve_all
from daskgrad.batch.grid import BlockBitmap, chunk_grid
from daskgrad.batch.inputs import open_input
from daskgrad.batch.provenance import input_digest
from daskgrad.batch.remote import RemoteStore, storage_problem, target
from daskgrad.batch.schedule import Group, check_memory, group_of
from daskgrad.blocks import BlockRecipe, block_recipe
from daskgrad.core.chunking import as_regular
from daskgrad.core.mask import mask_array
from daskgrad.core.options import OptionError
from daskgrad.plan import GradientPlan, check_storable, plan_gradients
from daskgrad.vector_plan import DerivedPlan
from daskgrad.vector_request import plan_with_derived

__all__ = ["Plan", "plan", "plan_lines", "small_blocks_note"]


@dataclass
class Plan:
    """What a run will write: the lazy result and its zarr layout."""

    config: RunConfig
    source: str
    input: xr.Dataset
    result: xr.Dataset
    chunk_shapes: dict[str, tuple[int, ...]]
    fingerprint: str
    bytes_in: int
    groups: list[Group] = field(default_factory=list)  # one per input variable
    #: Digest of the input files (:mod:`daskgrad.batch.provenance`); None if it cannot be listed.
    input_digest: dict[str, Any] | None = None
    #: This run's id once it holds the output's lease (:mod:`daskgrad.batch.lease`); block writes
    #: carry it in their token and stop as soon as the lease names another run.
    run_id: str | None = None
    #: The ``store_id`` of the output this run created or resumed (a replaced store has another).
    store_id: str | None = None
    #: Damaged chunks of a complete store found by ``--verify`` and written again.
    repaired: int = 0
    #: How each output variable is stored (``output.encoding``, :mod:`daskgrad.batch.encoding`).
    layouts: dict[str, Layout] = field(default_factory=dict)
    #: Per input variable, how its blocks are computed, or why from the whole-array graph.
    recipes: dict[str, BlockRecipe | str] = field(default_factory=dict)
    #: Per input variable, its values on the outputs' chunk grid (lazy dask arrays).
    values: dict[str, Any] = field(default_factory=dict)
    #: The accessor's plan of the gradients (variables left out, masks, grids, spacings).
    gradient: GradientPlan | None = None
    #: The plan of the derived fields (``gradient.derived``), if any.
    derived: DerivedPlan | None = None

    @property
    def store(self) -> str | RemoteStore:
        """The output store as :mod:`daskgrad.batch.store` takes it (a URL with its options)."""
        return target(self.config.output.path, self.config.output.storage_options)

    @property
    def token(self) -> str:
        """The token of every block write: layout (fingerprint) and writer (run id)."""
        return zstore.write_token(self.fingerprint, self.run_id)

    @property
    def variables(self) -> list[str]:
        return [str(v) for v in self.result.data_vars]

    def grid(self, variable: str) -> tuple[int, ...]:
        """Blocks along each dim of an output variable."""
        return chunk_grid(self.result[variable].shape, self.chunk_shapes[variable])

    def expected(self) -> dict[str, BlockBitmap]:
        """Every block of every output, as bitmaps (one bit per block)."""
        return {v: BlockBitmap(self.grid(v), full=True) for v in self.variables}

    def block_elements(self, variable: str) -> int:
        """Elements in one (full) block of an output variable: one zarr chunk."""
        return int(np.prod(self.chunk_shapes[variable]))

    def block_count(self, variable: str) -> int:
        """Blocks (zarr chunks) of an output variable."""
        return int(np.prod(self.grid(variable)))

    def whole_graph(self) -> list[str]:
        """The input variables whose outputs come from the whole-array graph, with why."""
        return [f"{v}: {r}" for v, r in self.recipes.items() if isinstance(r, str)]


def _refuse(source: str, key: str, reason: str) -> ConfigError:
    return ConfigError(source, key, None, reason)


def _gradient_plan(cfg: RunConfig, ds: xr.Dataset, source: str) -> GradientPlan:
    """Plan the gradients; an option the data refuses names its config key."""
    try:
        gplan = plan_gradients(ds, cfg.gradient_options())
        check_storable(gplan)
        return gplan
    except OptionError as err:
        raise _refuse(source, OPTION_KEYS[err.argument], str(err)) from err


def _plans(
    cfg: RunConfig, ds: xr.Dataset, source: str
) -> tuple[GradientPlan | None, DerivedPlan | None]:
    """The gradients' plan (``None`` for ``gradient.gradients: false``) and the derived
    fields' (``None`` without ``gradient.derived``)."""
    derived, vector, gradients = cfg.derived_request()
    if derived is None:
        return _gradient_plan(cfg, ds, source), None
    try:
        gplan, dplan = plan_with_derived(ds, cfg.gradient_options(), derived, vector, gradients)
        if gplan is not None:
            check_storable(gplan)
        return gplan, dplan
    except OptionError as err:
        raise _refuse(source, OPTION_KEYS[err.argument], str(err)) from err


def _template(x: xr.DataArray, chunk_shape: tuple[int, ...], dtype: Any) -> da.Array:
    """A lazy stand-in for an output: its shape, chunks and dtype; never computed."""
    return da.empty(x.shape, chunks=chunk_shape, dtype=dtype)


def plan_outputs(
    ds: xr.Dataset, gplan: GradientPlan
) -> tuple[xr.Dataset, dict, dict[str, BlockRecipe | str], dict[str, Any]]:
    """The outputs of ``gplan`` as a Dataset (templates, or the whole-array graph where a
    variable needs it), their chunk shapes, and per input variable its recipe and its values on
    the outputs' chunk grid.

    Examples
    --------
    >>> import dask.array as da, numpy as np, xarray as xr
    >>> ds = xr.Dataset({"T": (("y", "x"), da.zeros((4, 6), chunks=(2, 3)))})
    >>> result, chunks, recipes, _ = plan_outputs(ds, plan_gradients(ds))
    >>> list(result.data_vars), chunks["dT_dx"], type(recipes["T"]).__name__
    (['dT_dy', 'dT_dx'], (2, 3), 'BlockRecipe')
    """
    out: dict[str, xr.DataArray] = {}
    chunk_shapes: dict[str, tuple[int, ...]] = {}
    recipes: dict[str, BlockRecipe | str] = {}
    values: dict[str, Any] = {}
    for vp in gplan.variables:
        x = ds[vp.key]
        data = x.data if isinstance(x.data, da.Array) else da.from_array(x.data)
        data, chunk_shape = as_regular(data)
        if vp.mask is not None:  # land becomes NaN block by block, as build_gradients does
            data = mask_array(data, vp.mask.broadcastable())
        recipe = block_recipe(ds, gplan, vp, chunk_shape)
        recipes[str(vp.key)] = recipe
        values[str(vp.key)] = data
        if isinstance(recipe, BlockRecipe):
            for f in vp.fields:
                out[str(f.name)] = xr.DataArray(
                    _template(x, chunk_shape, recipe.out_dtype),
                    dims=x.dims,
                    coords=x.coords,
                    attrs=dict(f.attrs),
                    name=f.name,
                )
                chunk_shapes[str(f.name)] = chunk_shape
            continue
        sub = dataclasses.replace(gplan, variables=(vp,), fields=vp.fields)
        built = build_gradients(ds, sub, numpy_chunks=True)
        for f in vp.fields:
            arr, shape = as_regular(built[f.name].data)
            out[str(f.name)] = built[f.name].copy(data=arr)
            chunk_shapes[str(f.name)] = shape
    ordered = {str(f.name): out[str(f.name)] for f in gplan.fields}
    return (
        xr.Dataset(ordered, coords=ds.coords, attrs=dict(ds.attrs)),
        chunk_shapes,
        recipes,
        values,
    )


def _outputs(ds: xr.Dataset, gplan: GradientPlan | None, dplan: DerivedPlan | None) -> tuple:
    """:func:`plan_outputs` of the gradients, with the derived fields' units
    (:mod:`daskgrad.batch.derived`) where they are asked for: ``(result, chunk_shapes,
    recipes, values, derived outputs or None, the variable plans that keep a group of their
    own)``. The gradients of a unit's inputs move into the unit (one read of each block)."""
    extra = None
    own = list(gplan.variables) if gplan is not None else []
    if dplan is not None:
        from daskgrad.batch.derived import derived_outputs

        extra = derived_outputs(ds, dplan, gplan)
        own = [vp for vp in own if vp.key not in extra.taken]
    recipes: dict[str, Any] = {}  # the gradients' BlockRecipes and the units' UnitRecipes
    chunk_shapes: dict[str, tuple[int, ...]] = {}
    values: dict[str, Any] = {}
    result = xr.Dataset(coords=ds.coords)
    if own and gplan is not None:
        kept = tuple(f for vp in own for f in vp.fields)
        sub = dataclasses.replace(gplan, variables=tuple(own), fields=kept)
        result, chunk_shapes, grecipes, values = plan_outputs(ds, sub)
        recipes.update(grecipes)
    if extra is not None:
        merged: dict[str, Any] = {
            **{str(k): v for k, v in result.data_vars.items()},
            **extra.outputs,
        }
        order = gplan.names if gplan is not None else []
        names = [str(n) for n in order] + [n for n in merged if n not in map(str, order)]
        result = xr.Dataset({n: merged[n] for n in names}, coords=ds.coords, attrs=dict(ds.attrs))
        chunk_shapes.update(extra.chunk_shapes)
        recipes.update(extra.recipes)
        values.update(extra.values)
    return result, chunk_shapes, recipes, values, extra, own


def small_blocks_note(p: Plan, *, min_bytes: int = 1 << 20, min_blocks: int = 10_000) -> str | None:
    """A note for blocks so small and so many that dask's cost per task would dominate.

    Each block costs about three tasks (a read, its faces, its kernel and writes) of about a
    millisecond of scheduling each, whatever its size; below ``min_bytes`` per block and above
    ``min_blocks`` blocks that is most of the run.

    Examples
    --------
    The 48 blocks of 5.6 KiB of a small test store, with ten blocks counting as many:

    >>> small_blocks_note(plan(cfg), min_blocks=10)  # doctest: +SKIP
    "note: 48 output blocks of at most 5.6 KiB each; dask spends about a millisecond ..."
    """
    blocks = sum(p.block_count(v) for v in p.variables)
    largest = max(p.block_elements(v) * p.result[v].dtype.itemsize for v in p.variables)
    if blocks < min_blocks or largest >= min_bytes:
        return None
    return (
        f"note: {blocks} output blocks of at most {size_text(largest)} each; dask spends about a "
        "millisecond per task on any block, so blocks this small make the run slow. Set "
        "input.chunks to a few times the store's chunks per dim (blocks of 32-128 MiB)"
    )


def plan_lines(p: Plan) -> list[str]:
    """The lines a run prints about its variables: those left out and why, and the plan's notes.

    Examples
    --------
    >>> import tempfile, numpy as np, xarray as xr
    >>> from daskgrad.batch.config import load_config_text
    >>> d = tempfile.mkdtemp()
    >>> xr.Dataset({"f": ("x", np.arange(4.0)), "x_bnds": (("x", "b"), np.zeros((4, 2)))},
    ...            coords={"x": ("x", np.arange(4.0), {"bounds": "x_bnds"})}).to_netcdf(f"{d}/in.nc")
    >>> plan_lines(plan(load_config_text(f"input: {{path: {d}/in.nc}}\\noutput: {{path: {d}/o.zarr}}")))
    ["left out: 'x_bnds' (the cell bounds of 'x'); name it in input.variables to differentiate it"]
    """
    from daskgrad.roles import left_out_line

    lines: list[str] = []
    notes: list[str] = []
    if p.gradient is not None:
        line = left_out_line(p.gradient.left_out, "input.variables")
        lines += [line] if line else []
        notes += [f"input.{n}" if n.startswith("variables: ") else n for n in p.gradient.notes]
    if p.derived is not None:
        notes += [n for n in p.derived.gradient.notes if n not in notes]
        notes += [f"derived fields leave out {k!r}: {why}" for k, why in p.derived.left_out.items()]
    return lines + [f"note: {n}" for n in notes]


def _coordinate_checksums(ds: xr.Dataset) -> dict[str, str]:
    sums = {}
    for name, coord in ds.coords.items():
        values = np.asarray(coord.values)
        # Objects (cftime dates) by their text: their bytes are pointers, new in every process.
        raw = repr(values.tolist()).encode() if values.dtype.kind == "O" else values.tobytes()
        sums[str(name)] = hashlib.sha256(raw + str(values.dtype).encode()).hexdigest()[:16]
    return sums


def plan(cfg: RunConfig, source: str = "<config>") -> Plan:
    """Open the input and build the lazy result; raise ConfigError for a mismatch with the data."""
    mask = cfg.gradient.mask
    try:
        ds = open_input(cfg.input, mask=None if mask == "auto" else mask)
    except OptionError as err:  # the grid file (input.grid)
        raise _refuse(source, OPTION_KEYS[err.argument], str(err)) from err
    except FileNotFoundError as err:
        raise _refuse(source, "input.path", f"cannot open {cfg.input.path!r}: {err}") from err
    except ImportError as err:  # an fsspec scheme whose package is missing (s3fs, aiohttp ...)
        raise _refuse(
            source, "input.path", f"cannot open {cfg.input.path!r}: a package is missing: {err}"
        ) from err
    except (OSError, ValueError, KeyError) as err:
        raise _refuse(
            source,
            "input.path",
            f"cannot open {cfg.input.path!r} as {cfg.input.resolved_engine}: {err}",
        ) from err
    except Exception as err:  # object storage: credentials, endpoint, access (one line)
        problem = storage_problem(err)
        if problem is None:
            raise
        raise _refuse(source, "input.path", f"cannot open {cfg.input.path!r}: {problem}") from err
    gplan, dplan = _plans(cfg, ds, source)
    variables = [str(vp.key) for vp in gplan.variables] if gplan is not None else []
    result, chunk_shapes, recipes, values, extra, own = _outputs(ds, gplan, dplan)
    if extra is not None:
        variables += [v for u in extra.units for v in u.inputs if v not in variables]
    try:
        layouts = resolve_all(cfg.output.encoding, result, chunk_shapes)
    except OptionError as err:  # err.argument is "encoding.<key>"
        raise _refuse(source, f"output.{err.argument}", str(err)) from err
    identity = {
        "daskgrad": daskgrad.__version__,
        "input": cfg.input.path,
        "variables": {
            v: [
                list(ds[v].dims),
                list(ds[v].shape),
                str(ds[v].dtype),
                list(map(list, ds[v].chunks or ())),
            ]
            for v in variables
        },
        "coords": _coordinate_checksums(ds),
        "gradient": cfg.gradient.model_dump(mode="json"),
        "name": cfg.output.name,
        "chunks": {k: list(v) for k, v in chunk_shapes.items()},
    }
    if not cfg.output.encoding.is_default():  # another layout: never resumed as this one
        identity["encoding"] = cfg.output.encoding.model_dump(mode="json")
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    bytes_in = int(sum(ds[v].nbytes for v in variables))
    digest = input_digest(
        cfg.input.path,
        cfg.input.resolved_engine,
        [*variables, *map(str, ds.coords)],
        storage_options=cfg.input.storage_options,
    )
    shards = {v: lay.shard_blocks for v, lay in layouts.items()}
    groups = [group_of(ds, result, vp, chunk_shapes, shards) for vp in own]
    if extra is not None:
        from daskgrad.batch.derived import derived_groups

        groups += derived_groups(result, extra.units, chunk_shapes, shards)
    p = Plan(
        cfg,
        source,
        ds,
        result,
        chunk_shapes,
        fingerprint,
        bytes_in,
        groups=groups,
        input_digest=digest,
        layouts=layouts,
        recipes=recipes,
        values=values,
        gradient=gplan,
        derived=dplan,
    )
    check_memory(p, configured_worker(cfg.cluster))
    return p
