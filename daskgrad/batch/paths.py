"""One rule for paths, URLs and globs, shared by ``validate``, ``run`` and the accessor.

* A URL (``s3://``, ``https://`` ...) is taken as it is; only its scheme's package is checked.
* ``file://`` URLs and ``~`` become plain local paths; a local path that exists is taken
  **literally**, even when it contains ``*``, ``?`` or ``[`` (``data[1].nc`` is a file name).
* A glob applies only when the path does not exist as given.
* Comparisons (is the output the input, inside it, around it?) use :func:`normalize`: ``~``,
  ``..`` and symbolic links resolved, so ``~/in.zarr/x.zarr`` and ``link/../in.zarr`` are caught.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

__all__ = [
    "InputPaths",
    "check_zarr_target",
    "is_url",
    "missing_package",
    "normalize",
    "overlap",
    "resolve_input",
    "sources_of",
    "store_location",
]

_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*::)*[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(path: str) -> bool:
    """True for ``scheme://...`` (``file://`` included; :func:`normalize` turns it into a path)."""
    return bool(_URL.match(str(path)))


def _local(path: str | os.PathLike[str]) -> str:
    """``file://`` URL or path -> a plain path with ``~`` expanded (not yet resolved)."""
    text = os.fspath(path)
    if text[:7].lower() == "file://":
        text = unquote(urlsplit(text).path)
    return os.path.expanduser(text)


def normalize(path: str | os.PathLike[str]) -> str:
    """The path as the file system will see it: ``file://``, ``~``, ``..`` and links resolved.

    URLs other than ``file://`` come back unchanged except for a trailing ``/``.

    Examples
    --------
    >>> import os
    >>> normalize("~/a/../b.zarr") == os.path.realpath(os.path.expanduser("~/b.zarr"))
    True
    >>> normalize("s3://bucket/x.zarr/")
    's3://bucket/x.zarr'
    """
    text = os.fspath(path)
    if is_url(text) and text[:7].lower() != "file://":
        return text.rstrip("/")
    return os.path.realpath(os.path.abspath(_local(text)))


def overlap(a: str, b: str) -> Literal["same", "inside", "contains"] | None:
    """How path ``a`` relates to path ``b`` after :func:`normalize`; None if apart.

    Examples
    --------
    >>> overlap("/x/in.zarr/out.zarr", "/x/in.zarr"), overlap("/x", "/x/in.zarr")
    ('inside', 'contains')
    >>> overlap("/x/a.zarr", "/x/ab.zarr") is None
    True
    """
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return "same"
    if na.startswith(nb.rstrip("/") + "/"):
        return "inside"
    if nb.startswith(na.rstrip("/") + "/"):
        return "contains"
    return None


@dataclass(frozen=True)
class InputPaths:
    """What an ``input.path`` names: ``kind`` is ``url``, ``path`` or ``glob``."""

    kind: Literal["url", "path", "glob"]
    paths: list[str]

    def note(self, pattern: str) -> str | None:
        """The note line a glob earns (how many files it matched), else None."""
        if self.kind != "glob":
            return None
        n = len(self.paths)
        return f"note: input.path {pattern!r} is a glob; it matched {n} file{'s' if n != 1 else ''}"


def resolve_input(path: str) -> InputPaths:
    """Apply the one rule: URL as is; an existing path literally; else a glob, sorted.

    Raises
    ------
    FileNotFoundError
        The path does not exist and is not a glob, or the glob matches nothing.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("data[1].nc", "data1.nc"):
    ...     _ = (d / name).write_bytes(b"")
    >>> resolve_input(str(d / "data[1].nc")).kind  # exists: taken literally
    'path'
    >>> r = resolve_input(str(d / "data?.nc")); r.kind, len(r.paths)
    ('glob', 1)
    """
    if is_url(path) and path[:7].lower() != "file://":
        return InputPaths("url", [path])
    local = _local(path)
    if os.path.exists(local):
        return InputPaths("path", [local])
    if os.path.lexists(local):
        raise FileNotFoundError(f"{path!r} is a broken symbolic link")
    if glob.has_magic(local):
        found = sorted(glob.glob(local))
        if not found:
            raise FileNotFoundError(f"the glob {path!r} matches no file")
        return InputPaths("glob", found)
    raise FileNotFoundError(f"{path!r} does not exist")


# Packages fsspec needs for a scheme; fsspec's own registry says the same, but only in an
# ImportError text, and "s3fs" reads better than a traceback.
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs",
             "abfs": "adlfs", "abfss": "adlfs", "http": "aiohttp", "https": "aiohttp"}  # fmt: skip


def missing_package(url: str) -> str | None:
    """The package a URL's scheme needs and that is not installed, else None.

    Examples
    --------
    >>> missing_package("/a/local/path") is None
    True
    """
    if not is_url(url):
        return None
    protocol = url.split("://", 1)[0].split("::")[-1].lower()
    if protocol == "file":
        return None
    try:
        import fsspec

        fsspec.get_filesystem_class(protocol)
    except ImportError as err:
        return _PACKAGES.get(protocol) or (getattr(err, "name", None) or str(err))
    except ValueError:  # fsspec does not know the scheme at all
        return f"an fsspec implementation of {protocol}://"
    return None


def store_location(store: Any) -> str | None:
    """A comparable location of a zarr store argument (path, URL, LocalStore, fsspec map)."""
    if isinstance(store, (str, os.PathLike)):
        return normalize(store)
    for attr in ("root", "path"):
        value = getattr(store, attr, None)
        if isinstance(value, (str, os.PathLike)):
            protocol = getattr(getattr(store, "fs", None), "protocol", None)
            if isinstance(protocol, (tuple, list)):
                protocol = protocol[0]
            if protocol and protocol not in ("file", "local") and not is_url(str(value)):
                return normalize(f"{protocol}://{value}")
            return normalize(value)
    return None


def _unwrap(obj: Any, depth: int = 0) -> str | None:
    """Walk xarray's lazy array wrappers down to the backend; its file or store location."""
    while depth < 32 and obj is not None:
        store = getattr(getattr(obj, "_array", None), "store", None)  # ZarrArrayWrapper
        if store is not None:
            return store_location(store)
        datastore = getattr(obj, "datastore", None)  # netCDF and other backend wrappers
        if datastore is not None:
            name = getattr(datastore, "_filename", None) or getattr(datastore, "filename", None)
            if isinstance(name, (str, os.PathLike)):
                return normalize(name)
        obj = getattr(obj, "array", None)
        depth += 1
    return None


def sources_of(obj: Any) -> set[str]:
    """The files and stores an xarray object reads from (normalized), as far as can be told.

    Looks at ``encoding["source"]`` of the object and of each variable, at the lazy backend
    arrays, and at the dask graph of each variable (the ``original-`` layers ``open_*`` makes).
    """
    found: set[str] = set()
    variables = getattr(obj, "variables", None)
    items = list(variables.values()) if variables is not None else [getattr(obj, "variable", obj)]
    for holder in (obj, *items):
        source = (getattr(holder, "encoding", None) or {}).get("source")
        if isinstance(source, (str, os.PathLike)):
            found.add(normalize(source))
    for var in items:
        data = getattr(var, "_data", None)
        location = _unwrap(data)
        if location:
            found.add(location)
        graph = getattr(getattr(var, "data", None), "dask", None)
        layers = getattr(graph, "layers", None) or {}
        for name, layer in layers.items():
            if not str(name).startswith("original-"):
                continue
            for value in layer.values():
                location = _unwrap(value)
                if location:
                    found.add(location)
    return found


def check_zarr_target(obj: Any, store: Any, *, argument: str = "store") -> None:
    """Refuse a ``to_zarr`` target that would destroy the input or could never be read back.

    The target must not be a file or store ``obj`` reads from, nor inside one, nor contain
    one: ``mode="w"`` deletes the target before the lazy input is read. (Output names that
    zarr would read as nested groups are refused by :func:`daskgrad.plan.check_storable`.)

    Raises
    ------
    ValueError
        Naming the argument (``store``) and the path.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> a = xr.DataArray(np.zeros(3), dims="x", name="T")
    >>> check_zarr_target(a, "/tmp/out.zarr")
    """
    target = store_location(store)
    if target is None:
        return
    for source in sources_of(obj):
        relation = overlap(target, source) if not (is_url(target) ^ is_url(source)) else None
        if relation is not None:
            what = {
                "same": "is the source",
                "inside": "is inside the source",
                "contains": "contains the source",
            }[relation]
            raise ValueError(
                f"{argument}={os.fspath(store) if isinstance(store, (str, os.PathLike)) else store!r} "
                f"{what} {source!r} of the data being differentiated; writing there would destroy "
                "the input before it is read. Write to another path"
            )
