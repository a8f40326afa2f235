"""The halo graph: task counts, chunks, stable names, and what each kernel task depends on."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import zarr

import daskgrad
from daskgrad.core.halo import valid_chunks
from daskgrad.core.spacing import axis_spacing


def _tasks(arrays) -> dict:
    graph = {}
    for a in arrays:
        graph.update(dict(a.__dask_graph__()))
    return graph


def test_at_most_eight_tasks_per_input_chunk_for_three_dims():
    x = da.zeros((64, 64, 64), chunks=16)  # 64 chunks
    grads = daskgrad.gradient(x)
    n_chunks = x.npartitions
    tasks = len(_tasks(grads))
    # 1 face task + 3 pair tasks + 1 kernel + 3 outputs, and the input's own 64 reads
    assert (tasks - n_chunks) / n_chunks <= 8.0, tasks / n_chunks
    # dask.array.gradient for comparison (reads the input once per dim)
    assert len(_tasks(da.gradient(x))) > tasks


def test_output_chunks_equal_input_chunks_and_names_are_stable():
    x = da.ones((10, 7), chunks=((3, 1, 6), (2, 5)))
    a = daskgrad.gradient(x, spacing=[np.arange(10.0) ** 2, 0.5], edge_order=2)
    b = daskgrad.gradient(x, spacing=[np.arange(10.0) ** 2, 0.5], edge_order=2)
    assert [g.name for g in a] == [g.name for g in b]
    assert all(g.chunks == x.chunks for g in a)
    c = daskgrad.gradient(x, spacing=[np.arange(10.0) ** 3, 0.5], edge_order=2)
    assert a[0].name != c[0].name


def test_kernel_tasks_read_only_their_block_and_neighbour_faces():
    x = da.ones((8, 8, 8), chunks=4)
    grads = daskgrad.gradient(x)
    deps = grads[0].__dask_graph__().get_all_dependencies()
    kernels = {d for g in grads for k in deps if k[0] == g.name for d in deps[k]}
    assert len(kernels) == x.npartitions  # one kernel task per block, for all three dims
    for key in kernels:
        input_deps = [d for d in deps[key] if d[0] == x.name]
        face_deps = [d for d in deps[key] if d[0].startswith("gradient-facepairs-")]
        # Its own block only: never a whole neighbour block.
        assert input_deps == [(x.name, *key[1:])]
        assert len(deps[key]) == 1 + len(face_deps)
        # Per axis, the face pair of its one neighbour along that axis (2 blocks per axis).
        assert sorted(f[1] for f in face_deps) == [0, 1, 2]
        for face in face_deps:
            axis, where = face[1], face[2:]
            assert where[axis] != key[1 + axis]
            assert sum(a != b for a, b in zip(where, key[1:])) == 1
    pairs = [k for k in deps if k[0].startswith("gradient-facepairs-")]
    faces = [k for k in deps if k[0].startswith("gradient-faces-")]
    assert len(faces) == x.npartitions and len(pairs) == 3 * x.npartitions
    for key in pairs:
        (face,) = deps[key]
        assert face[0].startswith("gradient-faces-") and face[1:] == key[2:]
    for key in faces:
        assert deps[key] == {(x.name, *key[1:])}


class _CountingSource:
    """An array-like source (as an HDF5 dataset or an xarray backend is) that counts reads."""

    def __init__(self, values):
        self.values, self.reads = values, []
        self.shape, self.dtype, self.ndim = values.shape, values.dtype, values.ndim

    def __getitem__(self, key):
        self.reads.append(key)
        return self.values[key]


def test_a_read_runs_in_the_face_and_kernel_tasks_so_no_task_takes_a_block(tmp_path):
    """On a cluster only faces can travel: no task has an input block as a dependency."""
    v = np.random.default_rng(1).standard_normal((8, 12, 6))
    spacing = [1.0, np.arange(12.0) ** 2, 0.5]
    z = zarr.create_array(str(tmp_path / "v.zarr"), shape=v.shape, chunks=(4, 4, 3), dtype="f8")
    z[...] = v
    src = _CountingSource(v)
    for x in (da.from_zarr(z), da.from_array(src, chunks=(4, 4, 3))):
        grads = daskgrad.gradient(x, spacing=spacing)
        graph = grads[0].__dask_graph__()
        deps = graph.get_all_dependencies()
        assert not any(isinstance(d, tuple) and d[0] == x.name for ds in deps.values() for d in ds)
        for g, e in zip(dask.compute(*grads, scheduler="sync"), np.gradient(v, *spacing)):
            np.testing.assert_array_equal(g, e)
    # Each block is read twice: by its face task and by its kernel task.
    block_reads = [k for k in src.reads if all(s.stop > s.start for s in k)]  # not dask's meta
    assert len(block_reads) == 2 * x.npartitions
    assert len(set(map(str, block_reads))) == x.npartitions


def test_an_input_that_is_not_a_read_is_computed_once_for_all_dims():
    x = da.ones((8, 8, 8), chunks=4)
    graph = dict(x.__dask_graph__())
    grads = daskgrad.gradient(x)
    merged = {}
    for g in grads:
        merged.update(dict(g.__dask_graph__()))
    assert sum(1 for k in merged if k[0] == x.name) == len(graph) == x.npartitions


def test_graph_holds_only_reads_faces_and_kernels():
    x = da.ones((12, 12), chunks=4)
    (g,) = daskgrad.gradient(x, dim=1)
    names = {k[0] for k in dict(g.__dask_graph__())}
    assert names == {x.name, g.name, next(n for n in names if n.startswith("gradient-faces-"))}


@pytest.mark.parametrize(
    ("chunks", "edge_order", "expected"),
    [
        ((1, 2, 0, 2, 1), 2, (3, 3)),
        ((1, 1, 1, 1, 1, 1), 1, (1, 1, 1, 1, 1, 1)),
        ((1, 1, 1, 1, 1, 1), 2, (2, 1, 1, 2)),
        ((3, 0, 3), 1, (3, 3)),
        ((6,), 2, (6,)),
    ],
)
def test_valid_chunks_changes_only_what_it_must(chunks, edge_order, expected):
    s = axis_spacing(None, axis=0, size=sum(chunks), edge_order=edge_order)
    assert valid_chunks((chunks,), [s]) == (expected,)


def test_periodic_axes_never_merge_edge_chunks():
    s = axis_spacing(None, axis=0, size=6, edge_order=2, periodic=True)
    assert valid_chunks(((1, 4, 1),), [s]) == ((1, 4, 1),)


def test_empty_chunks_and_merged_edges_come_back_in_the_input_chunks():
    x_np = np.random.default_rng(0).standard_normal((6, 5))
    x = da.from_array(x_np, chunks=((1, 0, 4, 1), (1, 3, 1)))
    got = daskgrad.gradient(x, edge_order=2)
    assert all(g.chunks == x.chunks for g in got)
    for g, e in zip(got, np.gradient(x_np, edge_order=2)):
        np.testing.assert_array_equal(g.compute(), e)


def test_unknown_chunk_sizes_are_refused_with_the_fix():
    x = da.ones(10, chunks=3)
    y = x[x > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        daskgrad.gradient(y)
