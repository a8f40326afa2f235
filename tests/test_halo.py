"""The halo graph: task counts, chunks, stable names, and what each kernel task depends on."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

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
    assert tasks / n_chunks <= 7.0, tasks / n_chunks
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
    for axis, g in enumerate(grads):
        deps = g.__dask_graph__().get_all_dependencies()
        kernel_keys = [k for k in deps if isinstance(k, tuple) and k[0] == g.name]
        assert len(kernel_keys) == x.npartitions
        for key in kernel_keys:
            input_deps = [d for d in deps[key] if d[0] == x.name]
            face_deps = [d for d in deps[key] if d[0].startswith("gradient-faces-")]
            # Its own block only: never a whole neighbour block.
            assert input_deps == [(x.name, *key[1:])]
            # The faces of its one neighbour along its own axis (2 blocks per axis here).
            assert len(face_deps) == 1
            (face,) = face_deps
            assert face[1] == axis
            assert face[2:] != key[1:] and sum(a != b for a, b in zip(face[2:], key[1:])) == 1
        faces = [k for k in deps if isinstance(k, tuple) and k[0].startswith("gradient-faces-")]
        for key in faces:
            assert deps[key] == {(x.name, *key[2:])}


def test_the_input_is_read_once_for_all_dims():
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
