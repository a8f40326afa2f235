"""Agreement with torch.gradient on the examples of its documentation and on random cases.

torch is a test-only dependency (a CPU build: ``pip install torch==2.13.0``); .ci/run installs it
so CI always runs these tests.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

import daskgrad

torch = pytest.importorskip(
    "torch", reason="torch is not installed; enable with `pip install torch==2.13.0` (CPU build)"
)


def _both(values, **kwargs):
    """daskgrad on a numpy array and on a dask array of 1-long chunks, as numpy arrays."""
    eager = daskgrad.gradient(values, **kwargs)
    lazy = daskgrad.gradient(da.from_array(values, chunks=1), **kwargs)
    return [eager, [g.compute() for g in lazy]]


def test_1d_function_values():
    t = torch.tensor([-2.0, 1.0, -3.0, 4.0, 5.0])
    values = t**2 + 5
    (expected,) = torch.gradient(values)
    for got in _both(values.numpy()):
        np.testing.assert_array_equal(got[0], expected.numpy())
    np.testing.assert_array_equal(expected.numpy(), [-3.0, 2.5, 7.5, 8.0, 9.0])


def test_2d_cube_along_each_dim():
    t = torch.tensor([[-1.0, 3.0, -5.0], [-4.0, 5.0, 2.0], [-2.0, 3.0, 4.0]])
    values = t**3
    for dim in (0, 1):
        (expected,) = torch.gradient(values, dim=dim)
        for got in _both(values.numpy(), dim=dim):
            np.testing.assert_array_equal(got[0], expected.numpy())


def test_3x3_rows_and_columns():
    data = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    rows, cols = torch.gradient(data)
    np.testing.assert_array_equal(rows.numpy(), np.full((3, 3), 3.0))
    np.testing.assert_array_equal(cols.numpy(), np.ones((3, 3)))
    for got in _both(data.numpy()):
        np.testing.assert_array_equal(got[0], rows.numpy())
        np.testing.assert_array_equal(got[1], cols.numpy())


def test_spacing_half():
    y = torch.tensor([0.0, 0.25, 1.0, 2.25])
    (expected,) = torch.gradient(y, spacing=(0.5,))
    np.testing.assert_array_equal(expected.numpy(), [0.5, 1.0, 2.0, 2.5])
    for got in _both(y.numpy(), spacing=(0.5,)):
        np.testing.assert_array_equal(got[0], expected.numpy())


def test_3x3x3_all_dims():
    data = torch.arange(27.0).reshape(3, 3, 3)
    expected = torch.gradient(data)
    for want, value in zip(expected, (9.0, 3.0, 1.0)):
        np.testing.assert_array_equal(want.numpy(), np.full((3, 3, 3), value))
    for got in _both(data.numpy()):
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e.numpy())


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("edge_order", [1, 2])
def test_random_cases_with_coordinates(seed, edge_order):
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(3, 8, size=3))
    values = rng.standard_normal(shape)
    dims = (2, 0)
    coords = [np.cumsum(rng.random(shape[d]) + 0.1) for d in dims]
    expected = torch.gradient(
        torch.from_numpy(values), spacing=[torch.from_numpy(c) for c in coords], dim=dims, edge_order=edge_order
    )
    lazy = daskgrad.gradient(da.from_array(values, chunks=2), spacing=coords, dim=dims, edge_order=edge_order)
    for g, e in zip(lazy, expected):
        # torch evaluates the same formulas in another order: agreement to rounding.
        np.testing.assert_allclose(g.compute(), e.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("edge_order", [1, 2])
def test_scalar_spacing_per_dim(edge_order):
    values = np.random.default_rng(1).standard_normal((5, 6))
    expected = torch.gradient(torch.from_numpy(values), spacing=[0.5, 2.0], edge_order=edge_order)
    for got in _both(values, spacing=[0.5, 2.0], edge_order=edge_order):
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e.numpy(), rtol=1e-13, atol=1e-13)
