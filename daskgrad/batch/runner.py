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
import logging
import resource
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import daskgrad
from daskgrad.batch import faces as face_store
from daskgrad.batch import store as zstore
from daskgrad.batch.budget import size_text
from daskgrad.batch.config import ConfigError, RunConfig
from daskgrad.batch.failures import RunError, cause, explain
from daskgrad.batch.graph_tasks import Program
from daskgrad.batch.grid import BlockBitmap
from daskgrad.batch.inputs import absent_chunks
from daskgrad.batch.lease import Lease, LeaseHeld, LeaseLost, read_lease
from daskgrad.batch.paths import is_url, resolve_input
from daskgrad.batch.prepare import prepare_store
from daskgrad.batch.provenance import describe_change, input_digest
from daskgrad.batch.remote import RemoteStore
from daskgrad.batch.run_plan import Plan, plan, plan_lines, small_blocks_note
from daskgrad.batch.schedule import (
    check_memory,
    iter_tiles,
    planned_reads,
    tile_plans,
    tiles_line,
    worker_for_run,
)
from daskgrad.batch.shards import whole_shards
from daskgrad.batch.tile_tasks import make_programs
from daskgrad.batch.tiles import Tile
from daskgrad.batch.writer import (
    Progress,
    TileWriter,
    WriteReport,
    worker_infos,
)
from daskgrad.blocks import BlockRecipe

__all__ = ["Plan", "RunError", "RunSummary", "check_memory", "plan", "prepare_store", "run"]

log = logging.getLogger("daskgrad")


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
            raise RunError(explain(err)) from err
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
            done = _write(p, plans, missing, client, lease, progress_lines, workers)
        except KeyboardInterrupt:
            _mark_stopped(p.store, lease)
            raise
        except Exception as err:
            _mark_stopped(p.store, lease)
            if isinstance(err, RunError):
                raise
            lost = isinstance(err, LeaseLost) or (lease is not None and lease.lost is not None)
            raise RunError(explain(err), resumable=not lost) from err
        peaks = {"driver": _peak_memory_here()}
        if client is not None:
            try:  # a summary figure never fails a finished run
                peaks.update(client.run(_peak_memory_here))
            except Exception as err:
                log.warning("no peak memory from the workers: %s", cause(err))
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
    lines += plan_lines(p)
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
    lanes: int = 1,
) -> WriteReport:
    """Write the missing blocks tile by tile, then check and mark the store complete."""
    cfg = p.config
    programs = programs_for(p, missing)
    specs = [s for prog in set(programs.values()) for s in getattr(prog, "face_specs", list)()]
    if specs:
        face_store.create(p.store, specs)
    done = TileWriter(programs).run(
        iter_tiles(p.groups, plans, missing, lanes),
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
            f"cannot start or reach the cluster ({describe(cfg.cluster)}): {cause(err)}; "
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
