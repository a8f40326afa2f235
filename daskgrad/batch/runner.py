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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask

import daskgrad
from daskgrad.batch import faces as face_store
from daskgrad.batch import store as zstore
from daskgrad.batch.budget import size_text
from daskgrad.batch.config import ConfigError, RunConfig
from daskgrad.batch.encoding import write_metadata
from daskgrad.batch.grid import BlockBitmap, region
from daskgrad.batch.inputs import absent_chunks
from daskgrad.batch.lease import Lease, LeaseHeld, LeaseLost, read_lease
from daskgrad.batch.paths import is_url, resolve_input
from daskgrad.batch.provenance import describe_change, input_digest
from daskgrad.batch.remote import RemoteStore, zarr_store_of
from daskgrad.batch.run_plan import Plan, plan, small_blocks_note
from daskgrad.batch.schedule import (
    check_memory,
    iter_tiles,
    planned_reads,
    tile_plans,
    tiles_line,
    worker_for_run,
)
from daskgrad.batch.shards import whole_shards
from daskgrad.batch.tile_tasks import Program, make_programs
from daskgrad.batch.tiles import Tile
from daskgrad.batch.writer import Progress, TileWriter, WriteReport, worker_infos
from daskgrad.blocks import BlockRecipe

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
    notes: list[str] = field(default_factory=list)
    bytes_in: int = 0

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
        again = (
            f" ({self.bytes_read / self.bytes_in - 1:+.0%} of the input read again)"
            if self.bytes_in and self.blocks_written == self.blocks_total
            else ""
        )
        out += [
            f"blocks written: {self.blocks_written} of {self.blocks_total}",
            f"read {size_text(self.bytes_read)}{again}, wrote {size_text(self.bytes_written)} in "
            f"{self.seconds:.1f} s ({rate:.1f} MiB/s written)",
            *self.notes,
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


# -- 3. compute and write ---------------------------------------------------------------------


def write_blocks(p: Plan, blocks: Mapping[str, Iterable], *, client: Any = None) -> int:
    """Write the given blocks of each output variable, each variable's as one tile (tests,
    partial runs); returns the bytes written."""
    written = 0
    programs = programs_for(p, {v: BlockBitmap(p.grid(v)) for v in p.variables}, keep_faces=False)
    for g in p.groups:
        chosen = {o: sorted(blocks[o]) for o in g.outputs if blocks.get(o)}
        if chosen:
            tile = Tile(chosen, group=g.source)
            written += TileWriter(programs).run([tile], client=client).written
    return written


def programs_for(
    p: Plan, missing: Mapping[str, BlockBitmap], *, keep_faces: bool = True
) -> dict[str | None, Program]:
    """The program that makes each input variable's tile tasks (:mod:`daskgrad.batch.tile_tasks`)."""
    return make_programs(
        p.groups,
        p.recipes,
        p.values,
        {v: p.result[v].data for v in p.variables},
        p.chunk_shapes,
        {v: lay.shard_blocks for v, lay in p.layouts.items()},
        missing,
        p.store,
        p.token,
        keep_faces=keep_faces,
    )


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
    for line in _notes(p):
        echo(line)
    # One run per store: refuse before a cluster starts; the lease is released last.
    lease = None if is_url(cfg.output.path) else Lease(cfg.output.path, cfg.output.lease_seconds)
    last_alive = None
    if lease is not None:
        previous = read_lease(cfg.output.path) or {}
        last_alive = previous.get("renewed") if not previous.get("released") else None
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
                p,
                verify=verify or cfg.output.verify,
                client=client,
                lease=lease,
                last_alive=last_alive,
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
            missing = {v: whole_shards(p.store, v, b) for v, b in missing.items()}
        total = sum(p.block_count(v) for v in p.variables)
        todo = sum(len(b) for b in missing.values())
        if complete:
            checked = "; every chunk decodes" if verify or cfg.output.verify else ""
            echo(f"{cfg.output.path} is already complete{checked}; nothing to do")
            return RunSummary(total, 0, 0, 0, time.perf_counter() - t0, already_complete=True)
        if todo < total:
            echo(f"resuming: {total - todo} of {total} blocks already written, {todo} to go")
        faces = any(isinstance(r, BlockRecipe) for r in p.recipes.values())
        echo(tiles_line(p, plans, planned_reads(p.groups, plans, p.input, faces), worker, client))
        for why in p.whole_graph():
            echo(f"note: planned as one graph of the whole array ({why})")
        progress_lines = Progress(todo, echo=echo, enabled=progress)
        try:
            done = _write(p, plans, missing, client, lease, progress_lines)
        except KeyboardInterrupt:
            _mark_stopped(p.store, lease)
            raise
        except Exception as err:
            _mark_stopped(p.store, lease)
            if isinstance(err, RunError):
                raise
            lost = isinstance(err, LeaseLost) or (lease is not None and lease.lost is not None)
            raise RunError(_explain(err), resumable=not lost) from err
        peaks = {"driver": _peak_memory_here()}
        if client is not None:
            try:  # a summary figure never fails a finished run
                peaks.update(client.run(_peak_memory_here))
            except Exception as err:
                log.warning("no peak memory from the workers: %s", _cause(err))
    seconds = time.perf_counter() - t0
    read = done.read_bytes + _planned_uncounted(p, plans, done)
    notes = [line for line in (done.workers_line(),) if line]
    return RunSummary(
        total,
        todo,
        read,
        done.written,
        seconds,
        peaks,
        repaired=p.repaired,
        report=report,
        notes=notes,
        bytes_in=p.bytes_in,
    )


def _notes(p: Plan) -> list[str]:
    """The lines a run prints before it starts: what it writes, and what to know about it."""
    cfg = p.config
    lines = [
        f"daskgrad {daskgrad.__version__}: {len(p.variables)} output variable(s) -> {cfg.output.path}"
    ]
    glob_note = resolve_input(cfg.input.path).note(cfg.input.path)
    if glob_note:
        lines.append(glob_note)
    used = cfg.input.variables or [str(v) for v in p.input.data_vars]
    for v, (absent, total, fill) in absent_chunks(cfg.input, used).items():
        lines.append(
            f"note: input variable {v!r}: {absent} of {total} chunks are not in the store; "
            f"zarr reads them as the fill value {fill}"
        )
    note = small_blocks_note(p)
    if note:
        lines.append(note)
    return lines


def _write(
    p: Plan,
    plans: Mapping[str, Any],
    missing: dict[str, BlockBitmap],
    client: Any,
    lease: Lease | None,
    progress: Progress,
) -> WriteReport:
    """Write the missing blocks tile by tile, then check and mark the store complete."""
    cfg = p.config
    programs = programs_for(p, missing)
    specs = [s for prog in set(programs.values()) for s in getattr(prog, "face_specs", list)()]
    if specs:
        face_store.create(p.store, specs)
    done = TileWriter(programs).run(
        iter_tiles(p.groups, plans, missing),
        client=client,
        stall_timeout=cfg.cluster.stall_timeout,
        progress=progress,
        allowed_failures=cfg.cluster.allowed_failures,
        connect_timeout=float(cfg.cluster.connect_timeout),
    )
    face_store.remove(p.store)
    _check_before_complete(p, lease)
    zstore.finalize(p.store, p.variables, p.expected())
    return done


def _planned_uncounted(p: Plan, plans: Mapping[str, Any], done: WriteReport) -> int:
    """Bytes read by tiles whose program could not count them (the whole-array graph's): the
    plan's figure for those variables."""
    if not done.uncounted:
        return 0
    graph_groups = [g for g in p.groups if isinstance(p.recipes.get(g.source), str)]
    return planned_reads(graph_groups, plans, p.input, faces=False)


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
