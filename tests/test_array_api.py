"""The kernel through ``array_api_strict``: results that depend on no library's type promotion.

CuPy (value-based casting for scalars in older releases) and numpy (NEP 50) may promote a
scalar operand differently; the kernel therefore fixes the dtype of every operation itself.
``array_api_strict`` runs the same kernel with no ufunc ``out=``/``dtype=`` to lean on, and the
namespace below additionally refuses any arithmetic whose operands differ in dtype or include a
Python scalar: every promotion must have been made explicit. Blocks are handed to the kernel as
``array_api_strict`` arrays and the results brought back with dlpack, then compared bit for bit
with ``numpy.gradient``, for ``daskgrad.gradient`` on numpy and dask inputs and for the xarray
accessor (periodic axes included).

float16 is not an Array API dtype (``array_api_strict`` has none), so it is covered by the numpy
path and the restricted-namespace test of ``test_cupy.py`` only.
"""

from __future__ import annotations

import importlib
import types

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from conftest import assert_bitwise_equal, numpy_reference

import daskgrad
import daskgrad.core.halo
import daskgrad.core.kernels
from daskgrad.core._compat import array_module

gradient_module = importlib.import_module("daskgrad.core.gradient")  # the attribute is the function

xps = pytest.importorskip("array_api_strict", reason="array-api-strict is in the [test] extra")
StrictArray = type(xps.asarray(0.0))

BINARY = ("add", "subtract", "multiply", "divide")


def _no_promotion_namespace(used: set[str]) -> types.SimpleNamespace:
    """array_api_strict, with arithmetic that refuses mixed dtypes and Python scalars."""

    def strict(name):
        func = getattr(xps, name)

        def call(a, b):
            assert isinstance(a, StrictArray) and isinstance(b, StrictArray), (
                name,
                type(a),
                type(b),
            )
            assert a.dtype == b.dtype, f"{name}: implicit promotion {a.dtype} with {b.dtype}"
            used.add(name)
            return func(a, b)

        return call

    names = {n: getattr(xps, n) for n in dir(xps) if not n.startswith("_")}
    names.update({n: strict(n) for n in BINARY})
    return types.SimpleNamespace(**names)


def _to_strict(a):
    return None if a is None else xps.asarray(np.ascontiguousarray(a))


def _to_numpy(a):
    assert isinstance(a, StrictArray), type(a)
    return np.from_dlpack(a)


@pytest.fixture
def strict_kernel(monkeypatch):
    """Every kernel call runs on array_api_strict arrays; returns the set of operations used."""
    used: set[str] = set()
    namespace = _no_promotion_namespace(used)
    real_block = daskgrad.core.kernels.gradient_block

    def on_strict(block, faces, axes, spacings, dtype=None):
        faces = [(_to_strict(lo), _to_strict(up)) for lo, up in faces]
        results = real_block(_to_strict(block), faces, axes, spacings, dtype)
        return tuple(_to_numpy(r) for r in results)

    monkeypatch.setattr(daskgrad.core.kernels, "array_module", lambda block: namespace)
    monkeypatch.setattr(gradient_module, "gradient_block", on_strict)
    monkeypatch.setattr(daskgrad.core.halo, "gradient_block", on_strict)
    return used


def test_array_module_gives_the_array_api_namespace():
    assert array_module(xps.zeros(3)) is xps
    assert array_module(np.zeros(3)) is np
    assert array_module(np.float64(1.0)) is np


def _spacings(rng, shape, complex_ok):
    forms = [
        None,
        0.5,
        3,
        np.float32(0.25),
        np.float64(0.1),
        [0.5 * (i + 1) for i in range(len(shape))],  # per-dim scalars
        [np.arange(n) * 2.0 for n in shape],  # uniform coordinates
        [np.cumsum(rng.random(n) + 0.1) for n in shape],  # non-uniform
        [np.cumsum(rng.random(n) + 0.1).astype(np.float32) for n in shape],
        [np.arange(n) * 3 for n in shape],  # integer coordinates
    ]
    if complex_ok:
        forms += [0.5 + 1j, [np.cumsum(rng.random(n) + 0.1 + 1j * rng.random(n)) for n in shape]]
    return forms


DTYPES = ["float64", "float32", "complex128", "complex64", "int64", "int16", "bool"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_on_numpy_and_dask_inputs_through_array_api_strict(strict_kernel, rng, dtype):
    shape = (6, 5)
    x = rng.standard_normal(shape) * 10
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(shape)
    x = (x > 0) if dtype == "bool" else x.astype(dtype)
    for spacing in _spacings(rng, shape, dtype.startswith("complex")):
        for edge_order in (1, 2):
            expected = numpy_reference(
                x.astype(np.int64) if dtype == "bool" else x, spacing, None, edge_order
            )
            eager = daskgrad.gradient(x, spacing=spacing, edge_order=edge_order)
            lazy = daskgrad.gradient(
                da.from_array(x, chunks=(2, 3)), spacing=spacing, edge_order=edge_order
            )
            for got in (eager, dask.compute(*lazy, scheduler="sync")):
                for g, e in zip(got, expected):
                    assert_bitwise_equal(g, e)
    assert set(BINARY) <= strict_kernel


@pytest.mark.parametrize("dtype", ["float64", "float32", "complex128"])
def test_one_dimensional_values_through_array_api_strict(strict_kernel, rng, dtype):
    x = rng.standard_normal(7).astype(dtype)
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(7)
    for spacing in _spacings(rng, x.shape, dtype.startswith("complex")):
        for edge_order in (1, 2):
            (expected,) = numpy_reference(x, spacing, None, edge_order)
            for v in (x, da.from_array(x, chunks=3)):
                (got,) = daskgrad.gradient(v, spacing=spacing, edge_order=edge_order)
                assert_bitwise_equal(dask.compute(got, scheduler="sync")[0], expected)


@pytest.mark.parametrize("dtype", ["float64", "float32", "complex64", "int32"])
def test_accessor_with_periodic_axes_through_array_api_strict(strict_kernel, rng, dtype):
    lon = np.arange(0.0, 360.0, 40.0)
    lat = np.cumsum(rng.random(6) + 0.5)
    values = (rng.standard_normal((6, 9)) * 10).astype(dtype)
    ds = xr.Dataset({"T": (("lat", "lon"), values)}, coords={"lat": lat, "lon": lon})
    work = values.astype(np.float64) if dtype == "int32" else values
    padded = np.concatenate([work[:, -1:], work, work[:, :1]], axis=1)
    padded_lon = np.concatenate([[lon[-1] - 360.0], lon, [lon[0] + 360.0]])
    for edge_order in (1, 2):
        want_lon = np.gradient(padded, padded_lon, axis=1, edge_order=edge_order)[:, 1:-1]
        want_lat = np.gradient(work, lat, axis=0, edge_order=edge_order)
        for obj in (ds, ds.chunk({"lat": 4, "lon": 2})):
            out = obj.grad.compute(["lat", "lon"], edge_order=edge_order, periodic={"lon": 360.0})
            assert_bitwise_equal(out["dT_dlon"].values, want_lon)
            assert_bitwise_equal(out["dT_dlat"].values, want_lat)
    assert set(BINARY) <= strict_kernel
