"""The fused compiled kernel (numba) and the array-module kernel give numpy's bits, both.

Every case runs twice: with the compiled pass (``daskgrad[fast]``: numba) and with
``DASKGRAD_KERNEL=numpy`` (what runs where numba is not installed); both must equal
``numpy.gradient`` bit for bit. The CuPy and Array API paths never take the compiled pass
(tests/test_array_api.py checks the operations they use).
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import daskgrad
import daskgrad.core.compiled as compiled
from daskgrad.core.gradient import differentiate_axes
from daskgrad.core.spacing import axis_spacing

try:
    import numba  # noqa: F401

    HAVE_NUMBA = True
except ImportError:
    HAVE_NUMBA = False


@pytest.fixture(params=["compiled", "numpy"])
def kernel(request, monkeypatch):
    """Which kernel runs; counts the compiled passes."""
    if request.param == "compiled":
        if not HAVE_NUMBA:
            pytest.skip(reason="numba is not installed (pip install 'daskgrad[fast]')")
        monkeypatch.delenv("DASKGRAD_KERNEL", raising=False)
    else:
        monkeypatch.setenv("DASKGRAD_KERNEL", "numpy")
    calls = []
    real = compiled.interior_pass
    monkeypatch.setattr(compiled, "interior_pass", lambda *a: (calls.append(1), real(*a))[1])
    return request.param, calls


def _reference(values, spacing, edge_order):
    v = np.asarray(values)
    if v.dtype.kind in "iub":
        v = v.astype(np.float64)
    args = [] if spacing is None else (list(spacing) if isinstance(spacing, list) else [spacing])
    out = np.gradient(v, *args, edge_order=edge_order)
    return [out] if v.ndim == 1 else list(out)


def _same_bits(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        g = np.asarray(g)
        assert g.dtype == e.dtype and g.shape == e.shape
        assert g.tobytes() == e.tobytes()


def _spacings(rng, shape, dtype):
    yield None
    yield 0.5  # an exact reciprocal: multiply
    yield 0.1  # a divide
    yield np.float32(0.3)
    yield np.float64(0.3)  # float32 values then divide in float64, as numpy does
    yield [np.arange(n) * 0.25 for n in shape]  # uniform coordinates
    yield [np.cumsum(rng.random(n) + 0.1) for n in shape]  # non-uniform
    yield [np.cumsum(rng.random(n) + 0.1).astype(np.float32) for n in shape]
    yield [np.cumsum(rng.integers(1, 4, n)) for n in shape]  # integer coordinates


@pytest.mark.parametrize("dtype", ["float64", "float32", "int16", "uint8", "bool"])
@pytest.mark.parametrize("shape", [(9,), (5, 7), (4, 5, 6), (3, 4, 5, 6)])
def test_every_spacing_form_equals_numpy(kernel, dtype, shape):
    which, calls = kernel
    rng = np.random.default_rng(sum(shape))
    values = (rng.standard_normal(shape) * 50).astype(dtype)
    for spacing in _spacings(rng, shape, dtype):
        for edge_order in (1, 2):
            got = daskgrad.gradient(values, spacing=spacing, edge_order=edge_order)
            _same_bits(got, _reference(values, spacing, edge_order))
    # Every dim of a 4-D block has no 3-D view: the array-module path.
    assert (len(calls) > 0) == (which == "compiled" and len(shape) <= 3)


@pytest.mark.parametrize("dim", [(1, 3), (0, 2), (3,), (0, 1, 2, 3)])
def test_some_dims_of_4d_blocks_and_strided_views(kernel, dim):
    """Leading dims merged or looped over, dims between kept, views read in place."""
    rng = np.random.default_rng(3)
    base = rng.standard_normal((6, 9, 7, 10))
    for values in (base, base[::2, 1:, :, ::3], np.asfortranarray(base)):
        for spacing in (None, [np.cumsum(rng.random(values.shape[a]) + 0.5) for a in dim]):
            got = daskgrad.gradient(values, spacing=spacing, dim=dim)
            expected = np.gradient(values, *(spacing or []), axis=dim)
            _same_bits(got, list(expected) if len(dim) > 1 else [expected])


@pytest.mark.parametrize("dtype", ["float16", "complex128", "datetime64[s]"])
def test_dtypes_the_compiled_pass_leaves_to_the_array_module(kernel, dtype):
    _, calls = kernel
    values = np.arange(60).reshape(3, 4, 5).astype(dtype)
    if dtype.startswith("complex"):
        values = values * (1 + 2j)
    got = daskgrad.gradient(values)
    _same_bits(got, list(np.gradient(values)))
    assert not calls


def test_dask_chunks_of_one_periodic_axes_and_edge_order_2(kernel):
    rng = np.random.default_rng(5)
    v = rng.standard_normal((7, 8, 9)).astype(np.float32)
    x = da.from_array(v, chunks=((1, 1, 2, 3), (3, 1, 4), (9,)))
    spacing = [0.1, np.cumsum(rng.random(8) + 0.2), 2.0]
    for edge_order in (1, 2):
        got = daskgrad.gradient(x, spacing=spacing, edge_order=edge_order)
        _same_bits([g.compute() for g in got], _reference(v, spacing, edge_order))
    # A periodic axis: numpy.gradient of the wrap-padded array, trimmed.
    s = axis_spacing(None, axis=1, size=8, edge_order=1, periodic=True)
    (got,) = differentiate_axes(x, [s])
    padded = np.concatenate([v[:, -1:], v, v[:, :1]], axis=1)
    assert got.compute().tobytes() == np.gradient(padded, axis=1)[:, 1:-1].tobytes()


def test_the_switch_and_a_missing_numba(monkeypatch):
    monkeypatch.setenv("DASKGRAD_KERNEL", "numpy")
    assert not compiled.enabled()
    monkeypatch.delenv("DASKGRAD_KERNEL")
    assert compiled.enabled() == HAVE_NUMBA
    # Without numba (the import fails): the array-module path, numpy's bits.
    monkeypatch.setattr(compiled, "_numba_kernel", lambda: None)
    assert not compiled.enabled()
    v = np.random.default_rng(0).standard_normal((4, 5, 6))
    _same_bits(daskgrad.gradient(v), list(np.gradient(v)))
