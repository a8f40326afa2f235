"""Job-queue clusters (SLURM, PBS, SGE, LSF) through dask-jobqueue: keywords and job scripts.

The config's ``cluster.jobqueue`` section becomes the keyword arguments of dask-jobqueue's Job
class for the batch system, checked against its signature, with the worker environment every
worker needs. :func:`job_script` shows the script a job would be submitted with, starting
nothing; :mod:`daskgrad.batch.cluster` starts the cluster itself.

Examples
--------
>>> from types import SimpleNamespace as NS
>>> sorted(jobqueue_kwargs(NS(kind="pbs", jobqueue=NS(cores=4, memory="8GiB", jobs=1))))
['cores', 'job_script_prologue', 'memory']
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
import shlex
import tempfile
from collections.abc import Mapping
from typing import Any

import dask

from daskgrad.batch.config.cluster import JOBQUEUE_KINDS

__all__ = ["JOB_NAME", "SCHEDULER_PLACEHOLDER", "WORKER_ENV", "job_script", "jobqueue_kwargs"]

WORKER_ENV: Mapping[str, str] = {"ZARR_ARRAY__WRITE_EMPTY_CHUNKS": "True"}
"""Environment every worker gets (docs/reliability.md): zarr 3 skips all-fill-value chunks by default,
and a block that is never written looks missing to resume forever."""

# The placeholder scheduler address printed in a job script when no scheduler runs yet.
SCHEDULER_PLACEHOLDER = "tcp://<scheduler-host>:8786"
# dask-jobqueue's ``job_name``: the batch system's job name (``#SBATCH -J``, ``#PBS -N`` ...).
JOB_NAME = "daskgrad-worker"

# The command each batch system submits jobs with (checked on PATH before a cluster starts).
_SUBMIT_COMMANDS = {"slurm": "sbatch", "pbs": "qsub", "sge": "qsub", "lsf": "bsub"}
_JOBQUEUE_CLASSES = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
}
# Config key -> dask-jobqueue keyword where a batch system names it differently. LSF's accounting
# unit is the project (``#BSUB -P``); dask-jobqueue's LSFJob calls it ``project``.
_RENAMES: dict[str, dict[str, str]] = {"lsf": {"account": "project"}}
# jobqueue config keys that configure the cluster object, not the Job (so never validated
# against the Job signature): ``jobs`` feeds ``scale``; the other two are JobQueueCluster kwargs.
_CLUSTER_LEVEL_KEYS = frozenset({"jobs", "security", "shared_temp_directory"})
# [D-]H:MM:SS, the walltime forms the config accepts.
_WALLTIME_PARTS = re.compile(r"^(?:(\d+)-)?(\d{1,2}):(\d{2}):(\d{2})$")
# Job keywords daskgrad sets itself; a config must not override them.
_RESERVED_JOB_KWARGS = frozenset({"scheduler", "name", "job_name", "config_name", "protocol"})


def jobqueue_kwargs(cfg: Any, *, extra_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """dask-jobqueue Job keyword arguments for ``cfg.jobqueue`` (only the keys that are set).

    Config keys keep their names (``cores``, ``memory``, ``queue``, ``walltime``, ``account``,
    ``processes``, ``interface``, ``local_directory``, ``log_directory``, ``python``,
    ``resource_spec``, ``job_extra_directives``, ``job_script_prologue``,
    ``worker_extra_args``), except ``account``, which is ``project`` for LSF (``#BSUB -P``).
    LSF's ``ncpus``/``mem`` are left to dask-jobqueue, which derives them from ``cores`` and
    ``memory`` (``mem`` in the units of the site's ``lsf.conf``). ``jobs``, ``security`` and
    ``shared_temp_directory`` configure the cluster, not the job, and are not returned.
    ``job_script_prologue`` always ends with ``export`` lines for :data:`WORKER_ENV` (and
    ``extra_env``).

    ``walltime`` (``H:MM:SS`` or ``D-HH:MM:SS``) is written the way each batch system reads it:
    as given for SLURM, in hours (``26:00:00``) for PBS and SGE, which have no day field, and
    as ``H:MM`` for LSF (``#BSUB -W`` counts minutes; seconds round up).

    Every key is checked against the ``__init__`` signature of the batch system's Job class
    (``SLURMJob``, ``PBSJob``, ...), so a key it does not take (``resource_spec`` for SLURM,
    ``account`` for SGE) is a ``ValueError`` naming the key and the kind, not dask-jobqueue's
    bare ``TypeError``.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> jq = NS(cores=8, memory="32GiB", queue="normal", walltime="02:00:00", jobs=10)
    >>> kw = jobqueue_kwargs(NS(kind="slurm", jobqueue=jq))
    >>> sorted(kw)
    ['cores', 'job_script_prologue', 'memory', 'queue', 'walltime']
    >>> kw["job_script_prologue"]
    ['export ZARR_ARRAY__WRITE_EMPTY_CHUNKS=True']
    >>> jobqueue_kwargs(NS(kind="slurm", jobqueue=NS(resource_spec="select=1", **vars(jq))))
    Traceback (most recent call last):
    ...
    ValueError: cluster.jobqueue.resource_spec: not supported for kind slurm (dask_jobqueue's SLURMJob takes no 'resource_spec'); remove it, or pass the batch directive through job_extra_directives
    """
    kind = cfg.kind
    if kind not in JOBQUEUE_KINDS:
        raise ValueError(
            f"cluster.kind: {kind!r} is not a job-queue kind; jobqueue settings apply only to "
            f"{', '.join(JOBQUEUE_KINDS)}"
        )
    jq = _jobqueue_section(cfg, kind)
    job_cls = _jobqueue_cluster_class(kind).job_cls
    accepted = _init_parameters(job_cls)
    renames = _RENAMES.get(kind, {})

    kwargs: dict[str, Any] = {}
    for key, value in _fields(jq).items():
        # None and [] mean "not set": dask-jobqueue then falls back to the site's jobqueue.yaml.
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        if key in _CLUSTER_LEVEL_KEYS:
            continue
        target = renames.get(key, key)
        if target in _RESERVED_JOB_KWARGS or target not in accepted:
            raise ValueError(
                f"cluster.jobqueue.{key}: not supported for kind {kind} (dask_jobqueue's "
                f"{job_cls.__name__} takes no {target!r}); remove it, or pass the batch "
                "directive through job_extra_directives"
            )
        kwargs[target] = list(value) if isinstance(value, (list, tuple)) else value

    if "walltime" in kwargs:
        kwargs["walltime"] = _walltime_for(kind, str(kwargs["walltime"]))

    for key in ("cores", "memory"):
        # dask-jobqueue would fall back to the user's jobqueue.yaml; refuse only if that is unset too.
        if key not in kwargs and dask.config.get(f"jobqueue.{kind}.{key}", None) is None:
            raise ValueError(
                f"cluster.jobqueue.{key}: required for kind {kind} (the resources of one job, "
                "e.g. cores: 8, memory: 32GiB)"
            )

    prologue = [str(line) for line in kwargs.get("job_script_prologue") or []]
    prologue += [f"export {k}={shlex.quote(v)}" for k, v in _worker_env(extra_env).items()]
    kwargs["job_script_prologue"] = prologue
    return kwargs


def job_script(cfg: Any, *, extra_env: Mapping[str, str] | None = None) -> str:
    """The batch script one worker job would be submitted with, starting and submitting nothing.

    Builds only dask-jobqueue's Job object (``SLURMCluster.job_cls`` ...) with a placeholder
    scheduler address, so no scheduler starts, no socket opens and no ``sbatch``/``qsub``/
    ``bsub`` runs (docs/reliability.md). Apart from that address, the worker's ``--name`` and, with
    ``security: true``, the ``--tls-*`` certificate options, it is the script
    :func:`open_client` submits. ``daskgrad validate`` prints it for job-queue kinds.

    dask-jobqueue creates ``log_directory`` when it builds a Job; here it is built against a
    temporary directory instead, so nothing is created.

    Examples
    --------
    >>> from types import SimpleNamespace as NS
    >>> jq = NS(cores=8, memory="32GiB", processes=1, queue="normal", walltime="02:00:00", jobs=1)
    >>> script = job_script(NS(kind="slurm", jobqueue=jq))
    >>> "#SBATCH -p normal" in script and "--nthreads 8 --memory-limit 32.00GiB" in script
    True
    """
    kind = cfg.kind
    kwargs = jobqueue_kwargs(cfg, extra_env=extra_env)
    job_cls = _jobqueue_cluster_class(kind).job_cls
    security = bool(getattr(_jobqueue_section(cfg, kind), "security", None))
    scheduler = (
        SCHEDULER_PLACEHOLDER.replace("tcp://", "tls://") if security else SCHEDULER_PLACEHOLDER
    )

    log_directory = kwargs.get("log_directory")
    if log_directory is None or os.path.isdir(log_directory):
        return job_cls(scheduler=scheduler, name=JOB_NAME, job_name=JOB_NAME, **kwargs).job_script()
    with tempfile.TemporaryDirectory(prefix="daskgrad-logdir-") as stand_in:
        kwargs["log_directory"] = stand_in
        script = job_cls(
            scheduler=scheduler, name=JOB_NAME, job_name=JOB_NAME, **kwargs
        ).job_script()
    # The stand-in path is random and unique, so replacing it changes nothing else.
    return script.replace(stand_in, str(log_directory))


def _jobqueue_section(cfg: Any, kind: str) -> Any:
    jq = getattr(cfg, "jobqueue", None)
    if jq is None:
        raise ValueError(
            f"cluster.jobqueue: required for kind {kind}, e.g. "
            "{cores: 8, memory: 32GiB, queue: normal, walltime: '02:00:00', jobs: 10}"
        )
    return jq


def _fields(obj: Any) -> dict[str, Any]:
    """The fields of a pydantic model, a dataclass or a plain namespace, by name."""
    if hasattr(obj, "model_dump"):  # pydantic v2
        return {name: getattr(obj, name) for name in type(obj).model_fields}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return dict(vars(obj))


def _jobqueue_cluster_class(kind: str) -> Any:
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ImportError(
            f'cluster.kind {kind} needs dask-jobqueue: pip install "daskgrad[hpc]"'
        ) from exc
    return getattr(dask_jobqueue, _JOBQUEUE_CLASSES[kind])


def _walltime_for(kind: str, walltime: str) -> str:
    """``walltime`` as ``kind``'s batch system reads it (see :func:`jobqueue_kwargs`).

    >>> _walltime_for("pbs", "1-02:00:00"), _walltime_for("lsf", "1-02:00:30")
    ('26:00:00', '26:01')
    """
    match = _WALLTIME_PARTS.match(walltime)
    if kind == "slurm" or match is None:  # SLURM takes D-HH:MM:SS; anything else: leave as given
        return walltime
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    hours += 24 * days
    if kind == "lsf":
        minutes += seconds > 0
        hours, minutes = hours + minutes // 60, minutes % 60
        return f"{hours:02d}:{minutes:02d}"
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"


def _init_parameters(cls: type) -> frozenset[str]:
    """Keyword names ``cls(...)`` accepts, following ``**kwargs`` up to the first base that
    takes none (dask-jobqueue's Job classes pass ``**base_class_kwargs`` to ``Job``)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]  # drop self
        names.update(
            p.name
            for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        )
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            break
    return frozenset(names)


def _worker_env(extra_env: Mapping[str, str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for key, value in (extra_env or {}).items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise ValueError(f"extra_env: {key!r}={value!r}: names and values must be strings")
        env[key] = value
    env.update(WORKER_ENV)  # never overridable: resume depends on it (docs/reliability.md)
    return env
