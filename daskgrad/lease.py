"""One run at a time per output store: a lease in the store, renewed while the run is alive.

A run that is stopped (``SIGSTOP``, a suspended job) or dead must not keep a store forever,
and must not write into a store that another run has since taken over. So:

* the lease is a small JSON file ``daskgrad.lease.json`` at the root of the output store:
  owner (a random run id), host, pid, and an expiry time;
* the running driver renews it in a background thread every third of its duration; a stopped
  or dead owner stops renewing, and after ``lease_seconds`` anyone may take the store over. A
  dead owner on the same host (its pid is gone) frees it at once, so a resume right after a
  crash needs no wait;
* every block write checks, just before writing, that the lease still names its own run id
  (:func:`check_owner`, called by :func:`daskgrad.store.write_block`), and the runner checks
  again before it marks the store complete. A run whose lease was taken over fails and never
  touches the store again;
* a finished or failed run marks its lease released (it keeps the file, so a stale writer
  still sees that the store is not its own).

What remains: a plain file system has no fencing, so the check and the write are two steps. A
writer frozen between them (after its check, before its chunk lands) can still put one chunk
into a store another run took over meanwhile; the same holds for a renewal frozen between
reading the lease and writing it back. The window is one chunk's encode-and-write time.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = ["LEASE_FILE", "Lease", "LeaseHeld", "LeaseLost", "check_owner", "read_lease"]

LEASE_FILE = "daskgrad.lease.json"

log = logging.getLogger("daskgrad")


class LeaseHeld(RuntimeError):
    """Another live run owns the store."""


class LeaseLost(RuntimeError):
    """This run's lease was taken over (or the store replaced); it must stop writing."""


def _lease_path(store: str) -> str:
    return os.path.join(store, LEASE_FILE)


def read_lease(store: str) -> dict[str, Any] | None:
    """The lease recorded in a local store, or None if there is none (or it is unreadable)."""
    try:
        with open(_lease_path(store)) as f:
            lease = json.load(f)
    except (OSError, ValueError):
        return None
    return lease if isinstance(lease, dict) else None


def _write_lease(store: str, lease: dict[str, Any]) -> None:
    # Temporary file then rename: a reader sees the old lease or the new one, never half.
    path = _lease_path(store)
    tmp = f"{path}.{uuid.uuid4().hex}.partial"
    with open(tmp, "w") as f:
        json.dump(lease, f)
    os.replace(tmp, path)


def _start_ticks(pid: int) -> str | None:
    """The start time of a process in clock ticks (Linux), to tell a reused pid from the owner."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner_is_dead(lease: dict[str, Any]) -> bool:
    """True only when the owner ran on this host and its process is gone."""
    if lease.get("host") != socket.gethostname():
        return False
    pid = lease.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    ticks = lease.get("start")
    return ticks is not None and _start_ticks(pid) not in (None, ticks)


def _is_live(lease: dict[str, Any] | None, now: float) -> bool:
    if not lease or lease.get("released"):
        return False
    if float(lease.get("expires", 0)) <= now:
        return False
    return not _owner_is_dead(lease)


def describe(lease: dict[str, Any]) -> str:
    """``run 1a2b3c4d (host h, pid 42), lease until 2026-12-01T18:30:00Z``."""
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(lease.get("expires", 0))))
    return (
        f"run {str(lease.get('owner', '?'))[:8]} (host {lease.get('host', '?')}, pid "
        f"{lease.get('pid', '?')}), lease until {until}"
    )


def check_owner(store: str, run_id: str) -> None:
    """Raise :class:`LeaseLost` unless the store's lease names ``run_id``.

    Only the owner counts, not the expiry: an owner that was late renewing may go on as long
    as nobody else took the store.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> lease = Lease(d, seconds=60); lease.acquire()
    >>> check_owner(d, lease.run_id)
    >>> check_owner(d, "someone-else")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    daskgrad.lease.LeaseLost: ...
    """
    lease = read_lease(store)
    if lease is None or lease.get("owner") != run_id:
        who = "nobody (the store was replaced)" if lease is None else describe(lease)
        raise LeaseLost(
            f"the output {store!r} was taken over by another run ({who}); this run "
            f"{run_id[:8]} stopped writing and left the store to it"
        )


@dataclass
class Lease:
    """This run's lease on a local output store.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> lease = Lease(d, seconds=60)
    >>> lease.check_free(); lease.acquire(); lease.held
    True
    >>> Lease(d, seconds=60).check_free()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    daskgrad.lease.LeaseHeld: ...
    >>> lease.release(); Lease(d, seconds=60).check_free()
    """

    store: str
    seconds: float = 60.0

    def __post_init__(self) -> None:
        self.run_id = uuid.uuid4().hex
        self.held = False
        self.lost: str | None = None  # why, once this run has lost the store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self, **extra: Any) -> dict[str, Any]:
        now = time.time()
        return {
            "owner": self.run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "start": _start_ticks(os.getpid()),
            "renewed": now,
            "expires": now + self.seconds,
            **extra,
        }

    def check_free(self) -> None:
        """Raise :class:`LeaseHeld` if another live run owns the store (a missing store is free)."""
        lease = read_lease(self.store)
        if lease is not None and lease.get("owner") != self.run_id and _is_live(lease, time.time()):
            raise LeaseHeld(
                f"the output {self.store!r} is in use by {describe(lease)}; wait for it to "
                "finish, or, if it is stopped for good, until its lease expires"
            )

    def acquire(self) -> None:
        """Take the store (after :meth:`check_free`); the store directory must exist."""
        self.check_free()
        _write_lease(self.store, self._record())
        self.held = True

    def renew(self) -> bool:
        """Push the expiry on; False (and :attr:`lost` set) if someone else owns the store now."""
        lease = read_lease(self.store)
        if lease is None or lease.get("owner") != self.run_id:
            self.lost = describe(lease) if lease else "the store was replaced"
            return False
        _write_lease(self.store, self._record())
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.renew():
                    log.error("lost the lease on %s to %s", self.store, self.lost)
                    return
            except OSError as err:  # a full or flaky disk: try again next period
                log.warning("could not renew the lease on %s: %s", self.store, err)

    def start_renewing(self) -> None:
        """Renew in a daemon thread until :meth:`release`."""
        self._thread = threading.Thread(target=self._renew_loop, name="daskgrad-lease", daemon=True)
        self._thread.start()

    def ensure(self) -> None:
        """Raise :class:`LeaseLost` unless this run still owns the store."""
        check_owner(self.store, self.run_id)

    def release(self) -> None:
        """Stop renewing; mark the lease released if it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not self.held:
            return
        self.held = False
        lease = read_lease(self.store)
        if lease is not None and lease.get("owner") == self.run_id:
            try:
                _write_lease(self.store, self._record(released=True, expires=time.time()))
            except OSError as err:
                log.warning("could not release the lease on %s: %s", self.store, err)
