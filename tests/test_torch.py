"""Agreement with torch.gradient on the examples of its documentation and on random cases.

torch's outputs are recorded in ``tests/data/torch_reference.npz`` (regenerate with
``python tests/make_torch_reference.py``), so these tests run without torch. Where torch is
importable (``.ci/run`` installs a CPU build), each case is also compared with torch live, which
catches a stale recording.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from torch_cases import REFERENCE, TorchCase, cases, recorded, run_torch

import daskgrad

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except ImportError:  # the recorded outputs alone
    HAVE_TORCH = False
CASES = cases()


def _both(values, **kwargs):
    """daskgrad on a numpy array and on a dask array of 1-long chunks, as numpy arrays."""
    eager = daskgrad.gradient(values, **kwargs)
    lazy = daskgrad.gradient(da.from_array(values, chunks=1), **kwargs)
    return [list(eager), [g.compute() for g in lazy]]


def _agree(got, want, rtol):
    assert got.dtype == want.dtype and got.shape == want.shape
    if rtol == 0:
        np.testing.assert_array_equal(got, want)
    else:
        # torch evaluates the same formulas in another order: agreement to rounding.
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


def test_every_case_is_recorded():
    with np.load(REFERENCE) as data:
        names = {k.split("/")[0] for k in data.files if "/" in k}
        assert str(data["torch_version"]).startswith("2.")
    assert names == {c.name for c in CASES}, "rerun tests/make_torch_reference.py"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_agrees_with_torch_gradient(case: TorchCase):
    expected = recorded(case)
    if HAVE_TORCH:  # the recording must still be torch's answer
        live = run_torch(case)
        assert len(live) == len(expected)
        for a, b in zip(live, expected):
            np.testing.assert_array_equal(a, b)
    for got in _both(case.values, **case.kwargs):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            _agree(g, e, case.rtol)


def test_documented_values():
    # The numbers printed in the torch.gradient documentation.
    by_name = {c.name: c for c in CASES}
    np.testing.assert_array_equal(recorded(by_name["doc_1d"])[0], [-3.0, 2.5, 7.5, 8.0, 9.0])
    np.testing.assert_array_equal(recorded(by_name["doc_spacing_half"])[0], [0.5, 1.0, 2.0, 2.5])
    rows, cols = recorded(by_name["doc_3x3"])
    np.testing.assert_array_equal(rows, np.full((3, 3), 3.0))
    np.testing.assert_array_equal(cols, np.ones((3, 3)))
    for want, value in zip(recorded(by_name["doc_3x3x3"]), (9.0, 3.0, 1.0)):
        np.testing.assert_array_equal(want, np.full((3, 3, 3), value))
