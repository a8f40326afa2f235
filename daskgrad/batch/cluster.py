"""Cluster setup: ``cluster.kind`` from the YAML config -> a context manager yielding a Client.

One small branch per kind, chosen at a single dispatch point (:func:`open_client`):

========  =================================================================================
kind      what runs the graph
========  =================================================================================
threads   no cluster: dask's threaded scheduler in this process (``open_client`` yields None)
local     a ``distributed.LocalCluster`` of worker processes, every socket on 127.0.0.1
address   an existing scheduler (``tcp://`` or ``tls://``); only our Client is closed
slurm,    a dask-jobqueue cluster (``pip install "daskgrad[hpc]"``), scaled to
pbs, sge, ``jobqueue.jobs`` jobs
lsf
========  =================================================================================

Safety defaults (docs/reliability.md): schedulers and dashboards bind to loopback unless
a job queue needs the scheduler reachable from compute nodes; every worker gets
``ZARR_ARRAY__WRITE_EMPTY_CHUNKS=True`` so all-NaN blocks are written and resume can finish;
``distributed.scheduler.allowed-failures`` comes from the config.

The config is a validated ``daskgrad.batch.config.ClusterConfig`` (or any object with its
attributes); the kinds are the config's, checked there once. ``distributed`` and
``dask_jobqueue`` are imported inside the branches that need them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import dask

from daskgrad.batch._malloc import malloc_env
from daskgrad.batch.jobqueue import (
    _SUBMIT_COMMANDS,
    JOB_NAME,
    _jobqueue_cluster_class,
    _jobqueue_section,
    _worker_env,
    jobqueue_kwargs,
)

if TYPE_CHECKING:
    import distributed

__all__ = ["dashboard_link", "describe", "open_client"]

logger = logging.getLogger(__name__)


# Loopback with a random port: an unauthenticated dashboard must never face the network
# (docs/reliability.md); users reach it through an ssh tunnel.
_LOOPBACK_ANY_PORT = "127.0.0.1:0"
# Dashboard state of the clients that open_client made: False = off, True = on, on loopback.
_DASHBOARD_STATE: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_client(
    cfg: Any, *, extra_env: Mapping[str, str] | None = None
) -> Iterator[distributed.Client | None]:
    """Start (or connect to) the cluster ``cfg`` describes and yield a Client for it.

    Everything this context starts is closed when it exits, also on an exception or
    ``KeyboardInterrupt``; a remote cluster (``kind: address``) is left running and only the
    Client is closed.

    Parameters
    ----------
    cfg
        A cluster config (``daskgrad.batch.config.ClusterConfig`` or any object with the same
        attributes: ``kind``, ``n_workers``, ``threads_per_worker``, ``memory_limit``,
        ``address``, ``tls``, ``dashboard``, ``allowed_failures``, ``jobqueue``).
    extra_env
        More environment variables for the workers (``local``: inherited by the worker
        processes; job queues: ``export`` lines in the job script). ``WORKER_ENV`` always wins.
        Ignored (logged at INFO) for ``threads`` and ``address``: no worker is started there.

    Yields
    ------
    distributed.Client or None
        ``None`` for ``kind: threads``: inside the context ``dask.config`` selects the threaded
        scheduler with ``n_workers * threads_per_worker`` threads, so plain ``.compute()``
        uses it. A Client otherwise, set as dask's default scheduler.

    Raises
    ------
    ValueError
        A config that cannot work (unknown kind, ``tls://`` without ``tls``, a jobqueue key the
        batch system's class does not take, ...). The message names the key.
    ImportError
        A job-queue kind without dask-jobqueue installed (``pip install "daskgrad[hpc]"``).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> cfg = SimpleNamespace(kind="threads", n_workers=2, threads_per_worker=2)
    >>> with open_client(cfg) as client:
    ...     print(client, dask.config.get("scheduler"), dask.config.get("num_workers"))
    None threads 4
    """
    kind = cfg.kind
    branch: contextlib.AbstractContextManager[Any]
    if kind == "threads":
        branch = _open_threads(cfg)
        unused_env = extra_env
    elif kind == "local":
        branch = _open_local(cfg, extra_env)
        unused_env = None
    elif kind == "address":
        branch = _open_address(cfg)
        unused_env = extra_env
    else:
        branch = _open_jobqueue(cfg, extra_env)
        unused_env = None
    if unused_env:
        logger.info(
            "cluster.kind %s starts no workers; extra_env %s is not applied",
            kind,
            sorted(unused_env),
        )
    with branch as client:
        yield client


def dashboard_link(client: distributed.Client | None) -> str | None:
    """The dashboard URL of ``client``'s scheduler, or ``None`` when there is no dashboard.

    For clients made by :func:`open_client` this follows ``cluster.dashboard``: ``None`` when
    it is off (distributed still advertises its HTTP endpoint then, which would be a misleading
    link), and a ``127.0.0.1`` URL when it is on, because that is where open_client binds it
    (for a job-queue cluster: on the machine running ``daskgrad``; use an ssh tunnel).
    For other clients it is the link the scheduler advertises, if any.

    Examples
    --------
    >>> dashboard_link(None) is None    # kind: threads
    True
    """
    if client is None:
        return None
    state = _DASHBOARD_STATE.get(client)
    if state is False:
        return None
    try:
        link = client.dashboard_link
    except Exception:  # the scheduler runs no HTTP service, or it is unreachable
        return None
    if not link:
        return None
    if state is True:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(link)
        link = urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port}"))
    return link


def describe(cfg: Any) -> str:
    """One line describing the cluster ``cfg`` asks for, for logs.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> describe(NS(kind="local", n_workers=2, threads_per_worker=1, memory_limit="4GiB",
    ...             dashboard=False, allowed_failures=3))
    'local cluster: 2 workers x 1 thread, 4GiB each, bound to 127.0.0.1, no dashboard'
    >>> describe(NS(kind="threads", n_workers=2, threads_per_worker=4))
    'no cluster: dask threaded scheduler, 8 threads'
    """
    kind = cfg.kind
    if kind == "threads":
        n = _thread_count(cfg)
        return f"no cluster: dask threaded scheduler, {n} thread{_s(n)}"
    dash = "dashboard on 127.0.0.1" if getattr(cfg, "dashboard", False) else "no dashboard"
    failures = getattr(cfg, "allowed_failures", None)
    retry = "" if failures in (None, 3) else f", allowed-failures {failures}"
    if kind == "local":
        n, t = cfg.n_workers, cfg.threads_per_worker
        mem = cfg.memory_limit
        mem = "memory limit auto" if str(mem) == "auto" else f"{mem} each"
        return (
            f"local cluster: {n} worker{_s(n)} x {t} thread{_s(t)}, {mem}, "
            f"bound to 127.0.0.1, {dash}{retry}"
        )
    if kind == "address":
        tls = " (TLS)" if getattr(cfg, "tls", None) is not None else ""
        return f"existing cluster at {cfg.address}{tls}"
    jq = getattr(cfg, "jobqueue", None)
    if jq is None:
        return f"{kind} cluster: no jobqueue settings"
    size = ", ".join(
        text
        for text in (
            f"{jq.cores} cores" if getattr(jq, "cores", None) is not None else "",
            f"{jq.memory}" if getattr(jq, "memory", None) is not None else "",
            f"queue {jq.queue}" if getattr(jq, "queue", None) else "",
            f"walltime {jq.walltime}" if getattr(jq, "walltime", None) else "",
        )
        if text
    )
    jobs = getattr(jq, "jobs", None)
    count = f"{jobs} job{_s(jobs)}" if jobs is not None else f"{cfg.n_workers} workers"
    tls = ", TLS" if getattr(jq, "security", None) else ""
    return f"{kind} cluster: {count} of {size or 'site defaults'}{tls}, {dash}{retry}"


# --------------------------------------------------------------------------------------------
# One branch per kind
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _open_threads(cfg: Any) -> Iterator[None]:
    from daskgrad.batch._malloc import tune_this_process

    tune_this_process(_limit_bytes(cfg))  # the blocks are computed in this process
    with dask.config.set(scheduler="threads", num_workers=_thread_count(cfg)):
        yield None


@contextlib.contextmanager
def _open_local(cfg: Any, extra_env: Mapping[str, str] | None) -> Iterator[distributed.Client]:
    from distributed import Client, LocalCluster

    dashboard = bool(getattr(cfg, "dashboard", False))
    with contextlib.ExitStack() as stack:
        # The Scheduler reads allowed-failures when it starts; worker processes are spawned (also
        # when the Nanny restarts a killed one) with os.environ as it is then, so both stay set
        # for the whole life of the cluster.
        stack.enter_context(_scheduler_config(cfg))
        # The Nanny applies pre-spawn-environ to each worker process it starts (it defaults to
        # MALLOC_TRIM_THRESHOLD_=65536); block buffers are reused instead (daskgrad.batch._malloc).
        # It also writes those variables into this process's os.environ and, for the next
        # cluster, prefers os.environ's values to the config's: so they are set here too, for
        # the cluster's life, and put back after (a second run in one process gets its own).
        malloc = malloc_env(_limit_bytes(cfg))
        stack.enter_context(_patched_environ({**_worker_env(extra_env), **malloc}))
        spawn_env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
        spawn_env.update(malloc)
        stack.enter_context(dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_env}))
        cluster = stack.enter_context(
            LocalCluster(
                n_workers=cfg.n_workers,
                threads_per_worker=cfg.threads_per_worker,
                memory_limit=cfg.memory_limit,
                processes=True,
                host="127.0.0.1",
                # Default ":8787" is 0.0.0.0 (docs/reliability.md).
                dashboard_address=_LOOPBACK_ANY_PORT if dashboard else None,
                silence_logs=logging.WARNING,
            )
        )
        client = stack.enter_context(Client(cluster))
        _DASHBOARD_STATE[client] = dashboard
        yield client


@contextlib.contextmanager
def _open_address(cfg: Any) -> Iterator[distributed.Client]:
    from distributed import Client, Security

    address = getattr(cfg, "address", None)
    if not address:
        raise ValueError("cluster.address: required for kind address (e.g. tcp://scheduler:8786)")
    tls = getattr(cfg, "tls", None)
    is_tls = str(address).startswith("tls://")
    if is_tls and tls is None:
        raise ValueError(
            f"cluster.address: {address} is a tls:// address but cluster.tls is not set; "
            "give cluster.tls.ca_file, cluster.tls.cert and cluster.tls.key"
        )
    if tls is not None and not is_tls:
        raise ValueError(
            f"cluster.tls: set, but cluster.address {address} is not a tls:// address; "
            "use tls://host:port (encryption is required when tls is given)"
        )
    security = None
    if tls is not None:
        security = Security(
            tls_ca_file=_path_or_none(tls.ca_file),
            tls_client_cert=_path_or_none(tls.cert),
            tls_client_key=_path_or_none(tls.key),
            require_encryption=True,
        )
    failures = getattr(cfg, "allowed_failures", None)
    if failures not in (None, 3):
        # daskgrad counts worker deaths per tile itself; the scheduler's own count per task is
        # its setting, which a client cannot change remotely.
        logger.warning(
            "cluster.allowed_failures=%s counts worker deaths per tile; the existing "
            "scheduler also stops a task after distributed.scheduler.allowed-failures deaths "
            "(its own setting): raise that where the scheduler starts",
            failures,
        )
    timeout = float(getattr(cfg, "connect_timeout", None) or 30.0)
    # distributed's Client waits forever for a server that accepts and never answers (measured:
    # 650 s and counting); ask for the scheduler's identity first, under a deadline of our own.
    _probe_scheduler(str(address), security, timeout)
    # Closing this Client leaves the remote scheduler and workers running, as they should.
    client = Client(address, security=security, timeout=timeout)
    try:
        yield client
    finally:
        _close_client(client)


def _close_client(client: Any) -> None:
    """Close a Client; one whose scheduler is gone is closed without distributed's tracebacks
    of its reconnection attempts (the run has said in one line what happened)."""
    if client.status == "running":
        client.close()
        return
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.suppress(Exception):
            client.close(timeout=5)
    finally:
        logging.disable(logging.NOTSET)


def _probe_scheduler(address: str, security: Any, timeout: float) -> None:
    """Raise OSError unless ``address`` answers as a dask scheduler within ``timeout`` seconds.

    Examples
    --------
    >>> _probe_scheduler("tcp://127.0.0.1:1", None, 2.0)  # doctest: +SKIP
    Traceback (most recent call last):
    OSError: tcp://127.0.0.1:1 did not answer as a dask scheduler within 2 s (cluster.connect_timeout): ...
    """
    import asyncio

    from distributed.comm import connect

    kwargs = security.get_connection_args("client") if security is not None else {}

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout, **kwargs)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    try:
        reply = asyncio.run(asyncio.wait_for(identity(), timeout))
    except (asyncio.TimeoutError, TimeoutError) as err:
        raise OSError(
            f"{address} did not answer as a dask scheduler within {timeout:g} s "
            "(cluster.connect_timeout)"
        ) from err
    if not isinstance(reply, dict) or reply.get("type") != "Scheduler":
        raise OSError(f"{address} answered, but not as a dask scheduler")


@contextlib.contextmanager
def _open_jobqueue(cfg: Any, extra_env: Mapping[str, str] | None) -> Iterator[distributed.Client]:
    from distributed import Client

    kind = cfg.kind
    kwargs = jobqueue_kwargs(cfg, extra_env=extra_env)  # validates before anything starts
    cluster_cls = _jobqueue_cluster_class(kind)
    jq = _jobqueue_section(cfg, kind)
    submit = _SUBMIT_COMMANDS[kind]
    if getattr(jq, "jobs", None) != 0 and shutil.which(submit) is None:
        # dask-jobqueue would start a scheduler, fail to submit in a background task (two
        # tracebacks) and wait for workers forever. (0 jobs submits nothing.)
        raise ValueError(
            f"cluster.kind: {kind} submits worker jobs with {submit!r}, which is not on PATH "
            "here; run daskgrad on a login node of the cluster, or use kind: local"
        )
    dashboard = bool(getattr(cfg, "dashboard", False))
    # The scheduler must face the compute nodes (pick the network with jobqueue.interface), but
    # its HTTP server need not: with dashboard_address None distributed still serves its
    # info/JSON/proxy routes on 0.0.0.0:8787, so keep it on loopback and only switch the
    # dashboard itself off.
    scheduler_options: dict[str, Any] = {"dashboard_address": _LOOPBACK_ANY_PORT}
    if not dashboard:
        scheduler_options["dashboard"] = False
    cluster_kwargs: dict[str, Any] = {"scheduler_options": scheduler_options}
    if getattr(jq, "security", None):
        cluster_kwargs["security"] = True  # TLS with temporary certificates (needs cryptography)
        if getattr(jq, "shared_temp_directory", None) is not None:
            cluster_kwargs["shared_temp_directory"] = str(jq.shared_temp_directory)

    with contextlib.ExitStack() as stack:
        stack.enter_context(_scheduler_config(cfg))
        cluster = stack.enter_context(
            cluster_cls(job_name=JOB_NAME, silence_logs=logging.WARNING, **cluster_kwargs, **kwargs)
        )
        jobs = getattr(jq, "jobs", None)
        if jobs is not None:
            cluster.scale(jobs=jobs)
        else:
            cluster.scale(n=cfg.n_workers)
        client = stack.enter_context(Client(cluster))
        _DASHBOARD_STATE[client] = dashboard
        yield client


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _limit_bytes(cfg: Any) -> int | None:
    """``memory_limit`` in bytes, or None for ``auto``/unset."""
    limit = getattr(cfg, "memory_limit", None)
    if not isinstance(limit, str) or limit == "auto":
        return None
    from dask.utils import parse_bytes

    return int(parse_bytes(limit))


def _thread_count(cfg: Any) -> int:
    return int(cfg.n_workers) * int(cfg.threads_per_worker)


def _s(n: Any) -> str:
    return "" if n == 1 else "s"


def _path_or_none(value: Any) -> str | None:
    return None if value is None else os.fspath(value)


@contextlib.contextmanager
def _patched_environ(updates: Mapping[str, str]) -> Iterator[None]:
    """Set ``updates`` in ``os.environ``; put back the previous values (or absence) on exit."""
    saved = {key: os.environ.get(key) for key in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# The scheduler's guess of network bandwidth when it decides where a task runs. At the default
# (100 MB/s) moving a whole input block to an idle worker looks cheaper than waiting for the
# worker that holds it, so blocks travelled for their own kernels (measured: 4.9x the halo
# bytes on 2 local workers). A low guess keeps every kernel with its block; only faces travel
# (0.9x). See benchmarks/bench_transfer.py.
SCHEDULER_BANDWIDTH = 1_000_000


def _scheduler_config(cfg: Any) -> contextlib.AbstractContextManager[Any]:
    settings: dict[str, Any] = {"distributed.scheduler.bandwidth": SCHEDULER_BANDWIDTH}
    failures = getattr(cfg, "allowed_failures", None)
    if failures is not None:
        # Worker deaths are counted per tile by the writer (cluster.allowed_failures); the
        # scheduler's count per task (every task running on a dying worker counts) would stop
        # a preempted run long before, so it only backs ours up.
        settings["distributed.scheduler.allowed-failures"] = max(SCHEDULER_FAILURES, int(failures))
    return dask.config.set(settings)


#: The scheduler's own limit of worker deaths per task, behind daskgrad's per tile.
SCHEDULER_FAILURES = 100
