"""Checks of a validated config against the file system, before anything is read or written.

The one rule for paths, URLs and globs is :mod:`daskgrad.batch.paths`'; this module applies it to a
config's input and output and says which key to change.

Examples
--------
>>> import tempfile
>>> from daskgrad.batch.config import load_config_text
>>> d = tempfile.mkdtemp()
>>> cfg = load_config_text(f"input: {{path: {d}/missing.zarr}}\\noutput: {{path: {d}/o.zarr}}")
>>> check_paths(cfg, source="run.yaml")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
daskgrad.batch.config.errors.ConfigError: run.yaml: input.path: '.../missing.zarr' does not exist (relative paths start at ...)
"""

from __future__ import annotations

import fnmatch
import os
import typing

from daskgrad.batch.config import ConfigError, RunConfig
from daskgrad.batch.config.errors import _show
from daskgrad.batch.paths import is_url, missing_package, normalize, overlap, resolve_input
from daskgrad.batch.remote import RemoteStore, storage_problem, target

__all__ = ["check_paths"]


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
    line tool), and the messages say which directory that was. An input URL and an output URL
    are compared as text.

    Checks, in order:

    - a URL's scheme has its package installed (``s3fs`` for ``s3://``, ``aiohttp`` for
      ``https://``);
    - a URL is looked up with its ``storage_options`` (one line, exit 2, for missing credentials
      or an endpoint that does not answer): the input must exist (a zarr input must be a
      store); an existing output follows the rules below for local outputs, and a new one
      needs its bucket to exist;
    - a local ``input.grid`` exists;
    - the input exists, by the one rule of :func:`daskgrad.batch.paths.resolve_input`: a path that
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
    _check_packages(cfg, source)
    _check_remote(cfg, source)
    inputs, in_glob = _local_inputs(cfg, source)
    _check_grid(cfg, source)
    _check_overlap(cfg, inputs, in_glob, source)
    if not is_url(cfg.output.path):
        _check_output_target(cfg, source)
    _check_tls(cfg, source)


def _refuse(source: str, key: str, reason: str) -> typing.NoReturn:
    raise ConfigError(source, key, None, reason)


def _check_packages(cfg: RunConfig, source: str) -> None:
    """A URL's scheme has its package installed (s3fs for s3://, aiohttp for https://)."""
    for key, url in (("input.path", cfg.input.path), ("output.path", cfg.output.path)):
        package = missing_package(url) if is_url(url) else None
        if package:
            _refuse(
                source,
                key,
                f"{_show(url)} needs the package {package!r}, which is not installed "
                f"(pip install {package})",
            )


def _check_remote(cfg: RunConfig, source: str) -> None:
    """Look up input and output URLs; a failure to reach them is one line naming the key."""
    for section, store in (
        ("input", target(cfg.input.path, cfg.input.storage_options)),
        ("output", target(cfg.output.path, cfg.output.storage_options)),
    ):
        if not isinstance(store, RemoteStore):
            continue
        try:
            fs, root = store.filesystem()
        except Exception as err:  # an option the file system does not take
            _refuse(source, f"{section}.storage_options", f"{type(err).__name__}: {err}")
        try:
            if section == "input":
                reason = _remote_input(cfg, fs, root)
            else:
                reason = _remote_output(cfg, fs, root)
        except Exception as err:
            problem = storage_problem(err) or f"{type(err).__name__}: {err}"
            # The client takes the options only at its first request: an unknown one is a TypeError.
            key = f"{section}.storage_options" if isinstance(err, TypeError) else f"{section}.path"
            _refuse(source, key, f"cannot use {_show(store.url)}: {problem}")
        if reason:
            _refuse(source, f"{section}.path", reason)


_ZARR_ROOTS = ("zarr.json", ".zgroup", ".zarray", ".zmetadata")


def _remote_input(cfg: RunConfig, fs: typing.Any, root: str) -> str | None:
    """A zarr input URL has its root metadata (asked for by name: over https:// a store's
    folder need not answer). A netCDF URL (OPeNDAP ...) is left to the reader to open."""
    if cfg.input.resolved_engine != "zarr":
        return None
    if any(fs.exists(f"{root}/{name}") for name in _ZARR_ROOTS):
        return None
    if fs.exists(root):
        return f"{_show(cfg.input.path)} is not a zarr store (no zarr.json or .zgroup at its root)"
    return f"{_show(cfg.input.path)} does not exist"


def _remote_output(cfg: RunConfig, fs: typing.Any, root: str) -> str | None:
    """The rules of :func:`_check_output_target`, for a URL (a bucket for a parent folder)."""
    url, mode = cfg.output.path, cfg.output.mode
    if fs.exists(root):
        if mode == "error":
            return (
                f"{_show(url)} already exists; use --set output.mode=overwrite to replace it or "
                "--set output.mode=resume to finish an interrupted run"
            )
        is_store = any(fs.exists(f"{root}/{name}") for name in _ZARR_ROOTS)
        # A creation killed before the root's zarr.json leaves only arrays' metadata.
        if not is_store and any(k.rsplit("/", 1)[-1] != "zarr.json" for k in fs.find(root)):
            return f"{_show(url)} exists and is not a zarr store; refusing to {mode} it"
        return None
    # Object stores have no folders to create, but their buckets (s3fs, gcsfs, adlfs) must exist.
    split = getattr(fs, "split_path", None)
    bucket = split(root)[0] if split is not None else None
    if bucket and bucket != root and not fs.exists(bucket):
        return f"cannot create {_show(url)}: the bucket {_show(bucket)} does not exist"
    return None


def _local_inputs(cfg: RunConfig, source: str) -> tuple[list[str], bool]:
    """The local input files, normalized, and whether they came from a glob (URLs: none)."""
    if is_url(cfg.input.path):
        return [], False
    try:
        found = resolve_input(cfg.input.path)
    except FileNotFoundError as err:
        reason = str(err)
        if "broken symbolic link" not in reason:
            reason += f" (relative paths start at {os.getcwd()})"
        _refuse(source, "input.path", reason)
    return [normalize(p) for p in found.paths], found.kind == "glob"


def _check_grid(cfg: RunConfig, source: str) -> None:
    """A local ``input.grid`` exists (it is opened, and checked against the input, by the plan)."""
    grid = cfg.input.grid
    if grid is not None and not is_url(grid) and not os.path.exists(grid):
        _refuse(
            source,
            "input.grid",
            f"{_show(grid)} does not exist (relative paths start at {os.getcwd()})",
        )


def _check_overlap(cfg: RunConfig, inputs: list[str], in_glob: bool, source: str) -> None:
    """The output is not the input, inside it, around it, or matched by the input's glob."""
    in_path, out_path = cfg.input.path, cfg.output.path
    if is_url(in_path) and is_url(out_path):
        a, b = normalize(in_path), normalize(out_path)
        if a == b or b.startswith(a + "/") or a.startswith(b + "/"):
            _refuse(source, "output.path", f"{_show(out_path)} overlaps the input {_show(in_path)}")
    if is_url(out_path):
        return
    for item in inputs:
        relation = overlap(out_path, item)
        if relation == "same":
            _refuse(source, "output.path", f"{_show(out_path)} is the input itself")
        if relation == "inside":
            _refuse(
                source,
                "output.path",
                f"{_show(out_path)} is inside the input {_show(in_path)}; the input is never written",
            )
        if relation == "contains":
            _refuse(
                source,
                "output.path",
                f"{_show(out_path)} contains the input {_show(in_path)}; pick another directory",
            )
    if in_glob and fnmatch.fnmatchcase(os.path.abspath(out_path), os.path.abspath(in_path)):
        _refuse(source, "output.path", f"{_show(out_path)} matches the input glob {_show(in_path)}")


def _check_output_target(cfg: RunConfig, source: str) -> None:
    """An existing local output may be replaced only if it is a store; its parent is writable."""
    out_path, mode = cfg.output.path, cfg.output.mode
    if os.path.lexists(out_path):
        if mode == "error":
            _refuse(
                source,
                "output.path",
                f"{_show(out_path)} already exists; use --set output.mode=overwrite to replace "
                "it or --set output.mode=resume to finish an interrupted run",
            )
        if not (_is_zarr_store(out_path) or _only_leftovers(out_path)):
            _refuse(
                source,
                "output.path",
                f"{_show(out_path)} exists and is not a zarr store; refusing to {mode} it",
            )
    parent = os.path.dirname(os.path.abspath(out_path))
    while not os.path.lexists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        _refuse(
            source,
            "output.path",
            f"cannot create {_show(out_path)}: {_show(parent)} is not a directory",
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        _refuse(
            source,
            "output.path",
            f"cannot create {_show(out_path)}: {_show(parent)} is not writable",
        )


def _check_tls(cfg: RunConfig, source: str) -> None:
    tls = cfg.cluster.tls
    if tls is None:
        return
    for name in ("ca_file", "cert", "key"):
        file = getattr(tls, name)
        if not os.path.isfile(file):
            _refuse(
                source,
                f"cluster.tls.{name}",
                f"{_show(file)} is not a file (relative paths start at {os.getcwd()})",
            )
