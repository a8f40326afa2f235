"""torch.gradient's whole argument domain with numpy.gradient's numbers (issue 15).

Complex coordinates and steps, numpy's scalar arithmetic on the ends of 1-D values, and dask
coordinates that stay lazy until the result is computed.
"""

from __future__ import annotations

import re
import threading
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from conftest import assert_bitwise_equal, numpy_reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import daskgrad

CHUNKINGS_2D = [(7, 6), (1, 1), (3, 2), ((2, 1, 4), (1, 4, 1)), ((6, 1), (5, 1)), ((1, 6), (1, 5))]


def _complex_coords(rng, n, dtype=np.complex128):
    return np.cumsum(rng.random(n) + 0.1 + 1j * rng.standard_normal(n)).astype(dtype)


def _complex_values(rng, shape, dtype):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


# -- 1. complex coordinates -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("edge_order", [1, 2])
def test_complex_coordinates_match_numpy_for_every_chunking(rng, dtype, edge_order):
    x = _complex_values(rng, (7, 6), dtype)
    forms = [
        [_complex_coords(rng, 7), _complex_coords(rng, 6, np.complex64)],  # non-uniform
        [np.arange(7) * (0.5 + 0.25j), np.arange(6) * (1 - 2j) + 3j],  # uniform: one step
        [_complex_coords(rng, 7).tolist(), 0.5 - 1j],  # a list, and a complex step
        [_complex_coords(rng, 7), np.complex64(2 + 1j)],
    ]
    for spacing in forms:
        expected = numpy_reference(x, spacing, None, edge_order)
        for g, e in zip(daskgrad.gradient(x, spacing=spacing, edge_order=edge_order), expected):
            assert_bitwise_equal(g, e)
        dask_spacing = [
            da.from_array(np.asarray(s), chunks=2) if np.ndim(s) else s for s in spacing
        ]
        for chunks in CHUNKINGS_2D:
            for sp in (spacing, dask_spacing):
                lazy = daskgrad.gradient(
                    da.from_array(x, chunks=chunks), spacing=sp, edge_order=edge_order
                )
                for g, e in zip(dask.compute(*lazy, scheduler="sync"), expected):
                    assert_bitwise_equal(g, e)


def test_complex_coordinates_are_checked_like_real_ones():
    x = np.ones((4, 3), complex)
    with pytest.raises(
        ValueError,
        match=re.escape("coordinate for dim 0 repeats the value (1+1j) at indices 1 and 2"),
    ):
        daskgrad.gradient(x, spacing=[[0, 1 + 1j, 1 + 1j, 2], 1.0])
    with pytest.raises(
        ValueError, match=re.escape("coordinate for dim 0 must be finite, got (nan+1j) at index 2")
    ):
        daskgrad.gradient(x, spacing=[[0, 1j, complex(np.nan, 1), 2], 1.0])
    with pytest.raises(ValueError, match="must be a finite, non-zero step, got 0j"):
        daskgrad.gradient(x, spacing=0j)


# -- 2. complex spacing with real values: refused when gradient is called -----------------------


@pytest.mark.parametrize(
    "values",
    [
        np.arange(5.0) ** 2,
        np.arange(5, dtype=np.float32),
        np.arange(5),
        np.array([1, 0, 1, 1, 0], bool),
        np.arange(5).astype("M8[s]"),
    ],
    ids=lambda v: str(v.dtype),
)
@pytest.mark.parametrize(
    "spacing",
    [
        1 + 1j,
        np.complex128(0.5 + 2j),
        np.complex64(1j),
        [np.arange(5) * (1 + 1j)],
        [np.array([0, 1, 3, 4, 6], complex)],
    ],
    ids=["py", "c128", "c64", "uniform-coords", "coords"],
)
def test_complex_spacing_with_real_values_is_refused_at_call_time(values, spacing):
    message = "spacing for dim 0 is complex but the values are real"
    for v in (values, da.from_array(values, chunks=2)):
        for edge_order in (1, 2):
            with pytest.raises(TypeError, match=message):
                daskgrad.gradient(v, spacing=spacing, edge_order=edge_order)
    # A dask coordinate is refused from its dtype alone: nothing is computed.
    if isinstance(spacing, list):
        with pytest.raises(TypeError, match=message):
            daskgrad.gradient(da.from_array(values, chunks=2), spacing=[_exploding(spacing[0])])


def test_numpy_answer_for_complex_spacing_with_real_values_is_not_torchs():
    # Why the refusal: numpy drops the imaginary part with a ComplexWarning (or raises, for a
    # Python complex step on 1-D values with edge_order=2); torch.gradient returns complex.
    f = np.array([1.0, 2.0, 4.0, 7.0, 11.0])
    with pytest.warns(np.exceptions.ComplexWarning):
        assert np.gradient(f, 1 + 1j).dtype == np.float64
    with pytest.raises(TypeError), warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        np.gradient(f, 1 + 1j, edge_order=2)
    # Complex values give the complex gradient, numpy's numbers:
    (got,) = daskgrad.gradient(f.astype(complex), spacing=1 + 1j, edge_order=2)
    assert_bitwise_equal(got, np.gradient(f.astype(complex), 1 + 1j, edge_order=2))


# -- 3. the ends of 1-D values: numpy's scalar arithmetic -------------------------------------


@st.composite
def one_d_case(draw):
    edge_order = draw(st.sampled_from([1, 2]))
    n = draw(st.integers(edge_order + 1, 9))
    dtype = draw(st.sampled_from(["complex128", "complex64", "float64", "float32", "float16"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    is_complex = dtype.startswith("complex")
    step_forms = ["none", "py-real", "np-real", "real-coords"]
    if is_complex:
        step_forms += ["py-complex", "c128", "c64", "complex-coords", "complex-uniform"]
    form = draw(st.sampled_from(step_forms))
    spacing = {
        "none": None,
        "py-real": 0.3,
        "np-real": np.float32(0.7),
        "real-coords": [np.cumsum(rng.random(n) + 0.1)],
        "py-complex": complex(rng.standard_normal(), rng.standard_normal()),
        "c128": np.complex128(rng.standard_normal() + 1j),
        "c64": np.complex64(0.3 - 1.7j),
        "complex-coords": [
            _complex_coords(rng, n, draw(st.sampled_from([np.complex128, np.complex64])))
        ],
        "complex-uniform": [np.arange(n) * (0.3 + 0.9j)],
    }[form]
    values = rng.standard_normal(n) * 10
    if is_complex:
        values = values + 1j * rng.standard_normal(n) * 10
    chunks = draw(st.sampled_from([n, 1, 2, 3]))
    return values.astype(dtype), spacing, edge_order, chunks


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_d_case())
def test_one_dimensional_ends_match_numpys_scalar_arithmetic(case):
    values, spacing, edge_order, chunks = case
    (expected,) = numpy_reference(values, spacing, None, edge_order)
    (eager,) = daskgrad.gradient(values, spacing=spacing, edge_order=edge_order)
    (lazy,) = daskgrad.gradient(
        da.from_array(values, chunks=chunks), spacing=spacing, edge_order=edge_order
    )
    assert_bitwise_equal(eager, expected)
    assert_bitwise_equal(lazy.compute(scheduler="sync"), expected)


def test_one_dimensional_complex_ends_over_many_seeds():
    # The case that drifted by one ulp in most seeds: complex values and step, edge_order=2.
    for seed in range(200):
        rng = np.random.default_rng(seed)
        x = _complex_values(rng, 6, np.complex128)
        for step in (complex(*rng.standard_normal(2)), np.complex128(rng.standard_normal() + 2j)):
            (got,) = daskgrad.gradient(x, spacing=step, edge_order=2)
            assert_bitwise_equal(got, np.gradient(x, step, edge_order=2))


# -- 4. dask coordinates stay lazy -------------------------------------------------------------


class _Counter:
    def __init__(self):
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, block):
        with self._lock:
            self.calls += 1
        return block


def _counted(coord, chunks=3):
    counter = _Counter()
    coord = np.asarray(coord)
    meta = np.empty((0,), coord.dtype)  # no call to infer the meta
    lazy = da.from_array(coord, chunks=chunks).map_blocks(counter, dtype=coord.dtype, meta=meta)
    return lazy, counter


def _exploding(coord):
    def explode(block):
        raise AssertionError("the coordinate was computed")

    coord = np.asarray(coord)
    meta = np.empty((0,) * coord.ndim, coord.dtype)
    return da.from_array(coord, chunks=2).map_blocks(explode, dtype=coord.dtype, meta=meta)


@pytest.mark.parametrize("edge_order", [1, 2])
def test_dask_coordinates_are_not_computed_when_gradient_is_called(rng, edge_order):
    x = rng.standard_normal((8, 7))
    nonuniform = np.cumsum(rng.random(8) + 0.1)
    uniform = np.arange(7) * 0.5
    c0, n0 = _counted(nonuniform)
    c1, n1 = _counted(uniform)
    grads = daskgrad.gradient(
        da.from_array(x, chunks=(3, 2)), spacing=[c0, c1], edge_order=edge_order
    )
    assert n0.calls == n1.calls == 0
    expected = numpy_reference(x, [nonuniform, uniform], None, edge_order)
    for g, e in zip(dask.compute(*grads, scheduler="sync"), expected):
        assert_bitwise_equal(g, e)
    # One spacing task per coordinate: each coordinate chunk is computed once.
    assert n0.calls == 3 and n1.calls == 3
    # Nothing at call time even when computing would fail.
    daskgrad.gradient(da.from_array(x, chunks=4), spacing=[_exploding(nonuniform), 1.0])


@pytest.mark.parametrize(
    ("coord", "message"),
    [
        ([0.0, 1.0, np.nan, 3.0, 4.0], "coordinate for dim 1 must be finite, got nan at index 2"),
        (
            [0.0, 1.0, 1.0, 3.0, 4.0],
            "coordinate for dim 1 repeats the value 1.0 at indices 1 and 2",
        ),
        ([0.0, 1.0, np.inf, 3.0, 4.0], "coordinate for dim 1 must be finite, got inf at index 2"),
    ],
)
def test_invalid_dask_coordinate_raises_at_compute_time_naming_the_dim(coord, message):
    x = da.ones((3, 5), chunks=2)
    (g,) = daskgrad.gradient(x, spacing=[da.from_array(np.array(coord), chunks=2)], dim=1)
    with pytest.raises(ValueError, match=re.escape(message)):
        g.compute(scheduler="sync")


def test_dask_coordinate_shape_is_checked_from_metadata_without_computing():
    x = da.ones((3, 5), chunks=2)
    with pytest.raises(
        ValueError,
        match=re.escape("coordinate for dim 1 has length 4 but the values have 5 points"),
    ):
        daskgrad.gradient(x, spacing=[_exploding(np.arange(4.0))], dim=1)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "coordinate for dim 1 has shape (5, 1), which does not fit values of shape (3, 5)"
        ),
    ):
        daskgrad.gradient(x, spacing=[_exploding(np.ones((5, 1)))], dim=1)
    # Unknown chunk sizes: the length is checked in the graph.
    unknown = da.from_array(np.arange(4.0), chunks=2)
    unknown = unknown[unknown >= 0]
    (g,) = daskgrad.gradient(x, spacing=[unknown], dim=1)
    with pytest.raises(
        ValueError,
        match=re.escape("coordinate for dim 1 has length 4 but the values have 5 points"),
    ):
        g.compute(scheduler="sync")


def test_dask_coordinate_with_numpy_values_gives_numpy_output(rng):
    x = rng.standard_normal((6, 4))
    coord = np.cumsum(rng.random(6) + 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (got,) = daskgrad.gradient(x, spacing=[da.from_array(coord, chunks=4)], dim=0)
    assert isinstance(got, np.ndarray)
    assert_bitwise_equal(got, numpy_reference(x, [coord], 0)[0])


def test_zero_dimensional_dask_step_stays_lazy(rng):
    x = rng.standard_normal((6, 5)).astype(np.float32)
    for step in (np.float32(0.3), np.float64(0.25), 2):
        meta = np.empty((), np.asarray(step).dtype)
        counter = _Counter()
        lazy_step = da.from_array(np.asarray(step), chunks=()).map_blocks(
            counter, dtype=meta.dtype, meta=meta
        )
        for spacing in (lazy_step, [lazy_step, 1.0]):
            grads = daskgrad.gradient(da.from_array(x, chunks=2), spacing=spacing, edge_order=2)
            assert counter.calls == 0
            host = np.asarray(step)  # numpy's form of the computed dask step: a 0-d array
            expected = numpy_reference(
                x, [host, host if not isinstance(spacing, list) else 1.0], None, 2
            )
            for g, e in zip(dask.compute(*grads, scheduler="sync"), expected):
                assert_bitwise_equal(g, e)
            counter.calls = 0
    # A 0-d numpy array is used as numpy uses it.
    for e, g in zip(
        numpy_reference(x, [np.array(np.float32(0.3))] * 2),
        daskgrad.gradient(x, spacing=np.array(np.float32(0.3))),
    ):
        assert_bitwise_equal(g, e)
    bad = da.from_array(np.array(0.0), chunks=())
    (g,) = daskgrad.gradient(da.from_array(x, chunks=2), spacing=[bad], dim=0)
    with pytest.raises(ValueError, match="spacing for dim 0 must be a finite, non-zero step"):
        g.compute(scheduler="sync")


def test_zero_dimensional_dask_step_with_numpy_values(rng):
    x = rng.standard_normal((6, 5)).astype(np.float32)
    step = da.from_array(np.array(np.float32(0.3)), chunks=())
    expected = numpy_reference(x, [np.array(np.float32(0.3))] * 2)
    for g, e in zip(daskgrad.gradient(x, spacing=step), expected):
        assert isinstance(g, np.ndarray)
        assert_bitwise_equal(g, e)
