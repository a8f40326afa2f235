"""One batch run: config in, gradient store out, resumable, marked complete last.

The steps, each in its own function:

1. :func:`daskgrad.batch.run_plan.plan` opens the input read-only, checks variables and dims against it (a mistake there
   is a config error, exit status 2), builds the lazy gradients with the ``grad`` accessor and
   fixes the output chunks (one dask block per zarr chunk).
2. :func:`prepare_store` creates the store (metadata, coordinates, attributes, ``complete:
   false``) or, on resume, checks its fingerprint and lists the chunks already written.
3. :func:`execute` computes and writes only the missing blocks, on the configured cluster.
4. :func:`daskgrad.batch.store.finalize` lists every chunk again, consolidates, marks complete.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import resource
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask

import daskgrad
from daskgrad.batch import store as zstore
from daskgrad.batch.budget import (
    size_text,
)
from daskgrad.batch.config import ConfigError, RunConfig
from daskgrad.batch.encoding import write_metadata
from daskgrad.batch.inputs import absent_chunks
from daskgrad.batch.lease import Lease, LeaseHeld, LeaseLost
from daskgrad.batch.paths import is_url, resolve_input
from daskgrad.batch.provenance import describe_change, input_digest
from daskgrad.batch.remote import RemoteStore, zarr_store_of
from daskgrad.batch.run_plan import Plan, plan, plan_lines, small_blocks_note
from daskgrad.batch.schedule import (
    check_memory,
    tile_plans,
    tiles_line,
    tiles_to_write,
    worker_for_run,
)
from daskgrad.batch.shards import whole_shards
from daskgrad.batch.writer import Progress, Tile, TileWriter, worker_infos

__all__ = ["Plan", "RunError", "RunSummary", "check_memory", "plan", "prepare_store", "run"]

log = logging.getLogger("daskgrad")


class RunError(RuntimeError):
    """A failure while running; the output is not marked complete.

    ``resumable`` is False when this run wrote nothing worth resuming: the cluster never
    started, or the output store could not even be created (it then holds no block and no
    fingerprint, so ``resume`` cannot take it; delete it and run again).
    """

    def __init__(self, message: str, *, resumable: bool = True) -> None:
        super().__init__(message)
        self.resumable = resumable


@dataclass
class RunSummary:
    """Figures of a finished run (printed by the CLI)."""

    blocks_total: int
    blocks_written: int
    bytes_read: int
    bytes_written: int
    seconds: float
    peak_memory: dict[str, int] = field(default_factory=dict)
    already_complete: bool = False
    repaired: int = 0
    report: str | None = None

    def lines(self) -> list[str]:
        """The summary the CLI prints.

        Examples
        --------
        >>> RunSummary(8, 8, 2**20, 3 * 2**20, 2.0, {"driver": 2**28}).lines()[1:]
        ['read 1.0 MiB, wrote 3.0 MiB in 2.0 s (1.5 MiB/s written)', 'peak memory driver: 256.0 MiB']
        """
        rate = self.bytes_written / self.seconds / 2**20 if self.seconds else 0.0
        out = (
            [f"repaired {self.repaired} damaged chunk(s) of a complete store"]
            if self.repaired
            else []
        )
        out += [
            f"blocks written: {self.blocks_written} of {self.blocks_total}",
            f"read {size_text(self.bytes_read)}, wrote {size_text(self.bytes_written)} in "
            f"{self.seconds:.1f} s ({rate:.1f} MiB/s written)",
        ]
        for who, peak in sorted(self.peak_memory.items()):
            out.append(f"peak memory {who}: {size_text(peak)}")
        if self.report:
            out.append(f"performance report: {self.report}")
        return out


# -- 2. the store -----------------------------------------------------------------------------


def _create_store(p: Plan, *, replace: bool = False) -> None:
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
    return all(not zstore.present_blocks(path, v, remove_partial=False) for v in p.variables)


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


def prepare_store(
    p: Plan, *, verify: bool = False, client: Any = None, lease: Lease | None = None
) -> tuple[dict[str, set], bool]:
    """Create or reopen the output; return the blocks still to write and whether it is complete.

    A store whose creation was killed (no daskgrad state, no block) is created again, for
    ``overwrite`` and ``resume`` alike. ``resume`` refuses a store made by another config, or
    from an input whose files changed since. With ``verify`` a complete store is decoded chunk by
    chunk; damaged chunks are written again (the store is un-marked complete meanwhile).
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
            _create_store(p, replace=replace)
        except Exception as err:
            raise RunError(
                f"could not create the output store {out.path!r}: {_cause(err)}; it holds no "
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
            return {v: set() for v in expected}, True
        missing = _repair_complete(p, expected, client)
        return missing, not p.repaired
    crashed = state.get("state") == "running"  # the last run never stopped cleanly
    missing = {}
    for v in p.variables:
        present = zstore.present_blocks(store, v)
        if verify or crashed:
            present -= _unreadable(p, v, present, client)
        missing[v] = expected[v] - present
    zstore.set_state(store, state="running")
    return missing, False


def _repair_complete(p: Plan, expected: dict[str, set], client: Any) -> dict[str, set]:
    """Decode every chunk of a complete store; un-mark it and delete the damaged ones if any."""
    path = p.store
    present = {v: zstore.present_blocks(path, v, remove_partial=False) for v in p.variables}
    bad = {v: _unreadable(p, v, present[v], client, remove=False) for v in p.variables}
    missing = {v: bad[v] | (expected[v] - present[v]) for v in p.variables}
    p.repaired = sum(len(m) for m in missing.values())
    if p.repaired:
        # Un-marked first: a crash while repairing leaves an incomplete store, never a
        # complete one with holes. Root attributes keep the consolidated copy valid.
        zstore.set_state(path, consolidated=True, complete=False, state="running")
        for v, indices in bad.items():
            for i in indices:
                zstore.remove_chunk(path, v, i)
    return missing


def _unreadable(p: Plan, variable: str, present: set, client: Any, *, remove: bool = True) -> set:
    """Chunks that fail to decode (torn by a crash); they are deleted (``remove``) and written again."""
    path = p.store
    chunk_shape = p.chunk_shapes[variable]
    shape = p.result[variable].shape
    indices = sorted(present)
    checks = [
        dask.delayed(zstore.chunk_is_readable)(path, variable, _region(i, chunk_shape, shape))
        for i in indices
    ]
    ok = dask.compute(*checks, scheduler=client if client is not None else "threads")
    bad = {i for i, good in zip(indices, ok) if not good}
    for i in bad:
        log.warning("output %s chunk %s is unreadable (torn write); rewriting it", variable, i)
        if remove:
            zstore.remove_chunk(path, variable, i)
    return bad


def _region(
    index: tuple[int, ...], chunk_shape: tuple[int, ...], shape: tuple[int, ...]
) -> tuple[slice, ...]:
    return tuple(slice(i * c, min(n, (i + 1) * c)) for i, c, n in zip(index, chunk_shape, shape))


# -- 3. compute and write ---------------------------------------------------------------------


def write_blocks(p: Plan, blocks: dict[str, set], *, client: Any = None) -> int:
    """Write the given blocks of each output variable as one tile (tests, partial runs)."""
    writer = TileWriter({v: p.result[v].data for v in p.variables}, p.store, p.token)
    return writer.run([Tile({v: sorted(b) for v, b in blocks.items()})], client=client)


def _peak_memory_here() -> int:
    """Peak resident memory of this process, in bytes."""
    try:  # Linux: the process's own high-water mark (ru_maxrss can carry a forking parent's)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def run(
    cfg: RunConfig,
    *,
    source: str = "<config>",
    verify: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    report: str | None = None,
) -> RunSummary:
    """Run one config to completion (or to a resumable failure).

    ``report`` is a path for distributed's performance report of the run (a cluster run).

    Raises
    ------
    ConfigError
        The config does not fit the data (exit status 2); nothing was written.
    RunError
        The run failed; the store is left incomplete and ``output.mode: resume`` finishes it.
    KeyboardInterrupt
        Stopped by the user; the store is left incomplete and resumable.
    """
    from daskgrad.batch.cluster import dashboard_link, describe
    from daskgrad.batch.preflight import check_paths

    check_paths(cfg, source=source)
    p = plan(cfg, source)
    t0 = time.perf_counter()
    echo(
        f"daskgrad {daskgrad.__version__}: {len(p.variables)} output variable(s) -> {cfg.output.path}"
    )
    glob_note = resolve_input(cfg.input.path).note(cfg.input.path)
    if glob_note:
        echo(glob_note)
    used = cfg.input.variables or [str(v) for v in p.input.data_vars]
    for v, (absent, total, fill) in absent_chunks(cfg.input, used).items():
        echo(
            f"note: input variable {v!r}: {absent} of {total} chunks are not in the store; "
            f"zarr reads them as the fill value {fill}"
        )
    for line in plan_lines(p):
        echo(line)
    note = small_blocks_note(p)
    if note:
        echo(note)
    # One run per store: refuse before a cluster starts; the lease is released last.
    lease = None if is_url(cfg.output.path) else Lease(cfg.output.path, cfg.output.lease_seconds)
    if lease is not None:
        try:
            lease.check_free()
        except LeaseHeld as err:
            raise RunError(str(err), resumable=False) from err
    with contextlib.ExitStack() as stack:
        if lease is not None:
            stack.callback(lease.release)
        client = _enter_cluster(stack, cfg, source)
        echo(describe(cfg.cluster))
        link = dashboard_link(client)
        if link:
            echo(f"dashboard: {link}")
        if report is not None and client is not None:
            from distributed import performance_report

            # Entered after the client, so it is written (on exit) while the client lives.
            stack.enter_context(performance_report(filename=report))
        worker = worker_for_run(p, client)  # before the store: a refusal writes nothing
        workers = len(worker_infos(client)) if client is not None else 1
        plans = tile_plans(p.groups, worker, workers)
        try:
            missing, complete = prepare_store(
                p, verify=verify or cfg.output.verify, client=client, lease=lease
            )
        except (ConfigError, RunError, KeyboardInterrupt):
            raise
        except LeaseHeld as err:  # another run took the store between the check and now
            raise RunError(str(err), resumable=False) from err
        except Exception as err:  # e.g. a full disk while marking a resumed store 'running'
            raise RunError(_explain(err)) from err
        if lease is not None and lease.held:
            lease.start_renewing()
        # A shard is written whole: a block to write brings the rest of its shard along.
        if any(lay.shard_blocks for lay in p.layouts.values()):
            missing = {v: whole_shards(cfg.output.path, v, b) for v, b in missing.items()}
        total = sum(len(b) for b in p.expected().values())
        todo = sum(len(b) for b in missing.values())
        if complete:
            checked = "; every chunk decodes" if verify or cfg.output.verify else ""
            echo(f"{cfg.output.path} is already complete{checked}; nothing to do")
            return RunSummary(total, 0, 0, 0, time.perf_counter() - t0, already_complete=True)
        if todo < total:
            echo(f"resuming: {total - todo} of {total} blocks already written, {todo} to go")
        tiles = tiles_to_write(p.groups, plans, missing, p.input)
        read = sum(t.read_bytes for t in tiles)
        if tiles:
            echo(tiles_line(p, plans, len(tiles), read, worker, client))
        try:
            written = TileWriter({v: p.result[v].data for v in p.variables}, p.store, p.token).run(
                tiles,
                client=client,
                stall_timeout=cfg.cluster.stall_timeout,
                progress=Progress(todo, echo=echo, enabled=progress),
            )
            _check_before_complete(p, lease)
            zstore.finalize(p.store, p.variables, p.expected())
        except KeyboardInterrupt:
            _mark_stopped(p.store, lease)
            raise
        except RunError:
            _mark_stopped(p.store, lease)
            raise
        except Exception as err:
            _mark_stopped(p.store, lease)
            lost = isinstance(err, LeaseLost) or (lease is not None and lease.lost is not None)
            raise RunError(_explain(err), resumable=not lost) from err
        peaks = {"driver": _peak_memory_here()}
        if client is not None:
            try:  # a summary figure never fails a finished run
                peaks.update(client.run(_peak_memory_here))
            except Exception as err:
                log.warning("no peak memory from the workers: %s", _cause(err))
    seconds = time.perf_counter() - t0
    return RunSummary(
        total, todo, read, written, seconds, peaks, repaired=p.repaired, report=report
    )


def _enter_cluster(stack: contextlib.ExitStack, cfg: RunConfig, source: str) -> Any:
    """Start (or connect to) the cluster; its failures become one-line errors, not tracebacks."""
    from daskgrad.batch.cluster import describe, open_client

    try:
        return stack.enter_context(open_client(cfg.cluster))
    except (ValueError, ImportError) as err:  # open_client's messages start with the key
        raise ConfigError(source, None, None, str(err)) from err
    except Exception as err:  # it did not start, or the scheduler cannot be reached
        raise RunError(
            f"cannot start or reach the cluster ({describe(cfg.cluster)}): {_cause(err)}; "
            "nothing was written",
            resumable=False,
        ) from err


def _check_before_complete(p: Plan, lease: Lease | None) -> None:
    """The last checks before the complete mark: the input is as it was when the store was
    begun, and the store is still this run's (its lease, and the store itself not replaced)."""
    cfg = p.config
    if p.input_digest is not None:
        now = input_digest(
            cfg.input.path,
            cfg.input.resolved_engine,
            p.input_digest.get("arrays", []),
            storage_options=cfg.input.storage_options,
        )
        change = describe_change(p.input_digest, now)
        if change:
            raise RunError(
                f"the input changed during the run ({change}); {cfg.output.path!r} is not "
                "marked complete: run again with --set output.mode=overwrite",
                resumable=False,
            )
    if lease is not None:
        lease.ensure()
        state = zstore.read_state(p.store) or {}
        if p.store_id is not None and state.get("store_id") != p.store_id:
            raise LeaseLost(f"the output {cfg.output.path!r} was replaced by another run")


def _mark_stopped(path: str | RemoteStore, lease: Lease | None = None) -> None:
    """Record a clean stop. If even that fails (the disk is full), the state stays ``running``,
    which only makes the next resume verify every chunk; the original error must still show.
    A run that lost its lease leaves the store alone: it belongs to another run now."""
    if lease is not None:
        try:
            lease.ensure()
        except LeaseLost:
            return
    try:
        zstore.set_state(path, state="stopped")
    except Exception as err:
        log.warning("could not mark %s as stopped (%s); resume will verify its chunks", path, err)


def _cause(err: BaseException) -> str:
    name = type(err).__name__
    text = str(err) or name
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"the disk is full ({text})"
    return f"{name}: {text}" if name not in text else text


def _explain(err: BaseException) -> str:
    name = type(err).__name__
    text = str(err) or name
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"the output disk is full ({text}); free space, then resume"
    if name == "KilledWorker":
        return (
            f"workers died while running the same task more often than cluster.allowed_failures "
            f"allows ({text}); raise cluster.allowed_failures or give workers more memory "
            "(cluster.memory_limit)"
        )
    return f"{name}: {text}" if name not in text else text
