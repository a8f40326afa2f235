"""A cheap digest of the input, so a store is only ever finished from the input it was begun with.

The resume fingerprint covers the config and the input's *shape* (names, dims, dtypes,
chunks, coordinate values); new values in the same shape would pass it and a resumed store
would mix two inputs. So the runner also records, at store creation, a digest of the input's
*files*, checks it on resume, and checks it again before marking the store complete.

The digest is a **listing**, never a read of the data: for a local zarr store every file of
each used array (metadata and chunks) with its size and modification time (ns); for netCDF the
size and modification time of each file; for a URL what ``fsspec``'s ``find(detail=True)``
reports (size, and a modification time or ETag where the file system gives one). Its cost is
one ``stat`` per chunk file (see docs/reliability.md for a measurement); its memory is constant:
the listing is streamed a directory at a time into a sum of per-file hashes, whatever the
number of chunks (an object store's listing of one array is still held at once). A change that keeps a
file's size and mtime (rare: a copy with ``cp -p`` of different data of the same compressed
size) goes unseen.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from daskgrad.batch.paths import is_url, normalize, resolve_input

__all__ = ["DIGEST_FORMAT", "describe_change", "input_digest"]

#: The digest's layout: 2 is streamed and order-free (daskgrad 0.1 stores before it used 1).
DIGEST_FORMAT = 2

# Files at the root of a zarr store that describe the whole group.
_ROOT_METADATA = ("zarr.json", ".zgroup", ".zattrs", ".zmetadata")


class _Digest:
    """A digest of listing lines in any order, in constant memory: the sum (mod 2**256) of
    each line's sha256, and the count. The listing is streamed (a directory at a time), so a
    store of a million chunk files is never a list of a million lines."""

    def __init__(self) -> None:
        self.total = 0
        self.count = 0

    def add(self, line: str) -> None:
        h = hashlib.sha256(line.encode("utf-8", "surrogateescape")).digest()
        self.total = (self.total + int.from_bytes(h, "big")) % (1 << 256)
        self.count += 1

    def hexdigest(self) -> str:
        return hashlib.sha256(self.total.to_bytes(32, "big") + str(self.count).encode()).hexdigest()


def _scan(folder: str) -> Iterator[os.DirEntry]:
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return
    with entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _scan(entry.path)
            else:
                yield entry


def _walk(folder: str, relative_to: str, digest: _Digest) -> None:
    for entry in _scan(folder):
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # a temporary that vanished while listing
            continue
        digest.add(f"{os.path.relpath(entry.path, relative_to)}\t{st.st_size}\t{st.st_mtime_ns}")


def _fsspec_lines(url: str, storage_options: Mapping[str, Any]) -> list[str]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(url, **storage_options)
    fs.invalidate_cache(root)  # a listing cached before the run would hide a change during it
    lines = []
    for key, info in sorted(fs.find(root, detail=True).items()):
        stamp = next(
            (
                str(info[k])
                for k in ("mtime", "LastModified", "last_modified", "ETag", "etag")
                if k in info
            ),
            "",
        )
        lines.append(f"{key}\t{info.get('size')}\t{stamp}")
    return lines


def input_digest(
    path: str,
    engine: str,
    arrays: Iterable[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """A digest of the input files that ``arrays`` (variables and coordinates) are read from.

    Parameters
    ----------
    path : str
        ``input.path`` as in the config (a zarr store, a netCDF file or a glob, or a URL).
    engine : {'zarr', 'netcdf'}
        How the input is read.
    arrays : iterable of str
        For zarr: the arrays whose files are listed (the variables used and the coordinates).
    storage_options : mapping, optional
        fsspec options for a URL (``input.storage_options``); used to list, never recorded.

    Returns
    -------
    dict or None
        ``{"files": n, "sha256": ..., "parts": {name: sha256[:16]}, "arrays": [...]}``; None when the input
        cannot be listed (then nothing can be checked, and the runner says so).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "a.nc"
    >>> _ = f.write_bytes(b"CDF")
    >>> d = input_digest(str(f), "netcdf", [])
    >>> d["files"], len(d["sha256"])
    (1, 64)
    """
    arrays = [str(a) for a in arrays]
    options = dict(storage_options or {})
    parts: dict[str, _Digest] = {}

    def part(name: str) -> _Digest:
        return parts.setdefault(name, _Digest())

    try:
        if is_url(path) and path[:7].lower() != "file://":
            if engine == "zarr":
                base = path.rstrip("/")
                for name in arrays:
                    for line in _fsspec_lines(f"{base}/{name}", options):
                        part(name).add(line)
            else:
                for line in _fsspec_lines(path, options):
                    part(path).add(line)
        elif engine == "zarr":
            root = normalize(path)
            root_part = part("")
            for name in _ROOT_METADATA:
                full = os.path.join(root, name)
                if os.path.exists(full):
                    st = os.stat(full)
                    root_part.add(f"{name}\t{st.st_size}\t{st.st_mtime_ns}")
            for name in arrays:
                _walk(os.path.join(root, name), root, part(name))
        else:
            for file in resolve_input(path).paths:
                st = os.stat(file)
                part(file).add(f"{normalize(file)}\t{st.st_size}\t{st.st_mtime_ns}")
    except Exception:  # a listing that fails only means nothing can be checked
        return None
    whole = _Digest()
    for name in sorted(parts):
        whole.add(f"[{name}]\t{parts[name].hexdigest()}")
    return {
        "format": DIGEST_FORMAT,
        "files": sum(d.count for d in parts.values()),
        "sha256": whole.hexdigest(),
        "parts": {name: d.hexdigest()[:16] for name, d in parts.items()},
        "arrays": arrays,  # what was listed, so a later check lists the same
    }


def describe_change(before: dict[str, Any], after: dict[str, Any] | None) -> str | None:
    """What differs between two digests, in words; None if they are the same.

    Examples
    --------
    >>> a = {"format": 2, "files": 2, "sha256": "x", "parts": {"T": "1", "x": "2"}}
    >>> describe_change(a, {**a, "sha256": "y", "parts": {"T": "9", "x": "2"}})
    "the files of 'T' changed (size or modification time)"
    >>> describe_change(a, a) is None
    True
    """
    if after is None:
        return "the input can no longer be listed"
    if before.get("format") != after.get("format"):
        return None  # a store begun by an older daskgrad: its digest cannot be compared
    if before.get("sha256") == after.get("sha256"):
        return None
    old, new = before.get("parts", {}), after.get("parts", {})
    changed = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
    names = ", ".join(repr(n) if n else "the root metadata" for n in changed[:3])
    if len(changed) > 3:
        names += f" and {len(changed) - 3} more"
    return f"the files of {names or 'the input'} changed (size or modification time)"
