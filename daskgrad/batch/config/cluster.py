"""The ``cluster:`` section of the run configuration: where the computation runs.

Examples
--------
>>> ClusterConfig(kind="threads", memory_limit="2GiB").n_workers
2
>>> check_bytes("4GiB")
'4GiB'
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from dask.utils import parse_bytes
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    field_validator,
    model_validator,
)

from daskgrad.batch.config.errors import _fail, _show

__all__ = [
    "ADDRESS_SCHEMES",
    "CLUSTER_KINDS",
    "JOBQUEUE_KINDS",
    "ClusterConfig",
    "JobqueueConfig",
    "TLSConfig",
    "check_bytes",
]

#: Where a run can go: dask's threads, a LocalCluster, a running scheduler, or a job queue.
CLUSTER_KINDS = ("threads", "local", "address", "slurm", "pbs", "sge", "lsf")
#: The kinds that start dask-jobqueue clusters.
JOBQUEUE_KINDS = ("slurm", "pbs", "sge", "lsf")
ADDRESS_SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://")

ClusterKind = Literal["threads", "local", "address", "slurm", "pbs", "sge", "lsf"]

_WALLTIME = re.compile(r"^(?:\d{1,2}:[0-5]\d:[0-5]\d|\d+-(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d)$")
_FROZEN = ConfigDict(extra="forbid", strict=True, frozen=True)


def check_bytes(value: str, allow_auto: bool = False) -> str:
    if allow_auto and value == "auto":
        return value
    example = "'4GiB' or '500MB'" + (" or 'auto'" if allow_auto else "")
    try:
        size = parse_bytes(value) if value.strip() else None
    except (ValueError, TypeError):
        size = None
    if size is None:
        _fail(f"{_show(value)} is not a memory size; write e.g. {example}")
    if size <= 0:
        _fail(f"memory size must be positive, got {_show(value)}")
    return value


class JobqueueConfig(BaseModel):
    """Batch jobs for ``cluster.kind`` slurm, pbs, sge or lsf (``cluster.jobqueue:``).

    The keys map one to one onto the keyword arguments of dask-jobqueue's ``SLURMCluster`` etc.,
    except ``jobs`` (passed to ``cluster.scale(jobs=...)``). See docs/reliability.md.

    Attributes
    ----------
    cores, memory : int, str
        Per job. ``memory`` is a size such as ``32GiB``.
    walltime : str or None
        ``H:MM:SS``, ``HH:MM:SS`` or ``D-HH:MM:SS``; write it in quotes.
    jobs : int
        Number of jobs to start.
    security : bool
        TLS with temporary certificates (set ``shared_temp_directory`` so workers can read them).
    """

    model_config = _FROZEN

    cores: PositiveInt = Field(description="cores per job")
    memory: str = Field(description="memory per job, e.g. 32GiB")
    queue: str | None = Field(default=None, description="queue / partition")
    walltime: str | None = Field(default=None, description='"HH:MM:SS" or "D-HH:MM:SS", quoted')
    jobs: PositiveInt = Field(default=1, description="number of jobs (cluster.scale(jobs=...))")
    processes: PositiveInt | None = Field(default=None, description="worker processes per job")
    account: str | None = Field(default=None, description="account to charge")
    interface: str | None = Field(default=None, description="network interface, e.g. ib0")
    local_directory: str | None = Field(default=None, description="worker scratch directory")
    log_directory: str | None = Field(default=None, description="where job logs go")
    resource_spec: str | None = Field(default=None, description="PBS/SGE resource spec")
    python: str | None = Field(default=None, description="python executable on the nodes")
    job_extra_directives: list[str] = Field(
        default_factory=list, description="extra #SBATCH/#PBS/... lines"
    )
    job_script_prologue: list[str] = Field(
        default_factory=list, description="shell lines run before the worker starts"
    )
    worker_extra_args: list[str] = Field(
        default_factory=list, description='extra worker arguments, e.g. ["--lifetime", "55m"]'
    )
    security: bool = Field(default=False, description="TLS with temporary certificates")
    shared_temp_directory: str | None = Field(
        default=None, description="directory visible to all nodes (for the TLS certificates)"
    )

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        return check_bytes(value)

    @field_validator("walltime", mode="before")
    @classmethod
    def _walltime_type(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            _fail(
                f"got the number {value}; write the walltime as a quoted string such as "
                '"02:00:00" (YAML 1.1 tools read an unquoted 2:00:00 as the number 7200)'
            )
        return value

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, value: str | None) -> str | None:
        if value is not None and not _WALLTIME.match(value):
            _fail(f"{_show(value)} is not a walltime; write H:MM:SS, HH:MM:SS or D-HH:MM:SS")
        return value

    @model_validator(mode="after")
    def _processes(self) -> JobqueueConfig:
        if self.processes is not None and self.cores % self.processes:
            _fail(
                f"cores ({self.cores}) must be a multiple of processes ({self.processes})",
                field="processes",
            )
        return self


class TLSConfig(BaseModel):
    """Client certificates for a ``tls://`` scheduler address (``cluster.tls:``).

    Attributes
    ----------
    ca_file, cert, key : str
        Paths of the CA certificate, the client certificate and its private key (PEM).
    """

    model_config = _FROZEN

    ca_file: str = Field(description="CA certificate (PEM)")
    cert: str = Field(description="client certificate (PEM)")
    key: str = Field(description="client private key (PEM)")

    @field_validator("ca_file", "cert", "key")
    @classmethod
    def _nonempty(cls, value: str) -> str:
        if not value.strip():
            _fail("must not be empty")
        return value


class ClusterConfig(BaseModel):
    """Where the computation runs (``cluster:``).

    Attributes
    ----------
    kind : {'threads', 'local', 'address', 'slurm', 'pbs', 'sge', 'lsf'}
        ``threads``: dask's threaded scheduler, no distributed cluster; ``local``: a
        ``LocalCluster`` on 127.0.0.1; ``address``: connect to a running scheduler; the others:
        dask-jobqueue.
    n_workers, threads_per_worker : int
        For ``local``: the workers and their threads. For ``threads``: the thread pool has
        ``n_workers * threads_per_worker`` threads. Other kinds refuse values other than the
        defaults.
    memory_limit : str
        ``local``: per worker (a size such as ``4GiB``, or ``auto``: the machine's memory shared
        by the workers). ``threads``: the whole run's budget (``auto``: half the machine's
        memory). Tiles of blocks are sized to keep within it (docs/scale.md).
    address : str or None
        Scheduler address, required for (and only for) ``kind: address``.
    tls : TLSConfig or None
        Client certificates; required for, and only for, a ``tls://`` address.
    dashboard : bool
        Serve the dashboard on 127.0.0.1 on a random port (not with ``threads`` or ``address``).
    allowed_failures : int
        ``distributed.scheduler.allowed-failures``: how often a task may be on a dying worker.
    jobqueue : JobqueueConfig or None
        Required for (and only for) slurm, pbs, sge and lsf.
    connect_timeout : float
        Seconds to wait for a scheduler (``kind: address``) to answer as a dask scheduler.
    stall_timeout : float
        Seconds without a block written (while workers exist) after which a cluster run ends
        with exit status 1, naming the cause (e.g. workers paused for memory); not ``threads``.
    """

    model_config = _FROZEN

    kind: ClusterKind = Field(
        default="local", description="threads | local | address | slurm | pbs | sge | lsf"
    )
    n_workers: PositiveInt = Field(default=2, description="local workers (threads: see docs)")
    threads_per_worker: PositiveInt = Field(default=1, description="threads per local worker")
    memory_limit: str = Field(
        default="4GiB", description="per local worker, or the threads run's budget; or auto"
    )
    address: str | None = Field(default=None, description="tcp://, tls://, ucx:// or inproc://")
    tls: TLSConfig | None = Field(default=None, description="certificates for a tls:// address")
    dashboard: bool = Field(default=False, description="dashboard on 127.0.0.1, random port")
    allowed_failures: NonNegativeInt = Field(
        default=3, description="distributed.scheduler.allowed-failures"
    )
    jobqueue: JobqueueConfig | None = Field(
        default=None, description="job settings for slurm, pbs, sge and lsf"
    )
    connect_timeout: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] = Field(
        default=30.0, description="seconds to wait for a scheduler to answer (kind: address)"
    )
    stall_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = Field(
        default=600.0, description="seconds without a block written before a cluster run ends"
    )

    @field_validator("stall_timeout", mode="before")
    @classmethod
    def _stall_timeout(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)  # strict mode: let YAML's 60 mean 60.0 seconds
        return value

    @field_validator("memory_limit")
    @classmethod
    def _memory_limit(cls, value: str) -> str:
        return check_bytes(value, allow_auto=True)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(ADDRESS_SCHEMES):
            _fail(
                f"{_show(value)} has no protocol; write e.g. tcp://scheduler:8786 "
                f"(allowed: {', '.join(ADDRESS_SCHEMES)})"
            )
        return value

    @model_validator(mode="after")
    def _by_kind(self) -> ClusterConfig:
        kind = self.kind
        if kind == "address" and self.address is None:
            _fail("required when cluster.kind is 'address' (e.g. tcp://scheduler:8786)", "address")
        if kind != "address" and self.address is not None:
            _fail(f"only used with kind: address (kind is {kind!r})", "address")
        if self.tls is None and self.address is not None and self.address.startswith("tls://"):
            _fail("required for a tls:// address (ca_file, cert, key)", "tls")
        if self.tls is not None:
            if kind != "address":
                _fail(f"only used with kind: address (kind is {kind!r})", "tls")
            if not self.address or not self.address.startswith("tls://"):
                _fail(f"certificates need a tls:// address, got {_show(self.address)}", "tls")
        if kind in JOBQUEUE_KINDS and self.jobqueue is None:
            _fail(f"required when cluster.kind is {kind!r} (cores, memory, ...)", "jobqueue")
        if kind not in JOBQUEUE_KINDS and self.jobqueue is not None:
            _fail(f"only used with kind slurm, pbs, sge or lsf (kind is {kind!r})", "jobqueue")
        if (
            self.jobqueue is not None
            and self.jobqueue.resource_spec is not None
            and kind not in ("pbs", "sge")
        ):
            _fail(f"resource_spec is for pbs and sge only (kind is {kind!r})", "jobqueue")
        local_only = (
            () if kind == "threads" else ("n_workers", "threads_per_worker", "memory_limit")
        )
        if kind != "local":
            for name in local_only:
                if getattr(self, name) != ClusterConfig.model_fields[name].default:
                    hint = "; set jobqueue.jobs/cores/memory" if kind in JOBQUEUE_KINDS else ""
                    _fail(f"not used with kind {kind!r}{hint}", name)
        if kind in ("threads", "address") and self.dashboard:
            _fail(f"no dashboard is started with kind {kind!r}", "dashboard")
        if (
            kind == "threads"
            and self.allowed_failures != ClusterConfig.model_fields["allowed_failures"].default
        ):
            _fail("not used with kind 'threads' (no distributed scheduler)", "allowed_failures")
        if (
            kind == "threads"
            and self.stall_timeout != ClusterConfig.model_fields["stall_timeout"].default
        ):
            _fail("not used with kind 'threads' (no workers to watch)", "stall_timeout")
        return self
