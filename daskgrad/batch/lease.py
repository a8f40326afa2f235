"""One run at a time per output store: a lease in the store, renewed while the run is alive.

A run that is stopped (``SIGSTOP``, a suspended job) or dead must not keep a store forever,
and must not write into a store that another run has since taken over. So:

* the lease is a small JSON file ``daskgrad.lease.json`` at the root of the output store:
  owner (a random run id), host, pid, and an expiry time; beside it an empty
  ``daskgrad.lease.lock`` that is only ever locked;
* the running driver renews it in a background thread every third of its duration; a stopped
  or dead owner stops renewing, and after ``lease_seconds`` anyone may take the store over. A
  dead owner on the same host (its pid is gone) frees it at once, so a resume right after a
  crash needs no wait;
* every block write holds a shared ``flock`` on the lock file from its ownership check until
  its chunk is written (:func:`writing`, used by :func:`daskgrad.batch.store.write_block`), and so
  does every renewal; taking the store over needs the exclusive lock. So a run frozen in the
  middle of a chunk write keeps others out until it moves again, and a run that resumes
  after a takeover finds the lease names another run and stops before writing anything. The
  runner checks again before it marks the store complete. A run whose lease was taken over fails and never touches the
  store again;
* a finished or failed run marks its lease released (it keeps the file, so a stale writer
  still sees that the store is not its own).

What remains: ``flock`` is what fences. On a file system that does not honour it across
hosts (some NFS and Lustre mounts; check ``mount`` for ``flock``/``localflock``) a writer on
another host frozen between its check and its write can still land one chunk in a store
taken over meanwhile. Two runs that start on a store that does not exist yet at the same
instant both create it (there is no lease file to lock yet). Remote stores (``s3://`` ...)
get no lease at all.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX (Windows): the lease still works, without the write fence
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LEASE_FILE",
    "LOCK_FILE",
    "Lease",
    "LeaseHeld",
    "LeaseLost",
    "check_owner",
    "read_lease",
    "writing",
]

LEASE_FILE = "daskgrad.lease.json"
#: An empty file that is only ever locked (``flock``), never replaced while the store lives.
LOCK_FILE = "daskgrad.lease.lock"

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


@contextlib.contextmanager
def _locked(
    store: str, *, exclusive: bool, wait: float, create: bool = False
) -> Iterator[dict[str, Any] | None]:
    """Hold a ``flock`` on the store's lock file and yield the lease read under it.

    The lock file is never replaced (the lease file is, on every change), so a lock on it
    covers every later change of the lease. A store replaced meanwhile has a new lock file:
    after locking, the open file must still be the one at the path, else lock the new one.
    Without a lock file (a store being created, or not ours) the lease is read unlocked.
    Raises :class:`LeaseHeld` when the lock is not free within ``wait`` seconds.
    """
    path = os.path.join(store, LOCK_FILE)
    deadline = time.monotonic() + wait
    if fcntl is None:
        yield read_lease(store)
        return
    while True:
        try:
            fd = os.open(path, os.O_RDONLY | (os.O_CREAT if create else 0), 0o644)
        except FileNotFoundError:
            yield read_lease(store)
            return
        try:
            while True:
                try:
                    fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                    break
                except OSError as err:
                    if err.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() > deadline:
                        raise LeaseHeld(
                            f"the lease of {store!r} stays locked: its owner is in the middle of "
                            "writing (a stopped process keeps it until it continues)"
                        ) from None
                    time.sleep(0.005)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                continue  # the store was replaced while we waited: lock the new lock file
            yield read_lease(store)
            return
        finally:
            os.close(fd)  # releases the lock


@contextlib.contextmanager
def writing(store: str, run_id: str, *, wait: float = 120.0) -> Iterator[None]:
    """Write inside this block only while the store's lease names ``run_id`` (shared lock).

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> lease = Lease(d, seconds=60); lease.acquire()
    >>> with writing(d, lease.run_id):
    ...     pass  # write the chunk here
    """
    with _locked(store, exclusive=False, wait=wait) as lease:
        _require_owner(store, run_id, lease)
        yield


def _write_lease(store: str, lease: dict[str, Any]) -> None:
    # Temporary file then rename: a reader sees the old lease or the new one, never half.
    path = _lease_path(store)
    tmp = f"{path}.{uuid.uuid4().hex}.partial"
    try:
        with open(tmp, "w") as f:
            json.dump(lease, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk must not leave the temporary behind
            os.unlink(tmp)
        raise


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
    daskgrad.batch.lease.LeaseLost: ...
    """
    _require_owner(store, run_id, read_lease(store))


def _require_owner(store: str, run_id: str, lease: dict[str, Any] | None) -> None:
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
    daskgrad.batch.lease.LeaseHeld: ...
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

    def acquire(self, *, wait: float | None = None) -> None:
        """Take the store; the store directory must exist.

        Under the exclusive lock, so a previous owner frozen in the middle of a chunk write or
        a renewal (holding the shared lock) keeps the store until it moves again; after
        ``wait`` seconds (default: the lease's duration, at most 10 s) this raises LeaseHeld.
        """
        wait = min(10.0, self.seconds) if wait is None else wait
        with _locked(self.store, exclusive=True, wait=wait, create=True) as lease:
            if (
                lease is not None
                and lease.get("owner") != self.run_id
                and _is_live(lease, time.time())
            ):
                raise LeaseHeld(
                    f"the output {self.store!r} is in use by {describe(lease)}; wait for it "
                    "to finish, or, if it is stopped for good, until its lease expires"
                )
            _write_lease(self.store, self._record())
        self.held = True

    def renew(self) -> bool:
        """Push the expiry on; False (and :attr:`lost` set) if someone else owns the store now.

        Under the shared lock, like a block write: this run's own writers do not hold it up,
        and a takeover (exclusive) cannot slip in between the check and the new lease.
        """
        with _locked(self.store, exclusive=False, wait=self.seconds) as lease:
            if lease is None or lease.get("owner") != self.run_id:
                self.lost = describe(lease) if lease else "the store was replaced"
                return False
            _write_lease(self.store, self._record())
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not self.renew():
                    log.info("lost the lease on %s to %s", self.store, self.lost)
                    return
            except LeaseHeld as err:  # a takeover holds the lock: the next renewal tells
                log.info("could not renew the lease on %s: %s", self.store, err)
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
        try:
            with _locked(self.store, exclusive=False, wait=10.0) as lease:
                if lease is not None and lease.get("owner") == self.run_id:
                    try:
                        _write_lease(self.store, self._record(released=True, expires=time.time()))
                    except OSError:  # a full disk: no lease at all is free as well
                        os.unlink(_lease_path(self.store))
        except (OSError, LeaseHeld) as err:
            log.warning("could not release the lease on %s: %s", self.store, err)
