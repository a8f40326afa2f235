"""The output zarr store: create, find what is written, write one block, finalize.

The rules (see docs/reliability.md):

* one dask block is exactly one zarr chunk, so no two tasks ever write the same chunk, and the
  presence of a chunk key means that block is done (LocalStore writes are atomic: a temporary
  ``.partial`` file, then a rename; on object storage a chunk is one PUT, whole or absent);
* with shards (``output.encoding.shards``), a shard is written whole by one task
  (:func:`daskgrad.batch.shards.write_shard`), so the presence of a shard key means all its blocks
  are done;
* every block is written, all-NaN blocks included (``write_empty_chunks``), otherwise resume
  would treat them as missing forever;
* the root attribute ``daskgrad.complete`` turns true last, after every chunk key is listed and
  the metadata consolidated; until then the store is an unfinished run that ``resume`` finishes.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from daskgrad.batch.grid import BlockBitmap, blocks_of_shard, chunk_grid, shard_of
from daskgrad.batch.paths import is_url
from daskgrad.batch.remote import RemoteStore, target, zarr_store_of

__all__ = [
    "Store",
    "block_index_of",
    "chunk_grid",
    "expected_blocks",
    "finalize",
    "has_blocks",
    "host_array",
    "present_blocks",
    "read_state",
    "remove_chunk",
    "set_state",
    "storage_index_of",
    "write_block",
    "write_token",
]

STATE_KEY = "daskgrad"


def expected_blocks(shape: tuple[int, ...], chunk_shape: tuple[int, ...]) -> BlockBitmap:
    """Every block of an array, as a bitmap (one bit per block).

    Examples
    --------
    >>> len(expected_blocks((5, 4), (2, 4)))
    3
    """
    return BlockBitmap(chunk_grid(shape, chunk_shape), full=True)


def block_index_of(key: str) -> tuple[int, ...] | None:
    """Block index of a zarr v3 chunk key relative to the array (``c/1/0/3``), else None."""
    parts = key.split("/")
    if not parts or parts[0] != "c":
        return None
    try:
        return tuple(int(p) for p in parts[1:])
    except ValueError:
        return None


#: A store argument: a local path, or a URL (a plain string, or a RemoteStore with its options).
Store = str | RemoteStore


def _local_path(store: Store) -> Path | None:
    return Path(store) if isinstance(store, str) and not is_url(store) else None


def _remote(store: Store) -> RemoteStore:
    return store if isinstance(store, RemoteStore) else target(store, None)  # type: ignore[return-value]


def storage_index_of(name: str, zarr_format: int) -> tuple[int, ...] | None:
    """Index of a chunk (or shard) from its key relative to the array, else None.

    zarr v3 keys are ``c/1/0/3``; zarr v2 keys (dimension separator ``.``) are ``1.0.3``.

    Examples
    --------
    >>> storage_index_of("c/1/0", 3), storage_index_of("1.0", 2), storage_index_of(".zarray", 2)
    ((1, 0), (1, 0), None)
    """
    if zarr_format == 3:
        return block_index_of(name)
    try:
        return tuple(int(p) for p in name.split("."))
    except ValueError:
        return None


def _open_read(store: Store, variable: str) -> zarr.Array:
    return zarr.open_array(zarr_store_of(store), path=variable, mode="r")


@dataclass(frozen=True)
class ChunkFile:
    """One stored chunk (or shard) of an output array, as a listing finds it."""

    index: tuple[int, ...]
    size: int
    mtime: float  # seconds since the epoch; 0.0 where the store does not say


def _scan(folder: str) -> Iterator[os.DirEntry]:
    """Every file below ``folder``, a directory at a time (never the whole listing at once)."""
    try:
        entries = os.scandir(folder)
    except FileNotFoundError:
        return
    with entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _scan(entry.path)
            else:
                yield entry


def _local_chunks(
    local: Path, variable: str, fmt: int, remove_partial: bool
) -> Iterator[ChunkFile]:
    base = local / variable
    root = base / "c" if fmt == 3 else base
    prefix = len(str(base)) + 1
    for entry in _scan(str(root)):
        name = entry.name
        if ".partial" in name:  # <key>.<uuid>.partial: a killed writer's temporary
            if remove_partial:
                Path(entry.path).unlink(missing_ok=True)
            continue
        if fmt == 2 and name.startswith("."):  # .zarray, .zattrs
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # deleted while listing
            continue
        if st.st_size == 0:  # a torn write on a non-atomic file system
            if remove_partial:
                Path(entry.path).unlink(missing_ok=True)
            continue
        rel = entry.path[prefix:].replace(os.sep, "/")
        idx = storage_index_of(rel, fmt)
        if idx is not None:
            yield ChunkFile(idx, int(st.st_size), float(st.st_mtime))


def stored_chunks(
    store: Store, variable: str, *, remove_partial: bool = True
) -> tuple[Iterator[ChunkFile], zarr.Array | None]:
    """The chunk (or shard) files of an output array, streamed, and the array (None if its
    metadata is missing: a store whose creation was killed, listed as zarr v3).

    Temporary ``*.partial`` files left by a killed writer are not chunks; they are deleted, and
    so are zero-length chunk files (``remove_partial``). A remote store's keys are listed by
    the array's prefix (one request per 1,000 keys on S3); an object store has no partial
    objects.
    """
    local = _local_path(store)
    if local is not None and not (local / variable).exists():
        return iter(()), None
    try:
        array = _open_read(store, variable)
    except Exception as err:
        if local is None:
            if isinstance(err, FileNotFoundError):  # zarr's NodeNotFoundError: never created
                return iter(()), None
            raise
        array = None
    fmt = 3 if array is None else array.metadata.zarr_format
    if local is not None:
        return _local_chunks(local, variable, fmt, remove_partial), array

    def remote() -> Iterator[ChunkFile]:
        for key in _remote(store).keys(f"{variable}/"):
            idx = storage_index_of(key[len(variable) + 1 :], fmt)
            if idx is not None:
                yield ChunkFile(idx, -1, 0.0)

    return remote(), array


def has_blocks(store: Store, variable: str) -> bool:
    """True if any chunk of ``variable`` is stored (stops at the first one)."""
    chunks, _ = stored_chunks(store, variable, remove_partial=False)
    return next(chunks, None) is not None


def present_blocks(
    store: Store,
    variable: str,
    *,
    remove_partial: bool = True,
    since: float | None = None,
    recent: list[tuple[int, ...]] | None = None,
) -> BlockBitmap:
    """The blocks whose chunk exists in the output store, as a bitmap (listed as a stream).

    With shards, a shard's key stands for all its blocks (shards are written whole, in one
    atomic write). ``since``: chunks modified at or after this time (seconds since the epoch)
    are also appended to ``recent`` (their blocks), for a check that they decode.
    """
    chunks, array = stored_chunks(store, variable, remove_partial=remove_partial)
    if array is None:  # no metadata: nothing this run can trust, nor index
        return BlockBitmap(())
    grid = chunk_grid(array.shape, array.chunks)
    per = shard_blocks_of(array)
    found = BlockBitmap(grid)
    for chunk in chunks:
        blocks = [chunk.index] if per is None else blocks_of_shard(chunk.index, per, grid)
        if any(len(b) != len(grid) or not all(0 <= i < n for i, n in zip(b, grid)) for b in blocks):
            continue  # a stray key outside the grid
        found.update(blocks)
        if recent is not None and since is not None and chunk.mtime >= since:
            recent.extend(blocks)
    return found


def _open_for_write(store: Store, variable: str) -> zarr.Array:
    array = zarr.open_array(zarr_store_of(store), path=variable, mode="r+")
    # An all-NaN block must still be written, or resume would wait for it forever.
    return array.with_config({"write_empty_chunks": True})


# The token (the run's fingerprint) is part of the key: a worker that outlives one run (kind:
# address, or runs repeated in one process) must never write a store re-created at the same path
# with other chunks or dtypes through an Array opened on the old one (a corrupt store that would
# still be marked complete).
@lru_cache(maxsize=64)
def _open_for_write_cached(store: Store, variable: str, token: str) -> zarr.Array:
    del token  # only a part of the cache key
    return _open_for_write(store, variable)


def write_block(
    block: Any, store: Store, variable: str, region: tuple[slice, ...], token: str | None = None
) -> int:
    """Write one block into its zarr chunk; returns the bytes written (uncompressed, as stored).

    ``token`` identifies the store's layout and the writer: the runner passes
    ``"<fingerprint>:<run id>"`` (see :func:`write_token`); the opened array is reused by the
    writes of the same token. With a run id, the store's lease must name that run, and stays
    locked (shared) until the chunk is written, so a stalled run that another run took the store
    from never writes into it (:mod:`daskgrad.batch.lease`). Without a token the array is opened anew and not checked.
    The block is cast to the array's dtype here (``output.encoding.dtype``), so the graph
    carries results at full precision and no extra task is needed.
    """
    block = host_array(block)
    array = (
        _open_for_write(store, variable)
        if token is None
        else _open_for_write_cached(store, variable, token)
    )
    if block.dtype != array.dtype:
        block = block.astype(array.dtype)  # numpy's rounding: the nearest representable value
    run_id = _run_id(token)
    local = _local_path(store)
    if run_id is None or local is None:  # no lease on object storage (docs/reliability.md)
        array[region] = block
    else:
        from daskgrad.batch.lease import writing

        with writing(str(local), run_id):  # the lease is this run's until the chunk is written
            array[region] = block
    return int(block.nbytes)


def shard_blocks_of(array: zarr.Array) -> tuple[int, ...] | None:
    """Blocks (inner chunks) per shard along each dim of an array; None if it has no shards."""
    if array.shards is None:
        return None
    return tuple(sh // c for sh, c in zip(array.shards, array.chunks))


def host_array(block: Any) -> np.ndarray:
    """A block as a numpy array (a CuPy block is copied to the host)."""
    if hasattr(block, "get") and type(block).__module__.startswith("cupy"):
        block = block.get()
    return np.asarray(block)


def write_token(fingerprint: str, run_id: str | None) -> str:
    """The ``token`` of :func:`write_block`: the layout (fingerprint) and the writing run.

    Examples
    --------
    >>> write_token("abc", "r1"), _run_id(write_token("abc", "r1")), _run_id("abc")
    ('abc:r1', 'r1', None)
    """
    return fingerprint if run_id is None else f"{fingerprint}:{run_id}"


def _run_id(token: str | None) -> str | None:
    if not token or ":" not in token:
        return None
    return token.rsplit(":", 1)[1] or None


def chunk_is_readable(store: Store, variable: str, region: tuple[slice, ...]) -> bool:
    """Decode one chunk; False if it is torn or otherwise unreadable."""
    try:
        zarr.open_array(zarr_store_of(store), path=variable, mode="r")[region]
    except Exception:
        return False
    return True


def remove_chunk(store: Store, variable: str, index: tuple[int, ...]) -> None:
    """Delete one block's chunk (with shards: its whole shard) so that it is written again."""
    array = _open_read(store, variable)
    per = shard_blocks_of(array)
    if per is not None:
        index = shard_of(index, per)
    key = array.metadata.encode_chunk_key(index)
    local = _local_path(store)
    if local is not None:
        (local / variable / key).unlink(missing_ok=True)
        return
    _remote(store).delete(f"{variable}/{key}")


def read_state(store: Store) -> dict[str, Any] | None:
    """The ``daskgrad`` root attributes of an existing store, or None if it has none."""
    try:
        group = zarr.open_group(zarr_store_of(store), mode="r", use_consolidated=False)
    except Exception:
        return None
    state = group.attrs.get(STATE_KEY)
    return dict(state) if isinstance(state, dict) else None


def set_state(store: Store, *, consolidated: bool = False, **changes: Any) -> None:
    """Update the ``daskgrad`` root attributes.

    ``consolidated=True`` opens the root with its consolidated metadata, so that rewriting the
    root attributes keeps it (root attributes stay valid after consolidation; child ones not).
    """
    group = zarr.open_group(zarr_store_of(store), mode="r+", use_consolidated=consolidated)
    state = dict(group.attrs.get(STATE_KEY, {}))  # type: ignore[arg-type]  # our own mapping
    state.update(changes)
    group.attrs[STATE_KEY] = state


def finalize(store: Store, variables: Iterable[str], expected: Mapping[str, BlockBitmap]) -> None:
    """Check every chunk is there, consolidate the metadata, then mark the store complete.

    The chunks are listed again (streamed into a bitmap, never a list of keys).

    Raises
    ------
    RuntimeError
        If any chunk is missing; the store is then left incomplete (and resumable).
    """
    for variable in variables:
        missing = expected[variable] - present_blocks(store, variable, remove_partial=False)
        if missing:
            raise RuntimeError(
                f"output variable {variable!r} is missing {len(missing)} chunk(s), e.g. "
                f"{next(iter(missing))}; the store stays incomplete"
            )
    with warnings.catch_warnings():
        # zarr warns that v3 has no consolidated metadata in its spec yet; daskgrad consolidates
        # on purpose (once, last) so readers open the store fast.
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        # The run's lease files (daskgrad.lease.*) sit beside the arrays; they are not nodes.
        warnings.filterwarnings("ignore", message="Object at daskgrad.lease.")
        zarr.consolidate_metadata(zarr_store_of(store))
    set_state(store, consolidated=True, complete=True, state="complete")
