"""``ds.grad.to_zarr``: the gradients streamed to zarr tile by tile, in bounded memory.

The library's own out-of-core path uses the batch runner's machinery without its store
bookkeeping (no resume, no complete mark): the metadata and coordinates are written first, then
the blocks tile by tile (:mod:`daskgrad.batch.schedule`, :mod:`daskgrad.batch.tile_tasks`,
:class:`daskgrad.batch.writer.TileWriter`), then the metadata is consolidated.

The memory budget comes from where the graph runs:

* a ``distributed.Client`` set as dask's scheduler: its workers' ``memory_limit``;
* otherwise dask's threaded scheduler in this process, with the budget
  ``dask.config.get("daskgrad.memory-limit")``: a size (``"2GiB"`` or bytes) or ``"auto"``
  (the default: half the machine's memory).

``dask.config.get("daskgrad.stall-timeout")`` (seconds, default 600) ends a cluster write that
writes nothing for that long.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

import dask
import xarray as xr
import zarr

from daskgrad.batch import faces as face_store
from daskgrad.batch.budget import THREADS_FRACTION, WorkerMemory, measured_worker
from daskgrad.batch.encoding import Encoding, resolve_all, write_metadata
from daskgrad.batch.grid import BlockBitmap, chunk_grid
from daskgrad.batch.schedule import group_of, iter_tiles, tile_plans
from daskgrad.batch.tile_tasks import make_programs
from daskgrad.batch.writer import TileWriter, worker_infos

__all__ = ["active_client", "library_worker", "write_gradients"]


def active_client() -> Any:
    """The ``distributed.Client`` that dask's default scheduler is now, else None."""
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        return None
    scheduler = dask.base.get_scheduler()
    return client if getattr(scheduler, "__self__", None) is client else None


def library_worker(client: Any) -> tuple[WorkerMemory, int]:
    """One worker's memory and the number of workers, for a write from the library.

    Examples
    --------
    >>> with dask.config.set({"daskgrad.memory-limit": "1GiB", "num_workers": 2}):
    ...     worker, count = library_worker(None)
    >>> worker.limit, worker.threads, count
    (1073741824, 2, 1)
    """
    from dask.utils import parse_bytes

    from daskgrad.batch.budget import SLACK, _machine_memory, resident_here

    if client is not None:
        infos = worker_infos(client)
        worker = measured_worker(infos, _warm(client))
        if worker is not None:
            return worker, len(infos)
    limit = dask.config.get("daskgrad.memory-limit", "auto")
    limit = _machine_memory() // 2 if limit in (None, "auto") else int(parse_bytes(limit))
    threads = int(dask.config.get("num_workers", None) or os.cpu_count() or 1)
    return WorkerMemory(limit, threads, resident_here() + SLACK, THREADS_FRACTION), 1


def _warm(client: Any) -> dict[str, int] | None:
    from daskgrad.batch.budget import warmed_resident

    try:
        return dict(client.run(warmed_resident))
    except Exception:  # a worker that cannot run it: fall back on the scheduler's figures
        return None


def write_gradients(
    obj: Any, plan: Any, store: Any, mode: str, encoding: Encoding, derived: Any = None
) -> None:
    """Write the gradients of ``obj`` by ``plan`` (``None``: none) and the derived fields of
    ``derived`` (a :class:`~daskgrad.vector_plan.DerivedPlan`) to ``store`` tile by tile, stored
    as ``encoding`` says (the batch config's ``output.encoding``).

    As in a batch run, each tile's tasks are built from the plan (no graph of the whole array
    is made, :mod:`daskgrad.batch.tile_tasks`, :mod:`daskgrad.batch.derived_tasks`) except
    for variables whose blocks need it.
    """
    from daskgrad.batch.derived import derived_groups, stand_in
    from daskgrad.batch.run_plan import _outputs

    source = obj if isinstance(obj, xr.Dataset) else obj.to_dataset(name="__values__")
    named = None
    if plan is not None:
        named = dataclasses.replace(plan, variables=tuple(_with_key(vp) for vp in plan.variables))
    dplan = None if derived is None else stand_in(derived, "__values__")
    result, chunk_shapes, recipes, values, extra, own = _outputs(source, named, dplan)
    layouts = resolve_all(encoding, result, chunk_shapes)
    write_metadata(result, store, layouts, chunk_shapes, encoding.zarr_format, mode)
    shards = {v: lay.shard_blocks for v, lay in layouts.items()}
    groups = [group_of(source, result, vp, chunk_shapes, shards) for vp in own]
    if extra is not None:
        groups += derived_groups(result, extra.units, chunk_shapes, shards)
    client = active_client()
    worker, workers = library_worker(client)
    for g in groups:
        if worker.capacity(g.cost) < 1:
            raise MemoryError(
                f"blocks of {g.source!r} ({g.block_text}) do not fit the memory given: a worker "
                f"needs at least {worker.least(g.cost) / 2**20:.0f} MiB ({worker.explain(g.cost)}); "
                "rechunk smaller or raise the limit (dask config 'daskgrad.memory-limit', or the "
                "workers' memory_limit)"
            )
    plans = tile_plans(groups, worker, workers)
    missing = {
        str(v): BlockBitmap(chunk_grid(result[v].shape, chunk_shapes[str(v)]), full=True)
        for v in result.data_vars
    }
    outputs = {str(v): result[v].data for v in result.data_vars}
    programs = make_programs(
        groups, recipes, values, outputs, chunk_shapes, shards, missing, store, None
    )
    specs = [sp for prog in set(programs.values()) for sp in getattr(prog, "face_specs", list)()]
    if specs:
        face_store.create(store, specs)
    TileWriter(programs).run(
        iter_tiles(groups, plans, missing, workers),
        client=client,
        stall_timeout=float(dask.config.get("daskgrad.stall-timeout", 600)),
    )
    face_store.remove(store)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        zarr.consolidate_metadata(store)


def _with_key(vp: Any) -> Any:
    """The variable plan of an unnamed DataArray names its stand-in variable."""
    if vp.key is not None:
        return vp
    return dataclasses.replace(vp, key="__values__")
