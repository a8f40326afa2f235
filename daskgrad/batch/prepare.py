"""Step 2 of a batch run: the output store created, or reopened and checked for resume.

:func:`prepare_store` creates the store (metadata, coordinates, attributes, ``complete:
false``) or, on resume, checks its fingerprint and the input's digest and lists the blocks
already written (streamed into bitmaps: never a list of a million chunk keys). After an unclean
stop only the chunks written near the crash are decoded (:data:`SUSPECT_SECONDS`); with
``--verify``, all of them.

Examples
--------
>>> import tempfile, numpy as np, xarray as xr
>>> from daskgrad.batch.config import load_config_text
>>> from daskgrad.batch.run_plan import plan
>>> d = tempfile.mkdtemp()
>>> xr.Dataset({"f": ("x", np.arange(8.0))}).chunk(4).to_zarr(f"{d}/in.zarr")  # doctest: +ELLIPSIS
<...>
>>> p = plan(load_config_text(f"input: {{path: {d}/in.zarr}}\\noutput: {{path: {d}/o.zarr}}"))
>>> missing, complete = prepare_store(p)
>>> sorted(missing["df_dx"]), complete
([(0,), (1,)], False)
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dask

import daskgrad
from daskgrad.batch import store as zstore
from daskgrad.batch.config import ConfigError
from daskgrad.batch.encoding import write_metadata
from daskgrad.batch.failures import RunError, cause
from daskgrad.batch.grid import BlockBitmap, region
from daskgrad.batch.lease import Lease
from daskgrad.batch.provenance import describe_change
from daskgrad.batch.remote import RemoteStore, zarr_store_of
from daskgrad.batch.run_plan import Plan

__all__ = ["SUSPECT_SECONDS", "create_store", "prepare_store"]

log = logging.getLogger("daskgrad")


def create_store(p: Plan, *, replace: bool = False) -> None:
    """Write metadata, coordinates and attributes (``replace``: delete what the path held)."""
    path = p.store
    zarr_format = p.config.output.encoding.zarr_format
    mode = "w" if replace else "w-"
    write_metadata(p.result, zarr_store_of(path), p.layouts, p.chunk_shapes, zarr_format, mode)
    zstore.set_state(
        path,
        complete=False,
        state="running",
        fingerprint=p.fingerprint,
        version=daskgrad.__version__,
        config=p.config.to_dict(),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        input_digest=p.input_digest,
        store_id=p.store_id,
    )


def _never_created(p: Plan, state: dict[str, Any] | None) -> bool:
    """A store whose creation was killed: no daskgrad fingerprint yet, no block of ours, and no
    array that this run would not have created itself (so it is not someone else's store)."""
    if state is not None and state.get("fingerprint"):
        return False
    path = p.store
    ours = {str(n) for n in p.result.variables}
    if isinstance(path, RemoteStore):
        arrays = path.folders()
    else:
        root = Path(path)
        arrays = [d.name for d in root.iterdir() if d.is_dir()] if root.is_dir() else []
    if any(a not in ours for a in arrays):
        return False
    return all(not zstore.has_blocks(path, v) for v in p.variables)


def _take(p: Plan, lease: Lease | None) -> None:
    """Hold the output's lease from here on; block writes then carry this run's id."""
    if lease is None:
        return
    lease.acquire()
    p.run_id = lease.run_id


def _input_changed(p: Plan, state: dict[str, Any]) -> str | None:
    recorded = state.get("input_digest")
    if not recorded or p.input_digest is None:
        return None  # an older store, or an input that cannot be listed: nothing to compare
    return describe_change(recorded, p.input_digest)


#: After an unclean stop, chunks written this long before the crashed run's last sign of life
#: are decoded too: a write in flight at the crash, and page-cache data a power loss dropped.
SUSPECT_SECONDS = 120.0


def prepare_store(
    p: Plan,
    *,
    verify: bool = False,
    client: Any = None,
    lease: Lease | None = None,
    last_alive: float | None = None,
) -> tuple[dict[str, BlockBitmap], bool]:
    """Create or reopen the output; return the blocks still to write and whether it is complete.

    A store whose creation was killed (no daskgrad state, no block) is created again, for
    ``overwrite`` and ``resume`` alike. ``resume`` refuses a store made by another config, or
    from an input whose files changed since. With ``verify`` a complete store is decoded chunk by
    chunk; damaged chunks are written again (the store is un-marked complete meanwhile).
    After an unclean stop (the state says ``running``), the chunks written since the crashed
    run's last lease renewal (``last_alive``, seconds since the epoch; minus
    :data:`SUSPECT_SECONDS`) are decoded and rewritten if torn; without a lease record, all.
    ``lease``: taken once the store exists, before anything in it changes.
    """
    out = p.config.output
    expected = p.expected()
    store = p.store
    exists = store.exists() if isinstance(store, RemoteStore) else Path(out.path).exists()
    state = zstore.read_state(store) if exists else None
    if exists and out.mode == "error":
        raise ConfigError(
            p.source,
            "output.path",
            None,
            f"{out.path!r} exists; use --set output.mode=overwrite or resume",
        )
    half = exists and _never_created(p, state)
    replace = exists and (out.mode == "overwrite" or half)
    if replace:
        log.info(
            "%s: replacing %s",
            "overwrite" if out.mode == "overwrite" else "half-created store",
            out.path,
        )
        exists = False
    if not exists:
        p.store_id = uuid.uuid4().hex
        if replace:
            _take(p, lease)  # the old store's owner is locked out before anything is deleted
        try:
            create_store(p, replace=replace)
        except Exception as err:
            raise RunError(
                f"could not create the output store {out.path!r}: {cause(err)}; it holds no "
                "block yet: fix that, then run again with --set output.mode=overwrite",
                resumable=False,
            ) from err
        _take(p, lease)
        return expected, False

    if state is None or state.get("fingerprint") != p.fingerprint:
        raise ConfigError(
            p.source,
            "output.mode",
            None,
            f"cannot resume {out.path!r}: it was written by a different config or input "
            "(fingerprint differs); use --set output.mode=overwrite",
        )
    change = _input_changed(p, state)
    if change:
        raise ConfigError(
            p.source,
            "output.mode",
            None,
            f"cannot resume {out.path!r}: the input changed since the store was created "
            f"({change}); use --set output.mode=overwrite",
        )
    p.store_id = state.get("store_id")
    _take(p, lease)
    if state.get("complete"):
        if not verify:
            return {v: BlockBitmap(b.grid) for v, b in expected.items()}, True
        missing = _repair_complete(p, expected, client)
        return missing, not p.repaired
    crashed = state.get("state") == "running"  # the last run never stopped cleanly
    # Object stores write a chunk in one PUT: nothing is torn there, only --verify decodes.
    suspect = crashed and not isinstance(store, RemoteStore)
    since = None if not suspect or last_alive is None else last_alive - SUSPECT_SECONDS
    missing = {}
    for v in p.variables:
        recent: list = []
        present = zstore.present_blocks(store, v, since=since, recent=recent)
        if verify or (suspect and since is None):
            checked: Iterable = present
        elif suspect:
            checked = recent
            log.info(
                "unclean stop: decoding the %d chunk(s) of %s written since %s",
                len(recent),
                v,
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since)),
            )
        else:
            checked = ()
        for bad in _unreadable(p, v, checked, client):
            present.discard(bad)
        missing[v] = expected[v] - present
    zstore.set_state(store, state="running")
    return missing, False


def _repair_complete(
    p: Plan, expected: dict[str, BlockBitmap], client: Any
) -> dict[str, BlockBitmap]:
    """Decode every chunk of a complete store; un-mark it and delete the damaged ones if any."""
    path = p.store
    missing = {}
    for v in p.variables:
        present = zstore.present_blocks(path, v, remove_partial=False)
        todo = expected[v] - present
        todo.update(_unreadable(p, v, present, client, remove=False))
        missing[v] = todo
    p.repaired = sum(len(m) for m in missing.values())
    if p.repaired:
        # Un-marked first: a crash while repairing leaves an incomplete store, never a
        # complete one with holes. Root attributes keep the consolidated copy valid.
        zstore.set_state(path, consolidated=True, complete=False, state="running")
        for v, indices in missing.items():
            present = zstore.present_blocks(path, v, remove_partial=False)
            for i in indices:
                if i in present:
                    zstore.remove_chunk(path, v, i)
    return missing


def _unreadable(
    p: Plan, variable: str, chunks: Iterable, client: Any, *, remove: bool = True
) -> list:
    """Chunks that fail to decode (torn by a crash); they are deleted (``remove``) and written
    again. Checked a batch at a time, so the graph stays small however many there are."""
    path = p.store
    chunk_shape = p.chunk_shapes[variable]
    shape = p.result[variable].shape
    bad = []
    batch: list = []

    def check() -> None:
        checks = [
            dask.delayed(zstore.chunk_is_readable)(path, variable, region(i, chunk_shape, shape))
            for i in batch
        ]
        ok = dask.compute(*checks, scheduler=client if client is not None else "threads")
        for i, good in zip(batch, ok):
            if good:
                continue
            log.warning("output %s chunk %s is unreadable (torn write); rewriting it", variable, i)
            if remove:
                zstore.remove_chunk(path, variable, i)
            bad.append(i)
        batch.clear()

    for i in chunks:
        batch.append(i)
        if len(batch) >= 4096:
            check()
    if batch:
        check()
    return bad
