"""The face store: halo faces kept between tiles, so a neighbour's block is not read again for them.

A tile needs the faces (one point thick; ``edge_order`` points for one-sided differences) of
the blocks bordering it. Reading such a block from the input means reading and decompressing
all of it for one slab. So each tile also writes the faces its own blocks turn *outward* (to
blocks of other tiles) into a small scratch group of the output store, ``daskgrad.scratch``;
a tile that borders an already finished tile reads those faces from there instead of the
finished tile's blocks. Along a cut between two tiles the first of them still reads the
other's blocks; the second reads only faces: half of the bytes read again, or none where the
two tiles run at the same time on the cluster (their shared keys are computed once).

Layout: one zarr array per input variable (by its group number ``g``) and differentiated axis
``a``, ``faces-{g}-{a}``: the values' shape with axis ``a`` holding ``2 * depth`` points per
block, one chunk per face: the first ``depth`` points of block ``i`` at chunk ``2 i`` along
``a``, its last ``depth`` points at chunk ``2 i + 1``. Face writes go through
:func:`daskgrad.batch.store.write_block` (atomic, and fenced by the run's lease like every
block); the driver only ever reads a face whose tile it saw finish in this run, and the group
is deleted when a run starts and when it completes.

Examples
--------
>>> import tempfile, numpy as np
>>> path = tempfile.mkdtemp() + "/out.zarr"
>>> import zarr; _ = zarr.open_group(path, mode="w")
>>> spec = FaceSpec(group=0, axis=1, depth=1, shape=(2, 6), chunks=(2, 3), dtype=np.dtype("f8"))
>>> create(path, [spec])
>>> block = np.arange(6.0).reshape(2, 3)
>>> keep_faces(block, path, [(spec, (0, 1), 1)], None)
0
>>> read_face(path, spec, (0, 1), 1).tolist()
[[2.0], [5.0]]
>>> remove(path)
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from daskgrad.batch.remote import RemoteStore, zarr_store_of

__all__ = ["GROUP", "FaceSpec", "create", "keep_faces", "read_face", "remove"]

#: The scratch group inside the output store (never a gradient: the runner ignores it).
GROUP = "daskgrad.scratch"

#: dtype kinds a face array can hold exactly (zarr has no datetime arrays in every format).
_STORABLE = "biufc"


@dataclass(frozen=True)
class FaceSpec:
    """The face array of one input variable (``group``) and differentiated ``axis``."""

    group: int
    axis: int
    depth: int
    shape: tuple[int, ...]  # the values' shape
    chunks: tuple[int, ...]  # the blocks' shape
    dtype: np.dtype

    @property
    def name(self) -> str:
        return f"{GROUP}/faces-{self.group}-{self.axis}"

    @property
    def storable(self) -> bool:
        return np.dtype(self.dtype).kind in _STORABLE

    def face_region(self, index: Sequence[int], side: int) -> tuple[slice, ...]:
        """Where the face of block ``index`` on ``side`` (0: its first points, 1: its last)
        lies in the face array."""
        out = []
        for a, (i, c, n) in enumerate(zip(index, self.chunks, self.shape)):
            if a == self.axis:
                start = (2 * i + side) * self.depth
                out.append(slice(start, start + self.depth))
            else:
                out.append(slice(i * c, min(n, (i + 1) * c)))
        return tuple(out)


def create(store: str | RemoteStore, specs: Iterable[FaceSpec]) -> None:
    """Create the scratch group and one face array per spec, replacing what was there."""
    import zarr

    remove(store)
    root = zarr.open_group(zarr_store_of(store), mode="r+", use_consolidated=False)
    group = root.require_group(GROUP)
    for spec in specs:
        if not spec.storable:
            continue
        shape = list(spec.shape)
        shape[spec.axis] = 2 * spec.depth * -(-spec.shape[spec.axis] // spec.chunks[spec.axis])
        chunks = list(spec.chunks)
        chunks[spec.axis] = spec.depth
        group.create_array(
            spec.name.rsplit("/", 1)[1], shape=tuple(shape), chunks=tuple(chunks), dtype=spec.dtype
        )


def remove(store: str | RemoteStore) -> None:
    """Delete the scratch group and everything in it (a missing one is fine)."""
    if isinstance(store, RemoteStore):
        fs, root = store.filesystem()
        with contextlib.suppress(FileNotFoundError):
            fs.rm(f"{root}/{GROUP}", recursive=True)
        return
    if isinstance(store, (str, os.PathLike)):
        shutil.rmtree(Path(store) / GROUP, ignore_errors=True)
        return
    import zarr  # a zarr store object (``ds.grad.to_zarr`` takes any)

    with contextlib.suppress(KeyError, FileNotFoundError):
        del zarr.open_group(store, mode="r+", use_consolidated=False)[GROUP]


# ``token`` (the run's) is part of the key: a worker that outlives a run never reads another
# run's face array through metadata cached for this one.
@lru_cache(maxsize=64)
def _open(store: str | RemoteStore, name: str, token: str | None) -> Any:
    import zarr

    del token  # only a part of the cache key
    return zarr.open_array(zarr_store_of(store), path=name, mode="r")


def keep_faces(
    block: Any,
    store: str | RemoteStore,
    faces: Sequence[tuple[FaceSpec, tuple[int, ...], int]],
    token: str | None,
) -> int:
    """Write the faces ``(spec, block index, side)`` of ``block`` into the face store.

    Returns 0 (no gradient bytes): the task is waited on with the tile's writes, so that a
    tile counts as finished only once its faces are stored.
    """
    from daskgrad.batch.store import write_block

    for spec, index, side in faces:
        n = block.shape[spec.axis]
        key = [slice(None)] * block.ndim
        key[spec.axis] = slice(0, spec.depth) if side == 0 else slice(n - spec.depth, n)
        write_block(block[tuple(key)], store, spec.name, spec.face_region(index, side), token)
    return 0


def read_face(
    store: str | RemoteStore,
    spec: FaceSpec,
    index: tuple[int, ...],
    side: int,
    token: str | None = None,
) -> np.ndarray:
    """The face of block ``index`` on ``side``, as :func:`keep_faces` stored it."""
    if token is None:  # no run to key a cache on (``ds.grad.to_zarr``): open it anew
        import zarr

        array = zarr.open_array(zarr_store_of(store), path=spec.name, mode="r")
    else:
        array = _open(store, spec.name, token)
    return np.asarray(array[spec.face_region(index, side)])
