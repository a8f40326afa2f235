"""The schema of the run configuration: the ``input``, ``gradient`` and ``output`` sections.

The ``cluster`` section is in :mod:`daskgrad.batch.config.cluster`. The rules about a gradient
option's value are :mod:`daskgrad.core.options`' (the accessor uses the same ones); this module
states the YAML's types and the rules that only a config has (paths, chunks, cross-key rules).

Examples
--------
>>> GradientConfig(dims=["lat", "lon"], geometry="spherical").radius
6371008.8
>>> OPTION_KEYS["name"]
'output.name'
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from daskgrad.batch.config.cluster import ClusterConfig
from daskgrad.batch.config.derived import Derived, VectorConfig, check_derived
from daskgrad.batch.config.errors import _describe, _fail, _show
from daskgrad.batch.encoding import Encoding
from daskgrad.batch.remote import credential_keys, url_has_password
from daskgrad.core.options import (
    DEFAULT_NAME,
    DEFAULT_RADIUS,
    Components,
    DatetimeUnit,
    GradientOptions,
    NanPolicy,
    OptionError,
    check_datetime_unit,
    check_edge_order,
    check_name_template,
)

__all__ = [
    "MAX_CHUNK",
    "OPTION_KEYS",
    "GradientConfig",
    "InputConfig",
    "OutputConfig",
    "RunConfig",
    "VectorConfig",
]

#: Largest chunk length accepted along one dim (larger ones are certainly a typo).
MAX_CHUNK = 1 << 31

#: The config key of each :class:`~daskgrad.core.options.GradientOptions` field, so an
#: :class:`~daskgrad.core.options.OptionError` raised while planning a run names the key to change.
OPTION_KEYS = {
    "dim": "gradient.dims",
    "variables": "input.variables",
    "edge_order": "gradient.edge_order",
    "datetime_unit": "gradient.datetime_unit",
    "periodic": "gradient.periodic",
    "geometry": "gradient.geometry",
    "radius": "gradient.radius",
    "name": "output.name",
    "nan_policy": "gradient.nan_policy",
    "components": "gradient.components",
    "mask": "gradient.mask",
    "grid": "input.grid",
    # the derived fields (daskgrad.vector_plan)
    "derived": "gradient.derived",
    "vector": "gradient.vector",
    "gradients": "gradient.gradients",
    "u": "gradient.vector.u",
    "v": "gradient.vector.v",
    "var": "input.variables",
}

_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*::)*[A-Za-z][A-Za-z0-9+.-]*://")
_FROZEN = ConfigDict(extra="forbid", strict=True, frozen=True)


def _checked(check: Callable[[Any], Any], value: Any) -> Any:
    """Run one of :mod:`daskgrad.core.options`' checks; its message becomes the key's reason."""
    try:
        check(value)
    except OptionError as err:
        _fail(str(err))
    return value


def _is_url(path: str) -> bool:
    return bool(_URL.match(path))


def _plain_path(value: str) -> str:
    """Check a path or URL; turn ``file://`` URLs into plain local paths (see docs/reliability.md)."""
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
    _no_password(value)
    # "~" is expanded once, here, so every later use (checks, zarr, the fingerprint) sees the
    # same path; zarr would otherwise create a directory literally named "~".
    return value if _is_url(value) else os.path.expanduser(value)


def _no_password(value: str) -> str:
    """Refuse a URL with a password in it: the path is recorded in the store and printed."""
    if url_has_password(value):
        _fail(
            "a URL with a password in it (scheme://user:password@...) is refused: the path is "
            "recorded in the output and printed. Give credentials as the storage client "
            "expects (for S3: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE)"
        )
    return value


def _storage_options(value: dict[str, Any]) -> dict[str, Any]:
    """Refuse secrets in ``storage_options``; the message names the key, never its value."""
    found = credential_keys(value)
    if found:
        _fail(
            f"{found[0]!r} holds a credential; credentials are never taken from the config (it "
            "is recorded in the output). Give them as the storage client expects (for S3: "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE; or storage_options.profile)"
        )
    return value


def _url_for_options(path: str, options: dict[str, Any]) -> None:
    if options and not _is_url(path):
        _fail(
            f"storage_options apply to a URL (s3://bucket/...), and path {_show(path)} is a "
            "local path; remove them or write the URL",
            field="storage_options",
        )


#: fsspec options for a URL path (endpoint_url, anon, profile, client_kwargs ...). Never dumped:
#: not in ``to_dict()`` (the store's attributes) nor in the fingerprint.
StorageOptions = Annotated[dict[str, Any], AfterValidator(_storage_options)]


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


def _storage_options_field() -> Any:
    """``storage_options`` of a URL: never dumped, so never in the store, the fingerprint or a log."""
    return Field(
        default_factory=dict,
        exclude=True,
        description="fsspec options for a URL (endpoint_url, anon, profile); no credentials",
    )


class InputConfig(BaseModel):
    """Where the data comes from (``input:``).

    Attributes
    ----------
    path : str
        A zarr store (local path or fsspec URL) or netCDF file(s) (path or glob). ``file://`` URLs
        are turned into plain paths. Relative paths are relative to the current directory.
    variables : list of str or None
        Data variables to differentiate; None means every numeric data variable that is not a
        cell bound, cell measure, coordinate, formula term, flag or mask
        (:mod:`daskgrad.roles`; the run prints those left out). One name is
        accepted for a list of one.
    chunks : dict of str to int, or None
        Chunk length per dim used to read the input; None means the store's own chunks (for a
        variable stored without chunks, dask's automatic chunks of ``array.chunk-size``).
    engine : {'zarr', 'netcdf'} or None
        How to open ``path``; None guesses from the path (see :attr:`resolved_engine`).
    storage_options : dict
        fsspec options for a URL ``path`` (``endpoint_url``, ``anon``, ``profile``,
        ``client_kwargs`` ...); keys holding credentials are refused. Never recorded.
    grid : str or None
        A second file (netCDF, or a zarr store) holding the grid: the latitude/longitude
        coordinates and masks the input lacks are taken from it (MOM6's ``ocean_static.nc``,
        NEMO's ``mesh_mask.nc``; :func:`daskgrad.grids.attach_grid`).
    """

    model_config = _FROZEN

    path: str = Field(description="zarr store (path or URL) or netCDF file(s) (path or glob)")
    grid: str | None = Field(
        default=None, description="a grid file (e.g. ocean_static.nc): coordinates and masks"
    )
    variables: list[str] | None = Field(
        default=None, description="data variables to differentiate; default the CF-aware choice"
    )
    chunks: dict[str, ChunkLength] | None = Field(
        default=None, description="chunk length per dim for reading; default the store's chunks"
    )
    engine: Literal["zarr", "netcdf"] | None = Field(
        default=None, description="zarr or netcdf; default guessed from the path suffix"
    )
    storage_options: StorageOptions = _storage_options_field()

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return _plain_path(value)

    @field_validator("grid")
    @classmethod
    def _grid(cls, value: str | None) -> str | None:
        if value is not None and glob.has_magic(value) and not os.path.exists(value):
            _fail(f"{_show(value)} looks like a glob; the grid is one file")
        return None if value is None else _plain_path(value)

    @field_validator("variables", mode="before")
    @classmethod
    def _one_variable(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: list[str] | None) -> list[str] | None:
        return _check_names(value, "variable")

    @model_validator(mode="after")
    def _options_need_a_url(self) -> InputConfig:
        _url_for_options(self.path, self.storage_options)
        return self

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
        ``.nc``, ``.nc4``, ``.cdf``, ``.netcdf``, ``.h5`` or ``.hdf5`` is netCDF, and so is an
        existing local file with another name (WRF's ``wrfout_d01_2024-01-01_00:00:00``: a
        zarr store is a directory); anything else is zarr.
        """
        if self.engine is not None:
            return self.engine
        stem = self.path.rstrip("/").lower()
        if stem.endswith(".zarr"):
            return "zarr"
        # An existing path is a name, not a glob (daskgrad.batch.paths.resolve_input).
        if (glob.has_magic(stem) and not os.path.exists(self.path)) or stem.endswith(
            (".nc", ".nc4", ".cdf", ".netcdf", ".h5", ".hdf5")
        ):
            return "netcdf"
        if not _is_url(self.path) and os.path.isfile(self.path) and not stem.endswith(".zip"):
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
    nan_policy : {'propagate', 'one-sided'}
        ``propagate``: numpy's numbers, a NaN spreads to its neighbours' derivatives.
        ``one-sided``: each run of non-NaN values along a dim is differentiated alone, as
        ``numpy.gradient`` would (one-sided at coastlines and other NaN edges).
    components : {'grid', 'geographic'}
        For 2-D latitude/longitude (a curvilinear grid) with ``geometry: spherical``: derivatives
        along the grid dims per metre, or eastward and northward (named ``east``/``north``).
    mask : str or None
        Land as a coastline: the name of a mask variable of the input or of ``input.grid``
        (True or nonzero = wet), or ``auto`` for the models' own masks (ROMS ``mask_rho`` ...,
        NEMO ``tmask`` ..., MOM6 ``wet`` ...). A masked variable runs ``one-sided`` and is NaN
        on land (:mod:`daskgrad.masks`).
    derived : list or None
        Derived fields to write: ``divergence`` and ``vorticity`` of ``vector``, ``laplacian``
        and ``advection`` (by ``vector``) of each chosen variable, named ``divergence``,
        ``vorticity``, ``laplacian_<var>``, ``advection_<var>`` (:mod:`daskgrad.operators`).
        They run over the horizontal dims: the geometry's, or ``vector.dims`` without one.
    vector : VectorConfig or None
        ``{u: ..., v: ...}`` for divergence, vorticity and advection.
    gradients : bool
        Write the gradients too (default); ``false``: only the derived fields.
    """

    model_config = _FROZEN

    dims: list[str] | None = Field(default=None, description="dims to differentiate; default all")
    edge_order: Literal[1, 2] = Field(default=1, description="1 or 2, as in numpy.gradient")
    datetime_unit: DatetimeUnit = Field(
        default="s", description="unit for datetime coordinates (W D h m s ms us ns ps fs as)"
    )
    periodic: dict[str, Period | None] = Field(
        default_factory=dict, description="wrapping dims and their period, e.g. {lon: 360.0}"
    )
    geometry: Literal["spherical"] | None = Field(
        default=None, description="spherical: lat/lon derivatives per metre"
    )
    radius: Radius = Field(default=DEFAULT_RADIUS, description="sphere radius in metres")
    nan_policy: NanPolicy = Field(
        default="propagate", description="propagate (numpy) | one-sided (NaN ends a run)"
    )
    components: Components = Field(
        default="grid", description="curvilinear grids: grid | geographic (east, north)"
    )
    mask: str | None = Field(
        default=None, description="a mask variable (True/nonzero = wet) or auto (the models')"
    )
    derived: list[Derived] | None = Field(
        default=None, description="divergence | vorticity | laplacian | advection"
    )
    vector: VectorConfig | None = Field(
        default=None, description="{u: <var>, v: <var>} for divergence, vorticity, advection"
    )
    gradients: bool = Field(default=True, description="false: only the derived fields")

    @field_validator("dims", mode="before")
    @classmethod
    def _one_dim(cls, value: Any) -> Any:
        return _names(value)

    @field_validator("edge_order", mode="before")
    @classmethod
    def _edge_order(cls, value: Any) -> Any:
        # Strict: YAML's true and 1.0 are refused, although the function takes 1.0.
        if isinstance(value, (bool, float)):
            _fail(f"edge_order must be 1 or 2; got {_show(value)}")
        return _checked(check_edge_order, value)

    @field_validator("dims")
    @classmethod
    def _dims(cls, value: list[str] | None) -> list[str] | None:
        return _check_names(value, "dim")

    @field_validator("mask")
    @classmethod
    def _mask(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            _fail("must name a mask variable, or be auto, or be left out for no mask")
        return value

    @field_validator("datetime_unit", mode="before")
    @classmethod
    def _datetime_unit(cls, value: Any) -> Any:
        return _checked(check_datetime_unit, value) if isinstance(value, str) else value

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
        if self.radius != DEFAULT_RADIUS and self.geometry != "spherical":
            _fail("radius is only used with geometry: spherical", field="radius")
        check_derived(list(self.derived) if self.derived is not None else None, self.vector,
                      self.gradients)  # fmt: skip
        return self


class OutputConfig(BaseModel):
    """Where the result goes (``output:``).

    Attributes
    ----------
    path : str
        The zarr store to write (local path or fsspec URL). ``file://`` URLs become plain paths,
        because zarr's FsspecStore on ``file://`` does not write atomically (docs/reliability.md).
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
    storage_options : dict
        fsspec options for a URL ``path``, as for the input. Never recorded.
    """

    model_config = _FROZEN

    path: str = Field(description="zarr store to write (path or URL)")
    mode: Literal["error", "overwrite", "resume"] = Field(
        default="error", description="error (refuse an existing store) | overwrite | resume"
    )
    name: str = Field(default=DEFAULT_NAME, description="output name template: {var}, {dim}")
    verify: bool = Field(default=False, description="on resume, re-read every present chunk")
    lease_seconds: Annotated[float, Field(ge=1, le=86400, allow_inf_nan=False)] = Field(
        default=60.0, description="one run per store: how long its lease lasts unrenewed"
    )
    encoding: Encoding = Field(
        default_factory=Encoding, description="codec, level, dtype, shards, zarr_format"
    )
    storage_options: StorageOptions = _storage_options_field()

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
        _checked(check_name_template, value)
        return value

    @model_validator(mode="after")
    def _options_need_a_url(self) -> OutputConfig:
        _url_for_options(self.path, self.storage_options)
        return self


class RunConfig(BaseModel):
    """One batch run: the whole YAML file.

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

    def gradient_options(self) -> GradientOptions:
        """The options of the gradient this config asks for: the one mapping from the YAML
        keys to the accessor's arguments (:data:`OPTION_KEYS` maps them back for errors).

        Examples
        --------
        >>> cfg = RunConfig.model_validate({"input": {"path": "in.zarr", "variables": ["T"]},
        ...     "gradient": {"dims": ["time"], "datetime_unit": "h"}, "output": {"path": "o.zarr"}})
        >>> opts = cfg.gradient_options()
        >>> opts.variables, opts.dim, opts.datetime_unit
        (['T'], ['time'], 'h')
        """
        g = self.gradient
        return GradientOptions(
            dim=list(g.dims) if g.dims else None,
            variables=list(self.input.variables) if self.input.variables else None,
            edge_order=g.edge_order,
            datetime_unit=g.datetime_unit,
            periodic=dict(g.periodic) or None,  # type: ignore[arg-type]  # dict is invariant
            geometry=g.geometry,
            radius=g.radius,
            name=self.output.name,
            nan_policy=g.nan_policy,
            components=g.components,
            mask=g.mask,
        )

    def derived_request(self) -> tuple[list[str] | None, dict[str, Any] | None, bool]:
        """``(derived, vector, gradients)`` as :func:`daskgrad.vector_request.plan_with_derived`
        takes them.

        Examples
        --------
        >>> cfg = RunConfig.model_validate({"input": {"path": "in.zarr"}, "output": {"path": "o.zarr"},
        ...     "gradient": {"derived": ["vorticity"], "vector": {"u": "u10", "v": "v10"}}})
        >>> cfg.derived_request()
        (['vorticity'], {'u': 'u10', 'v': 'v10'}, True)
        """
        g = self.gradient
        vector = None
        if g.vector is not None:
            vector = {k: v for k, v in g.vector.model_dump().items() if v is not None}
        return (list(g.derived) if g.derived else None), vector, g.gradients

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON types (str, int, float, bool, None, list, dict).

        Every key is present, defaults included, so the result records exactly what ran; it is
        meant for provenance attributes and for the resume fingerprint. The exception is
        ``storage_options`` (input and output): how to reach a store is not what ran, and is
        never recorded.

        Examples
        --------
        >>> cfg = RunConfig.model_validate({"input": {"path": "s3://b/in.zarr",
        ...     "storage_options": {"anon": True}}, "output": {"path": "o.zarr"}})
        >>> cfg.input.storage_options, "storage_options" in cfg.to_dict()["input"]
        ({'anon': True}, False)
        """
        return self.model_dump(mode="json")
