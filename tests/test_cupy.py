"""CuPy: the same kernel on the GPU, and proof on the CPU that it needs nothing CuPy lacks.

The GPU tests run where CuPy and a CUDA device exist and skip with the reason otherwise. The
namespace test runs everywhere: it drives every kernel case through a stand-in module that
exposes only the functions the kernel may call (each one a documented CuPy function), so a
numpy-only call slipping into the kernel fails here, not on a user's GPU.
"""

from __future__ import annotations

import types

import dask
import dask.array as da
import numpy as np
import pytest
from conftest import assert_bitwise_equal, numpy_reference

import daskgrad
import daskgrad.kernels

# Every module-level function the kernel may call; each exists in CuPy with the same signature
# (ufuncs with ``out=``, array creation and conversion).
CUPY_FUNCTIONS = ("add", "subtract", "multiply", "divide", "empty", "asarray")


def _restricted_namespace() -> types.SimpleNamespace:
    return types.SimpleNamespace(**{name: getattr(np, name) for name in CUPY_FUNCTIONS})


def _cases(rng):
    for shape in [(9,), (6, 7), (4, 5, 6)]:
        x = rng.standard_normal(shape).astype(np.float32)
        for edge_order in (1, 2):
            for spacing in (None, 0.5, 0.3, [np.cumsum(rng.random(n) + 0.1) for n in shape]):
                yield x, spacing, edge_order


def test_kernel_uses_only_functions_cupy_has(monkeypatch, rng):
    namespace = _restricted_namespace()
    used = set()

    class Recorder:
        def __getattr__(self, name):
            used.add(name)
            return getattr(namespace, name)  # AttributeError for anything CuPy-less

    monkeypatch.setattr(daskgrad.kernels, "array_module", lambda block: Recorder())
    for x, spacing, edge_order in _cases(rng):
        expected = numpy_reference(x, spacing, None, edge_order)
        lazy = daskgrad.gradient(da.from_array(x, chunks=2), spacing=spacing, edge_order=edge_order)
        for got in (daskgrad.gradient(x, spacing=spacing, edge_order=edge_order), dask.compute(*lazy, scheduler="sync")):
            for g, e in zip(got, expected):
                assert_bitwise_equal(g, e)
    assert used <= set(CUPY_FUNCTIONS)
    assert {"subtract", "divide", "multiply", "add", "empty"} <= used


def _cupy():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install 'daskgrad[cupy]')")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip(reason="CuPy is installed but no CUDA device is visible")
    except cupy.cuda.runtime.CUDARuntimeError as err:
        pytest.skip(reason=f"CuPy is installed but CUDA is unavailable: {err}")
    return cupy


@pytest.mark.gpu
def test_cupy_in_cupy_out(rng):
    cupy = _cupy()
    for x, spacing, edge_order in _cases(rng):
        expected = numpy_reference(x, spacing, None, edge_order)
        got = daskgrad.gradient(cupy.asarray(x), spacing=spacing, edge_order=edge_order)
        for g, e in zip(got, expected):
            assert isinstance(g, cupy.ndarray)
            assert_bitwise_equal(cupy.asnumpy(g), e)


@pytest.mark.gpu
def test_dask_of_cupy_chunks_runs_on_the_gpu(rng):
    cupy = _cupy()
    for x, spacing, edge_order in _cases(rng):
        expected = numpy_reference(x, spacing, None, edge_order)
        lazy = daskgrad.gradient(da.from_array(cupy.asarray(x), chunks=2), spacing=spacing, edge_order=edge_order)
        for g, e in zip(dask.compute(*lazy, scheduler="sync"), expected):
            assert isinstance(g, cupy.ndarray)
            assert_bitwise_equal(cupy.asnumpy(g), e)


@pytest.mark.gpu
def test_cupy_coordinates(rng):
    cupy = _cupy()
    x = rng.standard_normal((8, 5))
    coord = np.cumsum(rng.random(8) + 0.1)
    (got,) = daskgrad.gradient(cupy.asarray(x), spacing=[cupy.asarray(coord)], dim=0)
    assert_bitwise_equal(cupy.asnumpy(got), numpy_reference(x, [coord], 0)[0])
