"""How output arrays are stored: codec, level, shuffle, dtype, shards and zarr format.

``output.encoding`` in a run config is an :class:`Encoding`. Its keys apply to every output
variable; ``variables`` overrides them for single outputs, by output name::

    output:
      encoding:
        codec: blosc          # blosc (default) | zstd | none
        level: 3              # blosc 0-9 (default 5), zstd -131072..22 (0: zstd's default)
        shuffle: byte         # blosc only: bit (default) | byte | none
        dtype: float32        # store float64 results as float32
        shards: 256MiB        # or blocks per shard by dim: {time: 4, lat: 2}
        zarr_format: 3        # 2 for older readers (no shards)
        variables:
          dT_dx: {codec: zstd, level: 9, dtype: float64}

The default is blosc with lz4 at level 5 and bit shuffle, no shards, zarr format 3: on the
out-of-core benchmarks it wrote 4-11% fewer bytes than zarr's default (zstd level 0) with
35-45% less CPU (docs/benchmarks.md, "Output codecs"); ``codec: zstd`` gives zarr's default.
:func:`resolve` turns the settings of one variable into a
:class:`Layout`: the keyword arguments zarr-python 3 (through xarray's ``encoding``) needs to
create the array, the dtype to store and the shard shape in blocks. Mistakes are refused when
the config is read, in one line that names the key, the value and what is allowed; those that
need the data (a complex result stored as real, shards naming an unknown dim) when the run is
planned.

Shards: one dask block is one inner chunk, and a shard holds a box of blocks. A shard is
written whole, by one task, so no two tasks ever read-modify-write the same shard file, and
the presence of a shard's key means all its blocks are written (see docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dask.array as da
import numpy as np
from dask.utils import parse_bytes
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator
from pydantic_core import PydanticCustomError

from daskgrad.core.options import OptionError

__all__ = [
    "DTYPES",
    "Encoding",
    "Layout",
    "VariableEncoding",
    "resolve",
    "resolve_all",
    "shard_blocks",
]

#: Output dtypes one may ask for (gradients are inexact numbers; integers would truncate).
DTYPES = ("float16", "float32", "float64", "complex64", "complex128")
#: The inclusive level range of each codec.
LEVELS = {"zstd": (-131072, 22), "blosc": (0, 9)}
BLOSC_CNAMES = ("lz4", "lz4hc", "blosclz", "zstd", "zlib")

_MODEL = ConfigDict(extra="forbid", strict=True, frozen=True)

Codec = Literal["zstd", "blosc", "none"]
Shuffle = Literal["byte", "bit", "none"]


def _fail(reason: str, field: str | None = None) -> Any:
    """A validation error whose one-line reason the config loader shows as it is."""
    ctx: dict[str, Any] = {"reason": reason}
    if field is not None:
        ctx["field"] = field
    raise PydanticCustomError("daskgrad", "{reason}", ctx)


def _check_dtype(value: str | None) -> str | None:
    if value is None or value in DTYPES:
        return value
    kind: str = ""
    # numpy raises TypeError, ValueError or SyntaxError for odd strings
    with contextlib.suppress(Exception):
        kind = np.dtype(value).kind
    why = (
        "an integer or boolean dtype would truncate the gradients"
        if kind in "biu" and kind
        else "it is not an output dtype"
    )
    return _fail(f"{value!r}: {why}; allowed: {', '.join(DTYPES)}")


def _check_shards(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            size = parse_bytes(value)
        except (ValueError, TypeError):
            size = 0
        if size <= 0:
            _fail(
                f"{value!r} is not a shard size; write a size such as '256MiB', or blocks "
                "per shard by dim such as {time: 4, lat: 2}"
            )
        return value
    if isinstance(value, Mapping):
        for dim, n in value.items():
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                _fail(f"blocks per shard along {dim!r} must be a positive integer, got {n!r}")
        return dict(value)
    return _fail(
        f"{value!r}: write a shard size such as '256MiB', or blocks per shard by dim such as "
        "{time: 4, lat: 2}"
    )


class VariableEncoding(BaseModel):
    """Settings of one output variable (``output.encoding.variables.<name>``); unset keys
    take the run's (:class:`Encoding`)."""

    model_config = _MODEL

    codec: Codec | None = Field(default=None, description="zstd | blosc | none")
    level: int | None = Field(default=None, description="compression level")
    shuffle: Shuffle | None = Field(default=None, description="blosc: byte | bit | none")
    cname: Literal["lz4", "lz4hc", "blosclz", "zstd", "zlib"] | None = Field(
        default=None, description="blosc's inner compressor (lz4 by default)"
    )
    dtype: str | None = Field(default=None, description="stored dtype, e.g. float32")
    shards: str | dict[str, PositiveInt] | None = Field(
        default=None, description="shard size ('256MiB') or blocks per shard by dim"
    )

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str | None) -> str | None:
        return _check_dtype(value)

    @field_validator("shards", mode="before")
    @classmethod
    def _shards(cls, value: Any) -> Any:
        return _check_shards(value)


@dataclass(frozen=True)
class Settings:
    """The settings of one variable, every key decided."""

    codec: str
    level: int | None
    shuffle: str | None
    cname: str
    dtype: str | None
    shards: str | dict[str, int] | None


def _check(s: Settings, zarr_format: int) -> tuple[str, str] | None:
    """What is wrong with a combination of settings, as ``(key, reason)``; None if nothing."""
    if s.level is not None:
        if s.codec == "none":
            return "level", f"{s.level} is given, but codec 'none' does not compress; leave it out"
        low, high = LEVELS[s.codec]
        if not low <= s.level <= high:
            return "level", f"{s.level} is out of range for {s.codec} ({low} to {high})"
    if s.shuffle is not None and s.codec != "blosc":
        return "shuffle", f"{s.shuffle!r} needs codec 'blosc' (the codec is {s.codec!r})"
    if s.shards is not None and zarr_format != 3:
        return "shards", f"{s.shards!r} need zarr_format 3 (sharding is a zarr v3 codec)"
    return None


class Encoding(VariableEncoding):
    """The output encoding of a run (``output.encoding``).

    Attributes
    ----------
    codec : {'blosc', 'zstd', 'none'}
        The compressor: ``blosc`` (default; lz4, bit shuffle) or ``zstd`` (level 0: zarr's
        default codec, what daskgrad wrote before ``output.encoding`` existed).
    level : int or None
        Compression level: zstd -131072 to 22 (0 means zstd's default, 3), blosc 0 to 9
        (default 5). None: the codec's default.
    shuffle : {'byte', 'bit', 'none'} or None
        Blosc's shuffle filter (default ``bit``); refused with another codec.
    cname : str or None
        Blosc's inner compressor: lz4 (default), lz4hc, blosclz, zstd, zlib.
    dtype : str or None
        The stored dtype (float16, float32, float64, complex64, complex128); None keeps the
        result's. Values are rounded to it (numpy ``astype``) in the write task.
    shards : str, dict or None
        A target shard size (``'256MiB'``, uncompressed; shards grow along the last dims
        first) or the blocks per shard by dim (``{time: 4}``; dims not named: 1).
    zarr_format : {2, 3}
        3 (default); 2 for readers that know only zarr v2 (no shards).
    variables : dict
        Per output variable (by its output name), keys that replace the ones above.

    Examples
    --------
    >>> enc = Encoding.model_validate({"codec": "zstd", "variables": {"dT_dx": {"level": 9}}})
    >>> enc.settings("dT_dx").level, enc.settings("dT_dy").level
    (9, None)
    >>> try:
    ...     Encoding.model_validate({"level": 40})
    ... except ValueError as err:
    ...     print(err.errors()[0]["msg"])
    40 is out of range for blosc (0 to 9)
    """

    codec: Codec = Field(default="blosc", description="blosc (default) | zstd | none")
    zarr_format: Literal[2, 3] = Field(default=3, description="3 (default) | 2 for older readers")
    variables: dict[str, VariableEncoding] = Field(
        default_factory=dict, description="per output variable: keys that replace the above"
    )

    def settings(self, variable: str) -> Settings:
        """The settings of one output variable: its overrides, then the run's."""
        own = self.variables.get(variable)

        def pick(key: str) -> Any:
            value = getattr(own, key) if own is not None else None
            return getattr(self, key) if value is None else value

        codec = pick("codec")
        shuffle = pick("shuffle")
        if (
            own is not None
            and own.codec is not None
            and own.codec != "blosc"
            and own.shuffle is None
        ):
            shuffle = None  # a variable that leaves blosc leaves its shuffle behind too
        return Settings(
            codec=codec,
            level=pick("level"),
            shuffle=shuffle,
            cname=pick("cname") or "lz4",
            dtype=pick("dtype"),
            shards=pick("shards"),
        )

    @model_validator(mode="after")
    def _combinations(self) -> Encoding:
        problem = _check(self.settings(""), self.zarr_format)
        if problem:
            _fail(problem[1], field=problem[0])
        for name in self.variables:
            problem = _check(self.settings(name), self.zarr_format)
            if problem:
                _fail(f"{name}.{problem[0]}: {problem[1]}", field="variables")
        return self

    def is_default(self) -> bool:
        """True when nothing is set (the fingerprint of a run then leaves the encoding out)."""
        return self == Encoding()


@dataclass(frozen=True)
class Layout:
    """How one output variable is stored.

    Attributes
    ----------
    dtype
        The stored dtype.
    zarr_encoding
        Keys for xarray's ``to_zarr(encoding={var: ...})`` besides ``chunks`` and the fill value:
        ``compressors``, ``filters``, ``serializer`` (v3), ``shards`` (in elements).
    shard_blocks
        Blocks per shard along each dim; None without shards.
    """

    dtype: np.dtype
    zarr_encoding: dict[str, Any]
    shard_blocks: tuple[int, ...] | None = None


def shard_blocks(
    shards: str | Mapping[str, int],
    dims: Sequence[str],
    chunk_shape: Sequence[int],
    grid: Sequence[int],
    itemsize: int,
) -> tuple[int, ...]:
    """Blocks per shard along each dim, from a target size or from blocks per dim.

    A target size grows the shard along the last dim first (the fastest varying in the file),
    never beyond the array, keeping it at most the target (uncompressed; at least one block).

    Examples
    --------
    Blocks of 1 MiB (512 x 256 float64) on a grid of 8 x 8 x 8 blocks:

    >>> shard_blocks("16MiB", ("t", "y", "x"), (1, 512, 256), (8, 8, 8), 8)
    (1, 2, 8)
    >>> shard_blocks({"t": 4}, ("t", "y", "x"), (1, 512, 256), (8, 8, 8), 8)
    (4, 1, 1)
    """
    if not isinstance(shards, str):
        return tuple(min(int(shards.get(d, 1)), max(1, n)) for d, n in zip(dims, grid))
    block_bytes = math.prod(chunk_shape) * itemsize
    room = max(1, parse_bytes(shards) // max(1, block_bytes))
    per = [1] * len(grid)
    for axis in reversed(range(len(grid))):
        per[axis] = max(1, min(max(1, grid[axis]), room // math.prod(per)))
    return tuple(per)


def _compressors(s: Settings, itemsize: int, zarr_format: int) -> Any:
    if s.codec == "none":
        return None
    if zarr_format == 2:
        import numcodecs

        if s.codec == "zstd":
            return numcodecs.Zstd(level=0 if s.level is None else s.level)
        v2_shuffle = {"byte": numcodecs.Blosc.SHUFFLE, "bit": numcodecs.Blosc.BITSHUFFLE}
        return numcodecs.Blosc(
            cname=s.cname,
            clevel=5 if s.level is None else s.level,
            shuffle=v2_shuffle.get(s.shuffle or "bit", numcodecs.Blosc.NOSHUFFLE),
        )
    from zarr.codecs import BloscCodec, ZstdCodec

    if s.codec == "zstd":
        return (ZstdCodec(level=0 if s.level is None else s.level),)
    shuffle: Any = {"byte": "shuffle", "bit": "bitshuffle", "none": "noshuffle"}[s.shuffle or "bit"]
    return (
        BloscCodec(
            cname=s.cname,  # type: ignore[arg-type]
            clevel=5 if s.level is None else s.level,
            shuffle=shuffle,
            typesize=itemsize,
        ),
    )


def resolve(
    encoding: Encoding,
    variable: str,
    dims: Sequence[str],
    result_dtype: np.dtype,
    chunk_shape: Sequence[int],
    grid: Sequence[int],
) -> Layout:
    """The :class:`Layout` of one output variable.

    Raises
    ------
    daskgrad.core.options.OptionError
        A stored dtype that would drop the imaginary part of a complex result, or any dtype
        for a non-float result; shards naming a dim the variable lacks. ``argument`` is the
        key under ``encoding`` (``"encoding.dtype"``, ``"encoding.shards"``).

    Examples
    --------
    >>> enc = Encoding.model_validate({"dtype": "float32", "shards": {"x": 2}})
    >>> lay = resolve(enc, "df_dx", ("y", "x"), np.dtype("f8"), (4, 4), (3, 3))
    >>> lay.dtype, lay.shard_blocks, lay.zarr_encoding["shards"]
    (dtype('float32'), (1, 2), (4, 8))
    """
    s = encoding.settings(variable)
    result_dtype = np.dtype(result_dtype)
    dtype = result_dtype
    if s.dtype is not None:
        dtype = np.dtype(s.dtype)
        if result_dtype.kind not in "fc":
            raise OptionError(
                "encoding.dtype",
                f"{s.dtype!r} cannot store {variable!r}, whose values are "
                f"{result_dtype} (only float and complex results are cast)",
            )
        if result_dtype.kind == "c" and dtype.kind != "c":
            raise OptionError(
                "encoding.dtype",
                f"{s.dtype!r} would drop the imaginary part of {variable!r} "
                f"({result_dtype}); use complex64 or complex128",
            )
    enc: dict[str, Any] = {"compressors": _compressors(s, dtype.itemsize, encoding.zarr_format)}
    blocks = None
    if s.shards is not None:
        if isinstance(s.shards, Mapping):
            unknown = sorted(set(s.shards) - set(dims))
            if unknown:
                raise OptionError(
                    "encoding.shards",
                    f"dim {unknown[0]!r} is not a dim of {variable!r} ({', '.join(dims)})",
                )
        blocks = shard_blocks(s.shards, dims, chunk_shape, grid, dtype.itemsize)
        enc["shards"] = tuple(b * c for b, c in zip(blocks, chunk_shape))
    return Layout(dtype=dtype, zarr_encoding=enc, shard_blocks=blocks)


def resolve_all(
    encoding: Encoding, result: Any, chunk_shapes: Mapping[str, Sequence[int]]
) -> dict[str, Layout]:
    """The :class:`Layout` of every output variable of ``result`` (an ``xarray.Dataset``).

    Raises
    ------
    daskgrad.core.options.OptionError
        As :func:`resolve`, or ``encoding.variables`` for an override naming no output variable.
    """
    names = [str(v) for v in result.data_vars]
    unknown = sorted(set(encoding.variables) - set(names))
    if unknown:
        raise OptionError(
            "encoding.variables",
            f"{unknown[0]!r} is not an output variable; the outputs are {', '.join(names)}",
        )
    layouts = {}
    for v in names:
        x = result[v]
        grid = tuple(-(-n // c) if n else 0 for n, c in zip(x.shape, chunk_shapes[v]))
        layouts[v] = resolve(encoding, v, [str(d) for d in x.dims], x.dtype, chunk_shapes[v], grid)
    return layouts


def fill_value(dtype: np.dtype) -> Any:
    """The fill value of an output array: NaN for floats, NaT for timedeltas, else 0.

    Examples
    --------
    >>> fill_value(np.dtype("float32")), fill_value(np.dtype("int64"))
    (nan, 0)
    """
    if dtype.kind in "fc":
        return np.nan
    if dtype.kind == "m":
        return np.timedelta64("NaT")
    return 0


def xarray_encoding(
    template: Any,
    layouts: Mapping[str, Layout],
    chunk_shapes: Mapping[str, Sequence[int]],
    zarr_format: int,
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """``template`` (the lazy outputs) with each variable in its stored dtype, and the
    ``encoding`` argument of ``xarray.Dataset.to_zarr`` that creates the arrays: one zarr chunk
    per block, the fill value, the codecs and shards of each :class:`Layout`.

    The cast is metadata only here; each block is cast when it is written.

    Examples
    --------
    >>> import xarray as xr
    >>> ds = xr.Dataset({"g": ("x", np.zeros(4))})
    >>> lay = resolve(Encoding(dtype="float32"), "g", ["x"], ds["g"].dtype, (2,), (2,))
    >>> t, enc = xarray_encoding(ds, {"g": lay}, {"g": (2,)}, 3)
    >>> t["g"].dtype, enc["g"]["chunks"]
    (dtype('float32'), (2,))
    """
    template = template.copy()
    encoding = {}
    for v, layout in layouts.items():
        if layout.dtype != template[v].dtype:
            template[v] = template[v].astype(layout.dtype)
        encoding[v] = {
            "chunks": tuple(chunk_shapes[v]),
            # zarr v2 takes the fill value from xarray's _FillValue (NaN for floats)
            **({"fill_value": fill_value(template[v].dtype)} if zarr_format == 3 else {}),
            **layout.zarr_encoding,
        }
    return template, encoding


def write_metadata(
    result: Any,
    store: Any,
    layouts: Mapping[str, Layout],
    chunk_shapes: Mapping[str, Sequence[int]],
    zarr_format: int,
    mode: str,
) -> None:
    """Create the output store of the lazy ``result``: every array's metadata as ``layouts``
    say, the coordinates (small, loaded now) and the attributes; no block is computed.

    The input's own encoding (a v2 compressor, netCDF settings) is dropped: it must not reach
    the output. Blocks are written later, each by its own task (:mod:`daskgrad.batch.writer`).

    Examples
    --------
    >>> import tempfile, dask.array as da, xarray as xr, zarr
    >>> ds = xr.Dataset({"g": ("x", da.zeros(4, chunks=2))})
    >>> lay = resolve(Encoding(), "g", ["x"], ds["g"].dtype, (2,), (2,))
    >>> path = tempfile.mkdtemp() + "/m.zarr"
    >>> write_metadata(ds, path, {"g": lay}, {"g": (2,)}, 3, "w-")
    >>> zarr.open_group(path)["g"].chunks
    (2,)
    """
    template = result.copy().drop_encoding()
    for name, coord in template.coords.items():
        coord = coord.load()
        if coord.dtype.kind == "U":  # ERA5's expver: zarr v3's variable-length strings, which
            coord = coord.astype(object)  # have a spec (fixed-length UTF-32 warns it has none)
        template = template.assign_coords({name: coord.variable})  # not its coords, older
    for name in list(template.data_vars):
        # One dask chunk per array: xarray then plans one (never run) write task per array, not
        # one per block (a 100 TiB output has a million blocks); the zarr chunks and shards
        # come from the encoding below.
        var = template[name]
        template[name] = var.copy(data=da.empty(var.shape, chunks=var.shape or (), dtype=var.dtype))
    template, encoding = xarray_encoding(template, layouts, chunk_shapes, zarr_format)
    template.attrs = dict(template.attrs)
    template.to_zarr(
        store,
        mode=mode,
        compute=False,  # metadata and coordinates only
        consolidated=False,  # consolidated once, last, when every block is written
        zarr_format=zarr_format,
        encoding=encoding,
        # xarray refuses dask blocks smaller than a shard; each shard is written whole from all
        # its blocks by one task (daskgrad.batch.writer), which is what that check guards.
        safe_chunks=not any(lay.shard_blocks for lay in layouts.values()),
    )
