"""Shared fixtures and helpers for the daskgrad test suite.

Sections
--------
* ``numpy_reference``: numpy.gradient called with the numpy form of torch-style arguments, always
  returning a list (the oracle every result is compared with, bit for bit).
* ``assert_bitwise_equal``: dtype and every bit equal, NaN in the same places.
"""

from __future__ import annotations

import numpy as np
import pytest


def numpy_reference(values, spacing=None, dim=None, edge_order=1) -> list[np.ndarray]:
    """numpy.gradient with torch.gradient's argument forms, as a list of arrays."""
    values = np.asarray(values)
    if spacing is None:
        args = []
    elif isinstance(spacing, (list, tuple)):
        args = [np.asarray(s) if np.ndim(s) else s for s in spacing]
    else:
        args = [spacing]
    result = np.gradient(values, *args, axis=dim, edge_order=edge_order)
    return list(result) if isinstance(result, (list, tuple)) else [result]


def assert_bitwise_equal(actual, expected) -> None:
    """Equal dtype, shape and bits (NaN where NaN is)."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if actual.dtype.kind in "fc":
        assert np.array_equal(actual, expected, equal_nan=True)
        # Same bits, so -0.0 and 0.0 are told apart too.
        assert actual.tobytes() == expected.tobytes()
    else:
        assert np.array_equal(actual, expected)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)
