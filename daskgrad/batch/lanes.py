"""Tiles on a distributed cluster: one lane per worker, workers that come and go, a watchdog.

:class:`ClusterRun` is :meth:`daskgrad.batch.writer.TileWriter.run` on a cluster. Each worker
has a :class:`_Lane`: one column of tiles, one tile in flight, submitted pinned to that worker
(loosely: if the worker leaves, the scheduler runs its tasks elsewhere). Every second the
scheduler's record of workers is read again: a worker that joined gets a lane and the next
column; one that left has its tile in flight *draining* (finished elsewhere) and the rest of its
column handed to the next free lane. Whether it was retired or lost comes from the scheduler's
events about it; deaths are counted per tile in flight. :class:`_Watchdog` ends a run that
writes nothing for ``stall_timeout`` seconds while workers exist, or whose scheduler is gone.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from daskgrad.batch.tiles import Tile

if TYPE_CHECKING:
    from daskgrad.batch.writer import TileWriter, WriteReport

__all__ = [
    "ClusterRun",
    "SchedulerLost",
    "Stalled",
    "TileDeaths",
    "stall_cause",
    "worker_infos",
]

log = logging.getLogger("daskgrad")


class Stalled(RuntimeError):
    """No block was written for longer than the stall timeout."""


class SchedulerLost(RuntimeError):
    """The connection to the scheduler is gone (the scheduler died or is unreachable)."""


class TileDeaths(RuntimeError):
    """Workers died too often while one tile was in flight (``cluster.allowed_failures``)."""


def worker_infos(client: Any) -> dict[str, dict]:
    """The scheduler's record of every worker, by address, asked of the scheduler itself.

    Not ``client.scheduler_info()``: that returns the client's cached copy, which the client's
    own periodic refresh rewrites without workers; read at the wrong moment it lists none, and
    every worker would seem to have died and joined again.
    """
    try:
        identity = client.sync(client.scheduler.identity, n_workers=-1)
    except TypeError:  # older distributed: no n_workers argument
        identity = client.sync(client.scheduler.identity)
    return dict(identity["workers"])


def _running(infos: Mapping[str, Mapping]) -> list[str]:
    """The workers a lane may give tiles to: running ones (not paused, not retiring).

    Examples
    --------
    >>> _running({"tcp://b": {"status": "paused"}, "tcp://a": {"status": "running"}})
    ['tcp://a']
    """
    return sorted(a for a, w in infos.items() if w.get("status", "running") == "running")


def stall_cause(client: Any, seconds: float) -> str:
    """One line on why a cluster run wrote nothing for ``seconds``."""
    infos = worker_infos(client)
    paused = sorted(a for a, w in infos.items() if w.get("status") == "paused")
    head = f"no block written for {seconds:.0f} s (cluster.stall_timeout)"
    if paused:
        return (
            f"{head}: {len(paused)} of {len(infos)} worker(s) paused, their memory above "
            "distributed's pause threshold (80% of cluster.memory_limit); give workers more "
            "memory or set smaller input.chunks"
        )
    return f"{head}: workers are alive but finish no task (a hung read or write?)"


def _in_transit(err: BaseException) -> bool:
    """A result lost on its way from a worker (the worker died), not a task's own error."""
    return type(err).__name__ == "CommClosedError"


def _scheduler_answers(client: Any) -> bool:
    try:
        client.scheduler_info(n_workers=0)
        return getattr(client, "status", "running") == "running"
    except Exception:
        return False


def _count_from_events(client: Any, since: float, report: WriteReport) -> None:
    """Workers joined, retired and lost since ``since``, as the scheduler logged them (what the
    polling saw is kept where the scheduler has no events to give)."""
    try:
        events = client.get_events("all")
    except Exception:
        return
    joined = retired = died = 0
    for when, msg in events:
        if when < since or not isinstance(msg, dict):
            continue
        if msg.get("action") == "add-worker":
            joined += 1
        elif msg.get("action") == "remove-worker":
            if msg.get("expected") or _retired(client, str(msg.get("worker")), ""):
                retired += 1
            else:
                died += 1
    # The scheduler's word decides retired or lost: a polled worker may vanish before its
    # retirement is logged. Departures only polling saw (no event) still count.
    left = max(report.retired + report.died, retired + died)
    report.joined = max(report.joined, joined)
    report.retired = min(left, max(report.retired, retired))
    report.died = left - report.retired


def _retired(client: Any, address: str, last_status: str) -> bool:
    """Whether a worker that left was retired (gracefully: ``retire_workers``, a lifetime, a
    job's walltime) rather than lost, from the scheduler's events about it."""
    if last_status in ("closing_gracefully", "closing"):
        return True
    try:
        events = client.get_events(address)
    except Exception:  # an older or unreachable scheduler: nothing to tell by
        return False
    for _time, msg in events:
        if not isinstance(msg, dict):
            continue
        if msg.get("action") == "retired" or msg.get("status") == "closing_gracefully":
            return True
        if msg.get("action") == "remove-worker" and msg.get("expected"):
            return True
    return False


def _count_reads(report: WriteReport, nbytes: int | None) -> None:
    if nbytes is None:
        report.uncounted += 1
    else:
        report.read_bytes += nbytes


@dataclass
class _InFlight:
    """One submitted tile: its write futures, what each writes, and the futures handed over."""

    tile: Tile
    writes: list
    sizes: dict
    incoming: dict
    reads: int | None
    deaths: int = 0

    def harvest(self) -> tuple[int, int]:
        """Bytes and blocks written since the last call; raises a failed task's error."""
        pending, written, count = [], 0, 0
        for f in self.writes:
            if not f.done():
                pending.append(f)
                continue
            try:
                nbytes = int(f.result())
            except Exception as err:
                if f.status == "finished" and _in_transit(err):
                    pending.append(f)  # its worker died as we fetched it: it is computed again
                    continue
                raise
            written += nbytes
            count += self.sizes.get(f.key, 1)
        self.writes = pending
        return written, count

    @property
    def done(self) -> bool:
        return not self.writes


@dataclass
class _Lane:
    """One worker's column: the tiles left, the tile in flight, the futures handed over."""

    address: str
    tiles: deque = field(default_factory=deque)
    flight: _InFlight | None = None
    held: dict = field(default_factory=dict)

    @property
    def idle(self) -> bool:
        return self.flight is None and not self.tiles

    def assign(self, column: Iterable[Tile]) -> None:
        self.tiles = deque(column)
        self.held = {}

    def submit(self, writer: TileWriter, client: Any) -> None:
        tile = self.tiles.popleft()
        following = self.tiles[0] if self.tiles else None
        t = writer._tasks(tile, self.held, following)
        futures = client.get(
            t.graph,
            t.waits + t.handover,
            sync=False,
            workers=[self.address],
            allow_other_workers=True,
        )
        # The graph just sent refers to what was held; the scheduler keeps it for that graph.
        self.held = {}
        self.flight = _InFlight(
            tile,
            list(futures[: len(t.waits)]),
            {f.key: t.blocks.get(k, 1) for f, k in zip(futures, t.waits)},
            dict(zip(t.handover, futures[len(t.waits) :])),
            t.read_bytes,
        )

    def orphan(self) -> tuple[list[Tile], _InFlight | None]:
        """The worker left: the rest of its column (to start anew elsewhere) and its tile in
        flight (its tasks run elsewhere: loose restrictions)."""
        rest, flight = list(self.tiles), self.flight
        self.tiles, self.flight, self.held = deque(), None, {}
        return rest, flight

    def cancel(self, client: Any) -> None:
        futures = list(self.held.values())
        if self.flight is not None:
            futures += self.flight.writes + list(self.flight.incoming.values())
        if futures:
            client.cancel(futures)


class _Watchdog:
    """Ends a run that writes nothing for ``stall_timeout`` s while workers exist, or whose
    scheduler has been unreachable for ``connect_timeout`` s; a cluster with no worker yet (a
    job queue still starting them) is waited for, once said."""

    def __init__(self, client: Any, stall_timeout: float | None, connect_timeout: float) -> None:
        self.client = client
        self.stall_timeout = stall_timeout
        self.connect_timeout = connect_timeout
        self.last_write = time.monotonic()
        self.disconnected: float | None = None
        self.waiting_said = False

    def wrote(self) -> None:
        self.last_write = time.monotonic()

    def lost_line(self) -> str:
        address = getattr(getattr(self.client, "scheduler", None), "address", None) or "?"
        return (
            f"lost the connection to the scheduler at {address} (the scheduler stopped or is "
            "unreachable); the blocks written so far are kept"
        )

    def lost(self, err: BaseException) -> bool:
        """Whether ``err`` (from a future or a call) means the scheduler is gone."""
        return getattr(self.client, "status", "running") != "running" or (
            type(err).__name__ in ("FutureCancelledError", "CancelledError")
            and not _scheduler_answers(self.client)
        )

    def check_connection(self) -> None:
        status = getattr(self.client, "status", "running")
        now = time.monotonic()
        if status == "running":
            self.disconnected = None
            return
        self.disconnected = self.disconnected or now
        if status in ("closed", "closing") or now - self.disconnected > self.connect_timeout:
            raise SchedulerLost(self.lost_line())

    def check(self, infos: Mapping[str, Any]) -> None:
        now = time.monotonic()
        if not infos:
            if not self.waiting_said:
                log.warning("waiting for workers to join the cluster")
                self.waiting_said = True
            self.last_write = now
        elif self.stall_timeout is not None and now - self.last_write > self.stall_timeout:
            raise Stalled(stall_cause(self.client, now - self.last_write))


class ClusterRun:
    """One write on a distributed cluster: lanes per worker, draining tiles, the watchdog."""

    def __init__(
        self,
        writer: TileWriter,
        client: Any,
        report: WriteReport,
        wrote: Callable[[int, int], None],
        stall_timeout: float | None,
        allowed_failures: int | None,
        connect_timeout: float,
    ) -> None:
        self.writer = writer
        self.client = client
        self.report = report
        self.wrote = wrote
        self.allowed = allowed_failures
        self.watchdog = _Watchdog(client, stall_timeout, connect_timeout)
        self.lanes: dict[str, _Lane] = {}
        self.draining: list[_InFlight] = []
        self.requeued: deque[list[Tile]] = deque()
        self.seen: dict[str, str] = {}  # address -> last status seen
        self.source_done = False

    def _refresh(self, infos: Mapping[str, Mapping]) -> None:
        for address, info in infos.items():
            if address not in self.seen:
                self.report.joined += 1
            self.seen[address] = str(info.get("status", "running"))
        for address in [a for a in self.seen if a not in infos]:
            retired = _retired(self.client, address, self.seen.pop(address))
            if retired:
                self.report.retired += 1
            else:
                self.report.died += 1
            lane = self.lanes.pop(address, None)
            if lane is None:
                continue
            rest, flight = lane.orphan()
            if rest:
                self.requeued.appendleft(rest)
                self.report.handed_on += 1
            if flight is not None:
                if not retired:
                    flight.deaths += 1
                    self.report.most_deaths = max(self.report.most_deaths, flight.deaths)
                    self._check_deaths(flight)
                self.draining.append(flight)
                self.report.handed_on += 1

    def _check_deaths(self, flight: _InFlight) -> None:
        if self.allowed is not None and flight.deaths > self.allowed:
            tile = flight.tile
            name, blocks = next(iter(tile.blocks.items()))
            raise TileDeaths(
                f"{flight.deaths} worker(s) died while one tile (blocks of {name!r} from "
                f"{list(blocks)[:1]}) was in flight, more than cluster.allowed_failures "
                f"({self.allowed}) allows; raise cluster.allowed_failures or give workers more "
                "memory (cluster.memory_limit)"
            )

    def _finish(self, flight: _InFlight, lane: _Lane | None) -> None:
        self.writer._finished(flight.tile)
        self.report.tiles += 1
        _count_reads(self.report, flight.reads)
        if lane is not None:
            lane.held = flight.incoming
        # Else the futures handed over are only dropped, never cancelled: another tile's graph
        # may share their keys, and cancelling a key cancels whatever depends on it.
        flight.incoming = {}

    def _harvest(self) -> bool:
        """Collect what finished; True if any block was written or any tile finished."""
        moved = False
        for lane in self.lanes.values():
            flight = lane.flight
            if flight is None:
                continue
            nbytes, blocks = flight.harvest()
            self.wrote(nbytes, blocks)
            moved = moved or bool(blocks) or flight.done
            if flight.done:
                self._finish(flight, lane)
                lane.flight = None
        for flight in list(self.draining):
            nbytes, blocks = flight.harvest()
            self.wrote(nbytes, blocks)
            moved = moved or bool(blocks) or flight.done
            if flight.done:
                self._finish(flight, None)
                self.draining.remove(flight)
        return moved

    def _next_column(self, columns: Iterator[list[Tile]]) -> list[Tile] | None:
        if self.requeued:
            return self.requeued.popleft()
        if self.source_done:
            return None
        column = next(columns, None)
        self.source_done = column is None
        return column

    def _done(self) -> bool:
        return (
            self.source_done
            and not self.requeued
            and not self.draining
            and all(lane.idle for lane in self.lanes.values())
        )

    def run(self, columns: Iterator[list[Tile]]) -> None:
        started = time.time()
        try:
            self._run(columns)
        finally:
            _count_from_events(self.client, started, self.report)

    def _run(self, columns: Iterator[list[Tile]]) -> None:
        infos = worker_infos(self.client)
        self.report.workers_at_start = len(infos)
        self.seen = {a: str(w.get("status", "running")) for a, w in infos.items()}
        refreshed = time.monotonic()
        try:
            while True:
                now = time.monotonic()
                self.watchdog.check_connection()
                if now - refreshed > 1.0:
                    infos, refreshed = worker_infos(self.client), now
                    self._refresh(infos)
                for address in _running(infos):
                    if address not in self.seen:
                        continue  # left since the last refresh
                    lane = self.lanes.setdefault(address, _Lane(address))
                    if lane.flight is not None:
                        continue
                    if not lane.tiles:
                        column = self._next_column(columns)
                        if column is not None:
                            lane.assign(column)
                    if lane.tiles:
                        lane.submit(self.writer, self.client)
                if self._harvest():
                    self.watchdog.wrote()
                    continue
                if self._done():
                    return
                self.watchdog.check(infos)
                time.sleep(0.02)
        except (Stalled, TileDeaths, SchedulerLost):
            raise
        except Exception as err:
            if self.watchdog.lost(err):
                raise SchedulerLost(self.watchdog.lost_line()) from err
            raise
        finally:
            for lane in self.lanes.values():
                lane.cancel(self.client)
            for flight in self.draining:
                self.client.cancel(flight.writes)
