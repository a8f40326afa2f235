"""CuPy: the same kernel on the GPU, and proof on the CPU that it needs nothing CuPy lacks.

The GPU tests (``gradient`` on CuPy and dask-of-CuPy arrays, CuPy coordinates, the xarray
accessor on CuPy data) run where CuPy and a CUDA device exist and skip with the reason otherwise.
The namespace test runs everywhere: it drives every kernel case through a stand-in module that
exposes only the functions the kernel may call (each one a documented CuPy function), so a
numpy-only call slipping into the kernel fails here, not on a user's GPU; its arithmetic also
refuses any call that leaves the operation's dtype to the library's promotion rules (no
``dtype=``, or a Python scalar operand). ``test_array_api.py`` runs the kernel on
``array_api_strict`` arrays.
"""

from __future__ import annotations

import types

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import assert_bitwise_equal, numpy_reference

import daskgrad
import daskgrad.core.kernels

# Every module-level function the kernel may call; each exists in CuPy with the same signature
# (ufuncs with ``out=``, array creation and conversion).
CUPY_FUNCTIONS = ("add", "subtract", "multiply", "divide", "empty", "asarray")


BINARY = ("add", "subtract", "multiply", "divide")


def _explicit(name):
    """numpy's ufunc, refusing calls whose loop would be left to the library's promotion."""
    func = getattr(np, name)

    def call(*args, **kwargs):
        dtype = kwargs.get("dtype")
        assert dtype is not None, f"{name} without dtype=: the library would choose the loop"
        for a in args:
            # Arrays, or scalars already in the operation's dtype: never a Python scalar, whose
            # promotion differs between NEP 50 (numpy 2) and value-based casting (CuPy).
            assert isinstance(a, np.ndarray) or (isinstance(a, np.generic) and a.dtype == dtype), (
                name,
                type(a),
                getattr(a, "dtype", None),
                dtype,
            )
        return func(*args, **kwargs)

    return call


def _restricted_namespace() -> types.SimpleNamespace:
    functions = {name: getattr(np, name) for name in CUPY_FUNCTIONS}
    functions.update({name: _explicit(name) for name in BINARY})
    return types.SimpleNamespace(**functions)


def _cases(rng, dtypes=("float32",)):
    for dtype in dtypes:
        for shape in [(9,), (6, 7), (4, 5, 6)]:
            x = rng.standard_normal(shape)
            if dtype.startswith("complex"):
                x = x + 1j * rng.standard_normal(shape)
            x = x.astype(dtype)
            spacings = [
                None,
                0.5,
                0.3,
                np.float64(0.25),
                np.float32(0.1),
                3,
                [np.cumsum(rng.random(n) + 0.1) for n in shape],
                [np.cumsum(rng.random(n) + 0.1).astype(np.float32) for n in shape],
            ]
            if dtype.startswith("complex"):
                spacings += [
                    0.5 - 2j,
                    [np.cumsum(rng.random(n) + 0.1 + 1j * rng.random(n)) for n in shape],
                ]
            for edge_order in (1, 2):
                for spacing in spacings:
                    yield x, spacing, edge_order


def test_kernel_uses_only_functions_cupy_has(monkeypatch, rng):
    namespace = _restricted_namespace()
    used = set()

    class Recorder:
        def __getattr__(self, name):
            used.add(name)
            return getattr(namespace, name)  # AttributeError for anything CuPy-less

    monkeypatch.setattr(daskgrad.core.kernels, "array_module", lambda block: Recorder())
    dtypes = ("float32", "float64", "float16", "complex64", "complex128", "int32", "bool")
    for x, spacing, edge_order in _cases(rng, dtypes):
        expected = numpy_reference(
            x.astype(np.int64) if x.dtype == bool else x, spacing, None, edge_order
        )
        lazy = daskgrad.gradient(da.from_array(x, chunks=2), spacing=spacing, edge_order=edge_order)
        for got in (
            daskgrad.gradient(x, spacing=spacing, edge_order=edge_order),
            dask.compute(*lazy, scheduler="sync"),
        ):
            for g, e in zip(got, expected):
                assert_bitwise_equal(g, e)
    assert used <= set(CUPY_FUNCTIONS)
    assert {"subtract", "divide", "multiply", "add", "empty"} <= used


def cupy_or_skip():
    """CuPy with a CUDA device, or a skip that says which one is missing."""
    cupy = pytest.importorskip(
        "cupy", reason="CuPy is not installed (pip install 'daskgrad[cupy]')"
    )
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip(reason="CuPy is installed but no CUDA device is visible")
    except cupy.cuda.runtime.CUDARuntimeError as err:
        pytest.skip(reason=f"CuPy is installed but CUDA is unavailable: {err}")
    return cupy


@pytest.mark.gpu
def test_cupy_in_cupy_out(rng):
    cupy = cupy_or_skip()
    for x, spacing, edge_order in _cases(rng):
        expected = numpy_reference(x, spacing, None, edge_order)
        got = daskgrad.gradient(cupy.asarray(x), spacing=spacing, edge_order=edge_order)
        for g, e in zip(got, expected):
            assert isinstance(g, cupy.ndarray)
            assert_bitwise_equal(cupy.asnumpy(g), e)


@pytest.mark.gpu
def test_dask_of_cupy_chunks_runs_on_the_gpu(rng):
    cupy = cupy_or_skip()
    for x, spacing, edge_order in _cases(rng):
        expected = numpy_reference(x, spacing, None, edge_order)
        lazy = daskgrad.gradient(
            da.from_array(cupy.asarray(x), chunks=2), spacing=spacing, edge_order=edge_order
        )
        for g, e in zip(dask.compute(*lazy, scheduler="sync"), expected):
            assert isinstance(g, cupy.ndarray)
            assert_bitwise_equal(cupy.asnumpy(g), e)


@pytest.mark.gpu
def test_cupy_coordinates(rng):
    cupy = cupy_or_skip()
    x = rng.standard_normal((8, 5))
    coord = np.cumsum(rng.random(8) + 0.1)
    (got,) = daskgrad.gradient(cupy.asarray(x), spacing=[cupy.asarray(coord)], dim=0)
    assert_bitwise_equal(cupy.asnumpy(got), numpy_reference(x, [coord], 0)[0])


@pytest.mark.gpu
def test_accessor_on_cupy_data(rng):
    cupy = cupy_or_skip()
    x = rng.standard_normal((8, 9))
    y = np.cumsum(rng.random(8) + 0.1)
    lon = np.arange(0.0, 360.0, 40.0)
    ds = xr.Dataset({"T": (("y", "lon"), cupy.asarray(x))}, coords={"y": y, "lon": lon})
    padded = np.concatenate([x[:, -1:], x, x[:, :1]], axis=1)
    padded_lon = np.concatenate([[lon[-1] - 360.0], lon, [lon[0] + 360.0]])
    for edge_order in (1, 2):
        want_y = np.gradient(x, y, axis=0, edge_order=edge_order)
        want_lon = np.gradient(padded, padded_lon, axis=1, edge_order=edge_order)[:, 1:-1]
        for obj in (ds, ds.chunk({"y": 3, "lon": 4})):
            out = obj.grad.compute(["y", "lon"], edge_order=edge_order, periodic={"lon": 360.0})
            for name, want in (("dT_dy", want_y), ("dT_dlon", want_lon)):
                data = out[name].data
                assert isinstance(data, cupy.ndarray), (name, type(data))
                assert_bitwise_equal(cupy.asnumpy(data), want)
