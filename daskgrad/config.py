"""The YAML run configuration: schema, safe loader, ``--set`` overrides and path checks.

A run is described by one YAML file (SPEC §4). This module turns that file into a frozen
:class:`RunConfig` or raises :class:`ConfigError`, whose ``str()`` is one line naming the file, the
line, the dotted key and what is wrong::

    config.yaml:6: gradient.edge_ordr: unknown key (did you mean 'edge_order'?)
    --set gradient.edge_order: Input should be 1 or 2, got 3

The loader is PyYAML's ``SafeLoader`` made to read the YAML 1.2 core schema, so the YAML 1.1 traps
listed in RELIABILITY.md R8 do not apply: only ``true``/``false`` are booleans (``off``, ``no`` and
``yes`` stay strings), ``2:00:00`` is a string and not a sexagesimal number, ``010`` is 10,
``6.371e6`` and ``1e3`` are floats. Python tags, any other non-core tag, aliases, duplicate keys and
non-string keys are refused. Nothing in this module reads input data or writes anything; of daskgrad
it imports only :mod:`daskgrad.paths` (the one rule for paths, URLs and globs).
"""

from __future__ import annotations

import difflib
import fnmatch
import glob
import os
import re
import reprlib
import stat
import string
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

import yaml
from dask.utils import parse_bytes
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from daskgrad.encoding import Encoding
from daskgrad.paths import missing_package, normalize, overlap, resolve_input

__all__ = [
    "MAX_CHUNK",
    "MAX_CONFIG_BYTES",
    "ClusterConfig",
    "ConfigError",
    "GradientConfig",
    "InputConfig",
    "JobqueueConfig",
    "OutputConfig",
    "RunConfig",
    "TLSConfig",
    "YAML12SafeLoader",
    "check_paths",
    "load_config",
    "load_config_text",
    "load_yaml",
]

#: Config files larger than this are refused before parsing.
MAX_CONFIG_BYTES = 1 << 20
#: Largest chunk length accepted along one dim (larger ones are certainly a typo).
MAX_CHUNK = 1 << 31
#: Deepest nesting the loader accepts (the schema needs 4).
MAX_DEPTH = 32

DATETIME_UNITS = ("W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as")
JOBQUEUE_KINDS = ("slurm", "pbs", "sge", "lsf")
ADDRESS_SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://")

_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*::)*[A-Za-z][A-Za-z0-9+.-]*://")
_WALLTIME = re.compile(r"^(?:\d{1,2}:[0-5]\d:[0-5]\d|\d+-(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d)$")


# --------------------------------------------------------------------------------------------
# The error
# --------------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """Escape every character that could break a one-line message (newlines, tabs, U+2028...)."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


class ConfigError(Exception):
    """A config that cannot be used, located as precisely as possible.

    Parameters
    ----------
    source : str
        The config file name as the user gave it, ``"--set"`` for an override, or ``"<string>"``.
    key : str or None
        The dotted key, e.g. ``"gradient.edge_order"``; None when the problem is not about one key.
    line : int or None
        1-based line in ``source``; None when unknown (always None for ``--set``).
    reason : str
        What is wrong: names the value received and what is allowed.

    Notes
    -----
    ``str(err)`` is always exactly one line, ``source:line: key: reason`` with the missing parts
    left out (``--set key: reason`` for overrides), so a command line tool can print it as is
    and exit 2. Characters that could break the line (newlines, tabs, U+2028) are escaped.
    """

    def __init__(self, source: str, key: str | None, line: int | None, reason: str) -> None:
        self.source = str(source)
        self.key = key
        self.line = line
        self.reason = reason
        super().__init__(self.source, key, line, reason)

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        if self.key:
            # "--set gradient.edge_order: ..." reads as the command line the user typed.
            where += (" " if self.source == "--set" else ": ") + self.key
        return _one_line(f"{where}: {self.reason}")

    def __repr__(self) -> str:
        return (
            f"ConfigError(source={self.source!r}, key={self.key!r}, line={self.line!r}, "
            f"reason={self.reason!r})"
        )


_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlevel = 2
_repr.maxlist = _repr.maxdict = 4


def _show(value: Any) -> str:
    """A short YAML-flavoured rendering of a value for messages (bounded for any input)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _repr.repr(value)


def _describe(value: Any) -> str:
    """Like :func:`_show`, but says what kind of value it is where that is the surprise."""
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if value is None:
        return "null (an empty value)"
    if isinstance(value, list):
        return f"a list {_show(value)}"
    if isinstance(value, dict):
        return f"a mapping {_show(value)}"
    return _show(value)


def _fail(reason: str, field: str | None = None) -> typing.NoReturn:
    """Raise a validation error whose message pydantic passes through unchanged.

    ``field`` names the key the problem is about when the check runs on a whole model (a
    cross-field rule); the error is then reported at ``<model key>.<field>``.
    """
    ctx: dict[str, Any] = {"reason": reason}
    if field is not None:
        ctx["field"] = field
    raise PydanticCustomError("daskgrad", "{reason}", ctx)


# --------------------------------------------------------------------------------------------
# Field validators shared by several models
# --------------------------------------------------------------------------------------------


def _is_url(path: str) -> bool:
    return bool(_URL.match(path))


def _plain_path(value: str) -> str:
    """Check a path or URL; turn ``file://`` URLs into plain local paths (see RELIABILITY R1)."""
    if not value.strip():
        _fail("must not be empty")
    if value[:7].lower() == "file://":
        parts = urlsplit(value)
        if parts.netloc not in ("", "localhost"):
            _fail(
                f"file:// URL {_show(value)} names the host {_show(parts.netloc)}; "
                "write a plain local path or file:///absolute/path"
            )
        if parts.query or parts.fragment:
            _fail(f"file:// URL {_show(value)} has a query or fragment; write a plain path")
        return unquote(parts.path)
    if "://" in value and not _is_url(value):
        _fail(f"{_show(value)} contains '://' but is not a URL (scheme://...)")
    # "~" is expanded once, here, so every later use (checks, zarr, the fingerprint) sees the
    # same path; zarr would otherwise create a directory literally named "~".
    return value if _is_url(value) else os.path.expanduser(value)


def _names(value: Any) -> Any:
    """Accept one name where a list of names is expected."""
    return [value] if isinstance(value, str) else value


def _check_names(names: list[str] | None, what: str) -> list[str] | None:
    if names is None:
        return None
    if not names:
        _fail(f"must list at least one {what}, or be left out to mean all of them")
    for name in names:
        if not name.strip():
            _fail(f"a {what} name must not be empty")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            _fail(f"{what} {_show(name)} is listed twice")
        seen.add(name)
    return names


def _check_bytes(value: str, allow_auto: bool = False) -> str:
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


def _check_chunk(value: int) -> int:
    if value > MAX_CHUNK:
        _fail(
            f"a chunk of {value} elements along one dim is absurd (the limit is "
            f"2**31 = {MAX_CHUNK}); chunks count elements, not bytes"
        )
    return value


ChunkLength = Annotated[int, Field(gt=0), AfterValidator(_check_chunk)]
Period = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Radius = Annotated[float, Field(gt=0, allow_inf_nan=False)]

_FROZEN = ConfigDict(extra="forbid", strict=True, frozen=True)


def _default(model: str, field: str) -> Any:
    """The default of a field. Cross-field rules compare with it (not with ``model_fields_set``)
    so that ``RunConfig.model_validate(cfg.to_dict())`` accepts every valid config."""
    return globals()[model].model_fields[field].default


# --------------------------------------------------------------------------------------------
# The models
# --------------------------------------------------------------------------------------------


class InputConfig(BaseModel):
    """Where the data comes from (``input:``).

    Attributes
    ----------
    path : str
        A zarr store (local path or fsspec URL) or netCDF file(s) (path or glob). ``file://`` URLs
        are turned into plain paths. Relative paths are relative to the current directory.
    variables : list of str or None
        Data variables to differentiate; None means every numeric data variable. One name is
        accepted for a list of one.
    chunks : dict of str to int, or None
        Chunk length per dim used to read the input; None means the store's own chunks (for a
        variable stored without chunks, dask's automatic chunks of ``array.chunk-size``).
    engine : {'zarr', 'netcdf'} or None
        How to open ``path``; None guesses from the path (see :attr:`resolved_engine`).
    """

    model_config = _FROZEN

    path: str = Field(description="zarr store (path or URL) or netCDF file(s) (path or glob)")
    variables: list[str] | None = Field(
        default=None, description="data variables to differentiate; default every numeric one"
    )
    chunks: dict[str, ChunkLength] | None = Field(
        default=None, description="chunk length per dim for reading; default the store's chunks"
    )
    engine: Literal["zarr", "netcdf"] | None = Field(
        default=None, description="zarr or netcdf; default guessed from the path suffix"
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _plain_path(value)

    @field_validator("variables", mode="before")
    @classmethod
    def _one_variable(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: list[str] | None) -> list[str] | None:
        return _check_names(value, "variable")

    @model_validator(mode="after")
    def _glob_engine(self) -> InputConfig:
        if self.engine == "zarr" and glob.has_magic(self.path) and not os.path.exists(self.path):
            _fail(
                f"a glob ({_show(self.path)}) opens netCDF files; one zarr store is one path",
                field="engine",
            )
        return self

    @property
    def resolved_engine(self) -> Literal["zarr", "netcdf"]:
        """The engine to use: ``engine`` if given, else guessed from ``path``.

        A path ending in ``.zarr`` (a trailing ``/`` ignored) is zarr; a glob (a path with
        ``*?[`` that does not exist as given) or a path ending in
        ``.nc``, ``.nc4``, ``.cdf``, ``.netcdf``, ``.h5`` or ``.hdf5`` is netCDF; anything else is
        zarr (a zarr store is usually a directory with no suffix).
        """
        if self.engine is not None:
            return self.engine
        stem = self.path.rstrip("/").lower()
        if stem.endswith(".zarr"):
            return "zarr"
        # An existing path is a name, not a glob (daskgrad.paths.resolve_input).
        if (glob.has_magic(stem) and not os.path.exists(self.path)) or stem.endswith(
            (".nc", ".nc4", ".cdf", ".netcdf", ".h5", ".hdf5")
        ):
            return "netcdf"
        return "zarr"


class GradientConfig(BaseModel):
    """What to differentiate and how (``gradient:``); the arguments of ``ds.grad.to_zarr``.

    Attributes
    ----------
    dims : list of str or None
        Dims to differentiate along; None means every dim. One name is accepted for a list of one.
    edge_order : {1, 2}
        Accuracy of the one-sided differences at the edges, as in ``numpy.gradient``.
    datetime_unit : str
        Unit in which datetime coordinates become numbers: one of W D h m s ms us ns ps fs as.
        ``Y`` and ``M`` are refused: years and months have no fixed length, so they are not a
        step size (numpy would silently use an average; xarray refuses them too).
    periodic : dict of str to float or None
        Dims whose grid wraps around, with their period (None: take it from the coordinate).
        A single dim name or a list of names is accepted and becomes ``{name: None}``.
    geometry : {'spherical'} or None
        ``spherical`` gives lat/lon derivatives per metre on a sphere of radius ``radius``.
    radius : float
        Sphere radius in metres; a value other than the default needs ``geometry: spherical``.
    """

    model_config = _FROZEN

    dims: list[str] | None = Field(default=None, description="dims to differentiate; default all")
    edge_order: Literal[1, 2] = Field(default=1, description="1 or 2, as in numpy.gradient")
    datetime_unit: Literal["W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as"] = Field(
        default="s", description="unit for datetime coordinates (W D h m s ms us ns ps fs as)"
    )
    periodic: dict[str, Period | None] = Field(
        default_factory=dict, description="wrapping dims and their period, e.g. {lon: 360.0}"
    )
    geometry: Literal["spherical"] | None = Field(
        default=None, description="spherical: lat/lon derivatives per metre"
    )
    radius: Radius = Field(default=6371008.8, description="sphere radius in metres")

    @field_validator("dims", mode="before")
    @classmethod
    def _one_dim(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("edge_order", mode="before")
    @classmethod
    def _edge_order(cls, value: Any) -> Any:
        # Literal[1, 2] alone would take true and 1.0 as 1.
        if isinstance(value, (bool, float)):
            _fail(f"Input should be 1 or 2, got {_show(value)}")
        return value

    @field_validator("dims")
    @classmethod
    def _dims(cls, value: list[str] | None) -> list[str] | None:
        return _check_names(value, "dim")

    @field_validator("datetime_unit", mode="before")
    @classmethod
    def _datetime_unit(cls, value: Any) -> Any:
        if value in ("Y", "M"):
            name = "years" if value == "Y" else "months"
            _fail(
                f"{_show(value)} is not allowed: {name} have no fixed length, so they are not a "
                f"step size; use one of {', '.join(DATETIME_UNITS)} (e.g. 'D')"
            )
        return value

    @field_validator("periodic", mode="before")
    @classmethod
    def _periodic_forms(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            if not value:
                return {}
            if not all(isinstance(name, str) for name in value):
                bad = next(name for name in value if not isinstance(name, str))
                _fail(f"expected dim names, got {_describe(bad)}")
            _check_names(value, "periodic dim")
            return dict.fromkeys(value)
        return value

    @model_validator(mode="after")
    def _cross(self) -> GradientConfig:
        if self.dims is not None:
            for name in self.periodic:
                if name not in self.dims:
                    _fail(
                        f"dim {_show(name)} is not in gradient.dims {_show(self.dims)}",
                        field="periodic",
                    )
        if self.radius != _default("GradientConfig", "radius") and self.geometry != "spherical":
            _fail("radius is only used with geometry: spherical", field="radius")
        return self


class OutputConfig(BaseModel):
    """Where the result goes (``output:``).

    Attributes
    ----------
    path : str
        The zarr store to write (local path or fsspec URL). ``file://`` URLs become plain paths,
        because zarr's FsspecStore on ``file://`` does not write atomically (RELIABILITY R1).
    mode : {'error', 'overwrite', 'resume'}
        ``error`` refuses an existing store, ``overwrite`` replaces it, ``resume`` finishes an
        interrupted run.
    name : str
        Output variable name template with exactly the fields ``{var}`` and ``{dim}``.
    verify : bool
        On resume, re-read every chunk already present and rewrite those that do not decode;
        on a complete store, decode every chunk and repair the damaged ones.
    lease_seconds : float
        How long this run's claim on the store lasts without renewal (the driver renews it
        every third of that). A stopped or dead run loses the store after this long.
    """

    model_config = _FROZEN

    path: str = Field(description="zarr store to write (path or URL)")
    mode: Literal["error", "overwrite", "resume"] = Field(
        default="error", description="error (refuse an existing store) | overwrite | resume"
    )
    name: str = Field(default="d{var}_d{dim}", description="output name template: {var}, {dim}")
    verify: bool = Field(default=False, description="on resume, re-read every present chunk")
    lease_seconds: Annotated[float, Field(ge=1, le=86400, allow_inf_nan=False)] = Field(
        default=60.0, description="one run per store: how long its lease lasts unrenewed"
    )
    encoding: Encoding = Field(
        default_factory=Encoding, description="codec, level, dtype, shards, zarr_format"
    )

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        value = _plain_path(value)
        if not _is_url(value) and ("*" in value or "?" in value):
            _fail(f"{_show(value)} looks like a glob; the output is one zarr store")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            fields = [f for f in string.Formatter().parse(value) if f[1] is not None]
        except ValueError as err:
            _fail(f"{_show(value)} is not a valid template ({err}); write e.g. 'd{{var}}_d{{dim}}'")
        for _, field, spec, conversion in fields:
            if field not in ("var", "dim"):
                _fail(f"{_show(value)} uses the field {{{field}}}; only {{var}} and {{dim}} exist")
            if spec or conversion:
                _fail(
                    f"{_show(value)}: write plain {{var}} and {{dim}} (no !conversion or :format)"
                )
        used = {f[1] for f in fields}
        for needed in ("var", "dim"):
            if needed not in used:
                _fail(
                    f"{_show(value)} has no {{{needed}}}, so two outputs would get the same "
                    "name; use both {var} and {dim}, e.g. 'd{var}_d{dim}'"
                )
        for sep in ("/", "\\"):
            if sep in value:
                _fail(
                    f"{_show(value)} contains {sep!r}, which would nest zarr groups (zarr reads "
                    "it as a group separator, so the run could never complete)"
                )
        return value


class JobqueueConfig(BaseModel):
    """Batch jobs for ``cluster.kind`` slurm, pbs, sge or lsf (``cluster.jobqueue:``).

    The keys map one to one onto the keyword arguments of dask-jobqueue's ``SLURMCluster`` etc.,
    except ``jobs`` (passed to ``cluster.scale(jobs=...)``). See RELIABILITY R7 and R9.

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
        return _check_bytes(value)

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

    kind: Literal["threads", "local", "address", "slurm", "pbs", "sge", "lsf"] = Field(
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
        return _check_bytes(value, allow_auto=True)

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
        local_only = () if kind == "threads" else ("n_workers", "threads_per_worker", "memory_limit")
        if kind != "local":
            for name in local_only:
                if getattr(self, name) != _default("ClusterConfig", name):
                    hint = "; set jobqueue.jobs/cores/memory" if kind in JOBQUEUE_KINDS else ""
                    _fail(f"not used with kind {kind!r}{hint}", name)
        if kind in ("threads", "address") and self.dashboard:
            _fail(f"no dashboard is started with kind {kind!r}", "dashboard")
        if kind == "threads" and self.allowed_failures != _default(
            "ClusterConfig", "allowed_failures"
        ):
            _fail("not used with kind 'threads' (no distributed scheduler)", "allowed_failures")
        if kind == "threads" and self.stall_timeout != _default("ClusterConfig", "stall_timeout"):
            _fail("not used with kind 'threads' (no workers to watch)", "stall_timeout")
        return self


class RunConfig(BaseModel):
    """One batch run: the whole YAML file (SPEC §4).

    Attributes
    ----------
    input : InputConfig
    gradient : GradientConfig
    output : OutputConfig
    cluster : ClusterConfig

    Notes
    -----
    A section left empty in YAML (``gradient:`` followed only by comments) means its defaults.
    """

    model_config = _FROZEN

    input: InputConfig = Field(description="where the data comes from")
    gradient: GradientConfig = Field(default_factory=GradientConfig, description="what to compute")
    output: OutputConfig = Field(description="where the result goes")
    cluster: ClusterConfig = Field(default_factory=ClusterConfig, description="where it runs")

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: ({} if v is None and k in cls.model_fields else v) for k, v in data.items()}
        return data

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON types (str, int, float, bool, None, list, dict).

        Every key is present, defaults included, so the result records exactly what ran; it is
        meant for provenance attributes and for the resume fingerprint.
        """
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------------------------
# The YAML loader
# --------------------------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$"
)


class YAML12SafeLoader(yaml.SafeLoader):
    """PyYAML's ``SafeLoader`` reading the YAML 1.2 core schema, and stricter.

    - Plain scalars resolve as in YAML 1.2 core: ``null``/``~``/empty, ``true``/``false`` (any
      case form of those two only), decimal/``0o``/``0x`` integers, floats with optional exponent,
      ``.inf``/``.nan``. Everything else is a string: ``off``, ``yes``, ``2:00:00``, ``2024-01-01``,
      ``1_000``. ``010`` is 10.
    - Only the core tags are built (str, int, float, bool, null, seq, map); any other tag
      (``!!python/...``, ``!!binary``, ``!!timestamp``, ``!custom``) is refused, so nothing from a
      tag is ever constructed or run. Aliases (``*name``) are refused; anchors are harmless.
    - Mapping keys must be strings and must not repeat; nesting is limited to ``MAX_DEPTH``.

    Problems are raised as :class:`ConfigError` with ``source``, dotted ``key`` and ``line``.
    ``yaml.load(text, Loader=YAML12SafeLoader)`` works; :func:`load_yaml` also returns the node
    tree used to find line numbers.
    """

    yaml_implicit_resolvers: typing.ClassVar[dict] = {}
    source = "<string>"
    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(
                self.source,
                None,
                event.start_mark.line + 1,
                f"aliases (*{event.anchor}) are not supported; write the value out",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(
                    self.source, None, mark.line + 1, f"nested more than {MAX_DEPTH} levels deep"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        return self._build(node, ())

    def _build(self, node: yaml.Node, path: tuple[str | int, ...]) -> Any:
        """Turn a node into plain Python data (the only constructor this loader has)."""
        line = node.start_mark.line + 1
        key = _dotted(path) or None

        def refuse(reason: str) -> typing.NoReturn:
            raise ConfigError(self.source, key, line, reason)

        tag = node.tag
        if isinstance(node, yaml.MappingNode):
            if tag != _TAG + "map":
                refuse(_tag_refused(tag))
            data: dict[str, Any] = {}
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _TAG + "str":
                    if isinstance(key_node, yaml.ScalarNode):
                        what = f"key {_show(key_node.value)} is read as {key_node.tag.rsplit(':', 1)[-1]}"
                    else:
                        what = "a list or mapping used as a key"
                    raise ConfigError(
                        self.source, key, key_line, f"{what}; keys must be strings (quote it)"
                    )
                name = key_node.value
                if name in first_line:
                    raise ConfigError(
                        self.source,
                        _dotted((*path, name)),
                        key_line,
                        f"duplicate key {_show(name)} (lines {first_line[name]} and {key_line})",
                    )
                first_line[name] = key_line
                data[name] = self._build(value_node, (*path, name))
            return data
        if isinstance(node, yaml.SequenceNode):
            if tag != _TAG + "seq":
                refuse(_tag_refused(tag))
            return [self._build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = node.value
        if tag == _TAG + "str":
            return value
        if tag == _TAG + "null":
            if value not in ("", "~", "null", "Null", "NULL"):
                refuse(f"{_show(value)} is not null")
            return None
        if tag == _TAG + "bool":
            if value not in ("true", "True", "TRUE", "false", "False", "FALSE"):
                refuse(f"{_show(value)} is not a boolean (only true and false are)")
            return value.lower() == "true"
        if tag == _TAG + "int":
            if not _INT.match(value):
                refuse(f"{_show(value)} is not an integer")
            try:
                return int(value, 0) if value[:2] in ("0o", "0x") else int(value, 10)
            except ValueError:  # more digits than Python converts (sys.int_info)
                refuse(f"integer {_show(value)} is too long")
        if tag == _TAG + "float":
            if not _FLOAT.match(value):
                refuse(f"{_show(value)} is not a number")
            low = value.lower()
            if low.endswith(".nan"):
                return float("nan")
            if low.endswith(".inf"):
                return float("-inf") if low.startswith("-") else float("inf")
            return float(value)
        refuse(_tag_refused(tag))


YAML12SafeLoader.add_implicit_resolver(
    _TAG + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
YAML12SafeLoader.add_implicit_resolver(
    _TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
YAML12SafeLoader.add_implicit_resolver(_TAG + "int", _INT, list("-+0123456789"))
YAML12SafeLoader.add_implicit_resolver(_TAG + "float", _FLOAT, list("-+.0123456789"))


def _tag_refused(tag: str) -> str:
    shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
    return f"tag {shown} is not allowed; only plain YAML values are (nothing was run)"


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if len(text) > 60:
                text = text[:57] + "..."
            out += ("." if out else "") + text
    return out


def load_yaml(text: str, source: str = "<string>") -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document with :class:`YAML12SafeLoader`.

    Parameters
    ----------
    text : str
        The document.
    source : str
        Name used in errors.

    Returns
    -------
    data, node
        The plain Python data (None for an empty document) and the node tree it came from.

    Raises
    ------
    ConfigError
        Invalid YAML, a refused tag or alias, a duplicate or non-string key, too deep nesting.
    """
    loader = None
    try:
        loader = YAML12SafeLoader(text)  # checks the characters already
        loader.source = source
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except ConfigError:
        raise
    except yaml.reader.ReaderError as err:
        line = text[: err.position].count("\n") + 1
        raise ConfigError(
            source, None, line, f"invalid YAML: character {err.character:#06x} is not allowed"
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = " ".join(p for p in (err.context, err.problem) if p) or "cannot parse"
        raise ConfigError(
            source, None, None if mark is None else mark.line + 1, f"invalid YAML: {what}"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(source, None, None, f"invalid YAML: {err}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, node


# --------------------------------------------------------------------------------------------
# Validation errors -> ConfigError
# --------------------------------------------------------------------------------------------

_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _unwrap_model(arg)
            if found is not None:
                return found
    return None


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = RunConfig
    for part in loc:
        if model is None or part not in model.model_fields:
            return None
        model = _unwrap_model(model.model_fields[part].annotation)
    return model


def _sections_with(name: str) -> list[str]:
    """The dotted sections that have a key called ``name`` ("the top level" for the root)."""
    found = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for field, info in model.model_fields.items():
            where = f"{prefix}.{field}" if prefix else field
            if field == name:
                found.append(prefix or "the top level")
            sub = _unwrap_model(info.annotation)
            if sub is not None:
                walk(sub, where)

    walk(RunConfig, "")
    return found


def _reason(err: Mapping[str, Any]) -> str:
    """Rewrite one pydantic error for a YAML user: what came, what is allowed."""
    kind, loc, value = err["type"], err["loc"], err.get("input")
    if kind == "daskgrad":
        return err["ctx"]["reason"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields) if model is not None else []
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            return f"unknown key (did you mean {close[0]!r}?)"
        elsewhere = [s for s in _sections_with(name) if s != _dotted(loc[:-1])]
        if elsewhere:
            return f"unknown key here; {name!r} belongs under {elsewhere[0]!r}"
        return f"unknown key (allowed: {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in _TYPE_WORDS:
        want = _TYPE_WORDS[kind]
        hint = ""
        if isinstance(value, str) and kind in ("int_type", "float_type"):
            try:
                float(value)
                hint = " (remove the quotes)"
            except ValueError:
                pass
        elif isinstance(value, str) and kind == "bool_type":
            hint = " (only true and false are booleans)"
        elif kind == "string_type" and isinstance(value, (int, float, bool)):
            hint = " (put it in quotes)"
        return f"expected {want}, got {_describe(value)}{hint}"
    if kind == "literal_error":
        return f"{err['msg']}, got {_show(value)}"
    if kind == "greater_than":
        return f"must be greater than {err['ctx']['gt']:g}, got {_show(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {err['ctx']['ge']:g}, got {_show(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {_show(value)}"
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return f"{msg}, got {_show(value)}"


def _line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """The line of the deepest node found along ``loc`` (a key's own line for mapping keys)."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _from_validation(
    exc: ValidationError,
    source: str,
    node: yaml.Node | None,
    overridden: Sequence[tuple[str, ...]],
) -> ConfigError:
    errors = exc.errors()
    # A misspelled key also makes the real one "missing"; the misspelling is the better news.
    err = next((e for e in errors if e["type"] != "missing"), errors[0])
    loc = tuple(p for p in err["loc"] if p != "[key]")
    if err["type"] == "daskgrad" and "field" in (err.get("ctx") or {}):
        loc = (*loc, err["ctx"]["field"])
    key = _dotted(loc) or None
    reason = _reason(err)
    for path in overridden:
        if loc[: len(path)] == path:
            return ConfigError("--set", key, None, reason)
    return ConfigError(source, key, _line_of(node, loc), reason)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _apply_override(data: dict[str, Any], item: str) -> tuple[str, ...]:
    if not isinstance(item, str) or "=" not in item:
        raise ConfigError(
            "--set", None, None, f"expected KEY=VALUE (e.g. output.path=/x), got {_show(item)}"
        )
    dotted, text = item.split("=", 1)
    dotted = dotted.strip()
    path = tuple(dotted.split("."))
    if not dotted or any(not part.strip() for part in path):
        raise ConfigError("--set", None, None, f"bad key {_show(dotted)} in {_show(item)}")
    try:
        value, _ = load_yaml(text, source="--set")
    except ConfigError as err:
        raise ConfigError("--set", dotted, None, err.reason) from None
    target = data
    for i, part in enumerate(path[:-1]):
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(path[: i + 1])
            raise ConfigError(
                "--set",
                dotted,
                None,
                f"cannot set a key inside {where}, which is {_describe(child)}",
            )
        target = child
    target[path[-1]] = value
    return path


def load_config_text(
    text: str, source: str = "<string>", overrides: Sequence[str] = ()
) -> RunConfig:
    """Parse and validate a config given as text.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str
        Name used in error messages (normally the file name).
    overrides : sequence of str
        ``KEY=VALUE`` items as given to ``--set``; ``VALUE`` is read as YAML.

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        For anything wrong, with a one-line message.

    Examples
    --------
    >>> cfg = load_config_text("input: {path: in.zarr}\\noutput: {path: out.zarr}",
    ...                        overrides=["gradient.edge_order=2"])
    >>> cfg.gradient.edge_order, cfg.output.mode
    (2, 'error')
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    data, node = load_yaml(text, source)
    if data is None:
        raise ConfigError(
            source, None, None, "the config is empty; it needs at least input.path and output.path"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            source,
            None,
            None if node is None else node.start_mark.line + 1,
            f"the top level must be a mapping of sections (input, gradient, output, cluster), got {_describe(data)}",
        )
    overridden = [_apply_override(data, item) for item in overrides]
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(exc, source, node, overridden) from None


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> RunConfig:
    """Read, parse and validate a config file; refuse anything suspicious before parsing.

    Parameters
    ----------
    path : str or path-like
        The YAML file. Errors name it as given.
    overrides : sequence of str
        ``KEY=VALUE`` items from ``--set``, applied in order after reading the file.

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        A missing, unreadable, non-regular, binary, non-UTF-8 or too large (> 1 MiB) file, or
        any problem :func:`load_config_text` reports.
    """
    source = os.fspath(path)
    try:
        info = os.stat(source)
    except FileNotFoundError:
        raise ConfigError(source, None, None, "no such file") from None
    except OSError as err:
        raise ConfigError(source, None, None, f"cannot read: {err.strerror or err}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(source, None, None, "is a directory, not a config file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(source, None, None, "is not a regular file")
    if info.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            source,
            None,
            None,
            f"is {info.st_size} bytes; a config is at most {MAX_CONFIG_BYTES} (1 MiB)",
        )
    try:
        with open(source, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(source, None, None, f"cannot read: {err.strerror or err}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(source, None, None, f"is larger than {MAX_CONFIG_BYTES} bytes (1 MiB)")
    if b"\x00" in raw:
        raise ConfigError(source, None, None, "looks like a binary file, not YAML text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            source, None, line, f"is not UTF-8 text (byte {raw[err.start]:#04x})"
        ) from None
    return load_config_text(text, source, overrides)


# --------------------------------------------------------------------------------------------
# Path checks (no data read)
# --------------------------------------------------------------------------------------------


def _is_zarr_store(path: str) -> bool:
    return any(
        os.path.isfile(os.path.join(path, name)) for name in ("zarr.json", ".zgroup", ".zarray")
    )


def _only_leftovers(path: str) -> bool:
    """A directory holding no file but ``.partial`` temporaries: what a store creation killed
    before its first metadata file leaves. ``overwrite`` and ``resume`` may start it afresh."""
    if not os.path.isdir(path) or os.path.islink(path):
        return False
    for _dirpath, _dirs, files in os.walk(path):
        if any(".partial" not in name for name in files):
            return False
    return True


def check_paths(cfg: RunConfig, *, source: str = "<config>") -> None:
    """Check the paths of a validated config against the file system; read no data.

    Relative paths are taken relative to the current working directory (as for any command
    line tool), and the messages say which directory that was. fsspec URLs (``s3://`` ...) are
    not looked up; an input URL and an output URL are only compared as text.

    Checks, in order:

    - a URL's scheme has its package installed (``s3fs`` for ``s3://``, ``aiohttp`` for
      ``https://``);
    - the input exists, by the one rule of :func:`daskgrad.paths.resolve_input`: a path that
      exists is taken literally (``data[1].nc`` is a file name); a glob applies only when the
      path does not exist, and must match at least one file (a broken symbolic link does not
      count);
    - the output is not the input, not inside it, and does not contain it (``mode: overwrite``
      would delete the input); both are normalized first (``~``, ``..``, symbolic links);
    - for a glob input, the output does not match the glob (a later run would read it);
    - an existing output is refused with ``mode: error``; with ``overwrite`` or ``resume`` it
      must be a zarr store (or hold nothing but ``.partial`` leftovers of a killed creation),
      so ``overwrite`` never deletes anything else;
    - the output's nearest existing parent is a writable directory;
    - the TLS certificate files exist.

    Parameters
    ----------
    cfg : RunConfig
        A config from :func:`load_config`.
    source : str
        Name put at the start of error messages, normally the config file name.

    Raises
    ------
    ConfigError
        ``key`` is ``input.path``, ``output.path`` or ``cluster.tls.*``; ``line`` is None.
    """
    cwd = os.getcwd()

    def refuse(key: str, reason: str) -> typing.NoReturn:
        raise ConfigError(source, key, None, reason)

    in_path, out_path = cfg.input.path, cfg.output.path
    in_url, out_url = _is_url(in_path), _is_url(out_path)
    for key, url in (("input.path", in_path), ("output.path", out_path)):
        package = missing_package(url) if _is_url(url) else None
        if package:
            refuse(key, f"{_show(url)} needs the package {package!r}, which is not installed "
                        f"(pip install {package})")  # fmt: skip
    in_glob = False
    inputs: list[str] = []  # the local input paths, normalized
    if not in_url:
        try:
            found = resolve_input(in_path)
        except FileNotFoundError as err:
            reason = str(err)
            if "broken symbolic link" not in reason:
                reason += f" (relative paths start at {cwd})"
            refuse("input.path", reason)
        in_glob = found.kind == "glob"
        inputs = [normalize(p) for p in found.paths]

    if in_url and out_url:
        a, b = normalize(in_path), normalize(out_path)
        if a == b or b.startswith(a + "/") or a.startswith(b + "/"):
            refuse("output.path", f"{_show(out_path)} overlaps the input {_show(in_path)}")
    if not out_url:
        for item in inputs:
            relation = overlap(out_path, item)
            if relation == "same":
                refuse("output.path", f"{_show(out_path)} is the input itself")
            if relation == "inside":
                refuse(
                    "output.path",
                    f"{_show(out_path)} is inside the input {_show(in_path)}; the input is never written",
                )
            if relation == "contains":
                refuse(
                    "output.path",
                    f"{_show(out_path)} contains the input {_show(in_path)}; pick another directory",
                )
        if in_glob and fnmatch.fnmatchcase(os.path.abspath(out_path), os.path.abspath(in_path)):
            refuse("output.path", f"{_show(out_path)} matches the input glob {_show(in_path)}")
        mode = cfg.output.mode
        if os.path.lexists(out_path):
            if mode == "error":
                refuse(
                    "output.path",
                    f"{_show(out_path)} already exists; use --set output.mode=overwrite to replace "
                    "it or --set output.mode=resume to finish an interrupted run",
                )
            if not (_is_zarr_store(out_path) or _only_leftovers(out_path)):
                refuse(
                    "output.path",
                    f"{_show(out_path)} exists and is not a zarr store; refusing to {mode} it",
                )
        parent = os.path.dirname(os.path.abspath(out_path))
        while not os.path.lexists(parent) and os.path.dirname(parent) != parent:
            parent = os.path.dirname(parent)
        if not os.path.isdir(parent):
            refuse(
                "output.path",
                f"cannot create {_show(out_path)}: {_show(parent)} is not a directory",
            )
        if not os.access(parent, os.W_OK | os.X_OK):
            refuse(
                "output.path", f"cannot create {_show(out_path)}: {_show(parent)} is not writable"
            )

    tls = cfg.cluster.tls
    if tls is not None:
        for name in ("ca_file", "cert", "key"):
            file = getattr(tls, name)
            if not os.path.isfile(file):
                refuse(
                    f"cluster.tls.{name}",
                    f"{_show(file)} is not a file (relative paths start at {cwd})",
                )
