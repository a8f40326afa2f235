"""Open the input of a batch run lazily, read-only, with errors that name the chunk."""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable, Iterable
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from daskgrad.batch.config import InputConfig
from daskgrad.batch.paths import resolve_input

__all__ = ["InputReadError", "absent_chunks", "open_input"]


class InputReadError(RuntimeError):
    """An input chunk that cannot be read or decoded (names the variable and the chunk)."""


def _region_text(key: tuple) -> str:
    """A block's region for messages.

    Examples
    --------
    >>> _region_text((slice(0, 4), 2))
    '[0:4, 2]'
    """
    return (
        "["
        + ", ".join(f"{s.start}:{s.stop}" if isinstance(s, slice) else str(s) for s in key)
        + "]"
    )


class _NamedGetter:
    """dask ``getitem`` for ``from_array`` that re-raises read errors naming the variable and the chunk."""

    def __init__(self, variable: str, chunks: tuple[tuple[int, ...], ...]):
        self.variable = variable
        self.bounds = [np.cumsum((0, *c)) for c in chunks]

    def _index(self, key: tuple) -> tuple[int, ...] | None:
        try:
            return tuple(
                int(np.searchsorted(b, s.start or 0, side="right") - 1)
                for b, s in zip(self.bounds, key)
            )
        except Exception:
            return None

    def __call__(self, a: Any, b: Any, asarray: bool = True, lock: Any = None) -> Any:
        try:
            return da.core.getter(a, b, asarray=asarray, lock=lock)
        except Exception as err:
            raise InputReadError(
                f"cannot read input variable {self.variable!r}, chunk {self._index(b)} "
                f"(region {_region_text(b)}): {type(err).__name__}: {err}"
            ) from err


def open_input(cfg: InputConfig, mask: str | None = None) -> xr.Dataset:
    """Open the input lazily and chunked, never for writing.

    Zarr stores are opened with ``mode="r"``; netCDF files (one, or several by glob) with
    ``open_mfdataset``. Which files: :func:`daskgrad.batch.paths.resolve_input`, the rule ``validate``
    uses too (a path that exists is taken literally; a glob only when it does not). Chunks are the store's own unless ``cfg.chunks`` overrides some dims; a
    variable stored without chunks gets dask's ``"auto"`` chunks (``array.chunk-size``) along
    the dims that ``cfg.chunks`` leaves out.
    Each numeric data variable becomes a dask array whose read tasks name the variable and
    chunk when a chunk cannot be read; the others (dates, strings) are left unread. The grid
    file ``cfg.grid`` is merged last (:func:`with_grid`; ``mask`` as there).
    """
    if cfg.resolved_engine == "zarr":
        with warnings.catch_warnings():
            # A store without consolidated metadata is normal (daskgrad's own outputs consolidate
            # last; many stores never do); xarray's fallback warning would only alarm.
            warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated")
            # storage_options (endpoint, anon, profile) reach fsspec for a URL; None for a path.
            options = cfg.storage_options if "://" in cfg.path else None
            ds = xr.open_dataset(
                cfg.path, engine="zarr", chunks=None, storage_options=options or None
            )
    else:
        found = resolve_input(cfg.path)
        paths = found.paths
        if len(paths) > 1:
            ds = xr.open_mfdataset(paths, chunks=None, combine="by_coords")
        else:
            ds = xr.open_dataset(paths[0], chunks=None)
    chunked = {}
    for name, var in ds.data_vars.items():
        if var.dtype.kind not in "biufc":
            # Dates (cftime bounds are objects dask cannot size), strings, chars: never
            # differentiated, so left as xarray opened them, unread.
            continue
        preferred = var.encoding.get("preferred_chunks") or {}
        enc_chunks = var.encoding.get("chunks")
        chunks: dict[Hashable, int | str] = {}
        for i, d in enumerate(var.dims):
            if cfg.chunks and d in cfg.chunks:
                chunks[d] = cfg.chunks[d]
            elif d in preferred:
                chunks[d] = preferred[d]
            elif enc_chunks is not None:
                chunks[d] = enc_chunks[i]
            else:
                # Stored without chunks (a contiguous netCDF variable): one block would be the
                # whole variable, so let dask size the blocks (``array.chunk-size``, 128 MiB).
                chunks[d] = "auto"
        normalized = da.core.normalize_chunks(
            tuple(chunks[d] for d in var.dims), var.shape, dtype=var.dtype
        )
        chunked[name] = var.chunk(
            dict(zip(var.dims, normalized)),
            from_array_kwargs={"getitem": _NamedGetter(str(name), normalized)},
        )
    return with_grid(ds.assign(chunked), cfg, mask)


def with_grid(ds: xr.Dataset, cfg: InputConfig, mask: str | None = None) -> xr.Dataset:
    """``ds`` with the coordinates and masks of the grid file ``cfg.grid`` it lacks
    (:func:`daskgrad.grids.attach_grid`; ``mask``: the variable ``gradient.mask`` names, taken
    too); the file is opened as the input is, read-only.

    Raises
    ------
    OptionError
        (``argument="grid"``) the file cannot be opened, or does not fit the input.
    """
    if cfg.grid is None:
        return ds
    from daskgrad.core.options import OptionError
    from daskgrad.grids import attach_grid

    path = cfg.grid
    zarr = path.rstrip("/").lower().endswith(".zarr") or ("://" not in path and os.path.isdir(path))
    extra: dict[str, Any] = {"storage_options": cfg.storage_options} if "://" in path else {}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated")
            grid = xr.open_dataset(
                path,
                engine="zarr" if zarr else None,
                chunks=None,
                **extra,
            )
    except Exception as err:  # not there, or not a netCDF file or zarr store
        raise OptionError("grid", f"cannot open {path!r}: {type(err).__name__}: {err}") from err
    merged = attach_grid(ds, grid, mask=mask)
    assert isinstance(merged, xr.Dataset)
    return merged


def absent_chunks(cfg: InputConfig, variables: Iterable[str]) -> dict[str, tuple[int, int, Any]]:
    """Chunks never written in a local zarr input: ``{variable: (absent, total, fill_value)}``.

    zarr reads a chunk that is not in the store as the array's fill value. That is not an error:
    zarr 3 leaves out all-fill-value chunks by default (a land mask, say). But an interrupted
    copy of a store looks the same, so the runner reports the count. Remote stores and netCDF
    inputs are not listed (a listing of a remote store can be slow); any failure gives ``{}``.
    """
    if cfg.resolved_engine != "zarr" or "://" in cfg.path:
        return {}
    import zarr

    from daskgrad.batch.store import stored_chunks

    found: dict[str, tuple[int, int, Any]] = {}
    try:
        group = zarr.open_group(cfg.path, mode="r", use_consolidated=False)
        for name in variables:
            array = group[name]
            assert isinstance(array, zarr.Array)
            if array.shards is not None:
                total, present = int(array.nchunks), int(array.nchunks_initialized)
            else:  # counted as a stream: a store of a million chunks is never a list of keys
                chunks, _ = stored_chunks(cfg.path, name, remove_partial=False)
                total, present = int(array.nchunks), sum(1 for _ in chunks)
            if present < total:
                found[name] = (total - present, total, array.fill_value)
    except Exception:
        return {}
    return found
