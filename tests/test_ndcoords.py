"""N-D coordinate arrays as spacing: every line equals numpy.gradient of that line, bit for bit.

The reference loops over the lines along the dim and calls ``numpy.gradient(line,
line_coordinate, edge_order=...)`` on each, so numpy decides uniform/non-uniform per line.
"""

from __future__ import annotations

import itertools
import re

import dask
import dask.array as da
import numpy as np
import pytest
from conftest import assert_bitwise_equal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cupy import cupy_or_skip

import daskgrad


def line_reference(values, coord, axis: int, edge_order: int) -> np.ndarray:
    """numpy.gradient of each line along ``axis`` with its own (broadcast) coordinate line."""
    values = np.asarray(values)
    if values.dtype == bool:
        values = values.astype(np.int64)  # daskgrad's documented reading of bool
    coord = np.broadcast_to(np.asarray(coord), values.shape)
    out = None
    others = [range(n) if d != axis else [slice(None)] for d, n in enumerate(values.shape)]
    for idx in itertools.product(*others):
        g = np.gradient(values[idx], coord[idx], edge_order=edge_order)
        if out is None:
            out = np.empty(values.shape, g.dtype)
        out[idx] = g
    return out


def make_coordinate(rng: np.random.Generator, shape: tuple, axis: int, kind: str) -> np.ndarray:
    """A coordinate of ``shape`` whose lines along ``axis`` are uniform, partly or not at all."""
    n = shape[axis]
    lines = []
    for _ in range(int(np.prod(shape)) // n):
        style = rng.choice(["uniform", "nonuniform", "half", "decreasing"])
        step = rng.choice([0.5, 0.1, 0.3, 2.0, 1.0])
        if style == "uniform":
            line = rng.uniform(-5, 5) + step * np.arange(n)
        elif style == "half":  # uniform over the first half only: numpy says non-uniform
            d = np.full(n - 1, step)
            d[(n - 1) // 2 :] = rng.uniform(0.1, 2.0, n - 1 - (n - 1) // 2)
            line = np.concatenate([[0.0], np.cumsum(d)])
        else:
            line = np.concatenate([[0.0], np.cumsum(rng.uniform(0.05, 2.0, n - 1))])
            if style == "decreasing":
                line = -line
        lines.append(line)
    coord = np.moveaxis(np.array(lines).reshape(*np.delete(shape, axis), n), -1, axis)
    if kind == "int":  # positive integer steps, some lines uniform (steps all 2)
        steps = rng.integers(1, 4, shape)
        steps = np.where(rng.random(shape) < 0.5, steps, 2)
        coord = np.cumsum(steps, axis=axis)
    elif kind == "float32":
        coord = coord.astype(np.float32)
    return coord


@st.composite
def chunking(draw, n: int) -> tuple[int, ...]:
    """Random chunks of an axis of length ``n``, chunks of 1 included."""
    chunks, left = [], n
    while left:
        c = draw(st.integers(1, left))
        chunks.append(c)
        left -= c
    return tuple(chunks)


@st.composite
def nd_case(draw):
    edge_order = draw(st.sampled_from([1, 2]))
    ndim = draw(st.integers(2, 3))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(ndim))
    axis = draw(st.integers(0, ndim - 1))
    shape = (*shape[:axis], draw(st.integers(edge_order + 1, 7)), *shape[axis + 1 :])
    cdim = draw(st.integers(max(2, ndim - axis), ndim))  # the coordinate must span the axis
    lead = ndim - cdim
    cshape = tuple(
        shape[d] if d == axis or not draw(st.booleans()) else 1 for d in range(lead, ndim)
    )
    kind = draw(st.sampled_from(["float64", "float64", "float32", "int"]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    coord = make_coordinate(rng, cshape, axis - lead, kind)
    vdtype = draw(st.sampled_from(["float64", "float64", "float32", "float16", "int32", "bool"]))
    values = rng.normal(size=shape) * 10
    values = values > 0 if vdtype == "bool" else values.astype(vdtype)
    vchunks = tuple(draw(chunking(n)) for n in shape)
    cchunks = tuple(draw(chunking(n)) for n in cshape)
    return values, coord, axis, edge_order, vchunks, cchunks


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nd_case())
def test_every_line_equals_numpy_gradient_of_that_line(case):
    values, coord, axis, edge_order, vchunks, cchunks = case
    expected = line_reference(values, coord, axis, edge_order)
    (eager,) = daskgrad.gradient(values, spacing=[coord], dim=axis, edge_order=edge_order)
    assert_bitwise_equal(eager, expected)
    dvalues = da.from_array(values, chunks=vchunks)
    for c in (coord, da.from_array(coord, chunks=cchunks)):
        (lazy,) = daskgrad.gradient(dvalues, spacing=[c], dim=axis, edge_order=edge_order)
        assert lazy.chunks == dvalues.chunks
        assert_bitwise_equal(lazy.compute(), expected)


def test_uniform_on_some_lines_only_takes_numpys_decision_per_line():
    # Line 0 is uniform (exact binary step), and there numpy's uniform formula and its
    # three-point weights differ in the last bits; line 1 is uniform in its first half only
    # (numpy: non-uniform). Chunks of 4 along the dim make each half uniform inside a block.
    x0 = 1.0 + 0.375 * np.arange(8)
    x1 = np.concatenate([x0[:4], x0[3] + np.cumsum([0.2, 0.15, 0.4, 0.25])])
    coord = np.stack([x0, x1])
    values = np.sin(np.arange(16.0).reshape(2, 8) * 1.3)
    for edge_order, chunks in itertools.product(
        (1, 2), ((1, 1), (2, 4), (2, 3), (1, (2, 1, 1, 3, 1)))
    ):
        expected = np.stack(
            [np.gradient(values[i], coord[i], edge_order=edge_order) for i in range(2)]
        )
        (got,) = daskgrad.gradient(
            da.from_array(values, chunks=chunks),
            spacing=[da.from_array(coord, chunks=(1, 3))],
            dim=1,
            edge_order=edge_order,
        )
        assert_array_equal_bits(got.compute(), expected)
        (eager,) = daskgrad.gradient(values, spacing=[coord], dim=1, edge_order=edge_order)
        assert_array_equal_bits(eager, expected)


def assert_array_equal_bits(actual, expected):
    np.testing.assert_array_equal(actual, expected)
    assert_bitwise_equal(actual, expected)


def test_2d_coordinate_for_3d_values_and_mixed_spacing(rng):
    # 3-D values (t, y, x); the x coordinate depends on (y, x), broadcast along t.
    values = rng.normal(size=(3, 5, 6))
    xc = np.cumsum(rng.uniform(0.1, 1.0, (5, 6)), axis=1)
    yc = np.array([0.0, 1.0, 3.0, 4.0, 7.0])
    gt, gy, gx = daskgrad.gradient(
        da.from_array(values, chunks=(2, (1, 3, 1), (1, 1, 4))), spacing=[2.0, yc, xc], edge_order=2
    )
    assert_array_equal_bits(gx.compute(), line_reference(values, xc, 2, 2))
    assert_array_equal_bits(gt.compute(), np.gradient(values, 2.0, axis=0, edge_order=2))
    assert_array_equal_bits(gy.compute(), np.gradient(values, yc, axis=1, edge_order=2))


def test_one_d_coordinate_keeps_the_whole_axis_decision():
    # A 1-D coordinate is not an N-D one: numpy's whole-axis rule, as before.
    values = np.arange(12.0).reshape(3, 4) ** 2
    x = np.array([0.0, 1.0, 3.0, 4.0])
    (g,) = daskgrad.gradient(values, spacing=[x], dim=1)
    assert_array_equal_bits(g, np.gradient(values, x, axis=1))


def test_dask_stays_lazy_and_errors_come_at_compute_time():
    values = da.ones((3, 6), chunks=(1, 2))
    coord = da.from_array(np.tile(np.arange(6.0), (3, 1)), chunks=(1, 3))
    # row 0, entries 3 and 4 equal: an adjacent repeat inside one coordinate chunk
    coord = da.where((da.arange(3)[:, None] == 0) & (da.arange(6) == 4), 3.0, coord)
    with dask.config.set(scheduler="sync"):
        (g,) = daskgrad.gradient(values, spacing=[coord], dim=1)
        with pytest.raises(
            ValueError,
            match=re.escape(
                "coordinate for dim 1 has equal adjacent values along that dim, at indices (0, 3) and (0, 4)"
            ),
        ):
            g.compute()


def test_non_finite_coordinate_is_refused_naming_dim_and_index():
    coord = np.tile(np.arange(5.0), (2, 1))
    coord[1, 2] = np.nan
    with pytest.raises(
        ValueError, match=re.escape("coordinate for dim 1 must be finite, got nan at index (1, 2)")
    ):
        daskgrad.gradient(np.ones((2, 5)), spacing=[coord], dim=1)
    (g,) = daskgrad.gradient(
        da.ones((2, 5), chunks=2), spacing=[da.from_array(coord, chunks=(1, 2))], dim=1
    )
    with pytest.raises(
        ValueError, match=re.escape("coordinate for dim 1 must be finite, got nan at index (1, 2)")
    ):
        g.compute()


@pytest.mark.parametrize(
    ("coord", "message"),
    [
        (
            np.ones((1, 5)),
            "coordinate for dim 1 has equal adjacent values along that dim, at indices (0, 0) "
            "and (0, 1); a gradient needs distinct adjacent coordinate values",
        ),
        (
            np.array([[0.0, 1.0, np.inf, 3.0, 4.0]]),
            "coordinate for dim 1 must be finite, got inf at index (0, 2)",
        ),
    ],
)
def test_a_concrete_coordinate_is_checked_at_call_time_for_dask_values_too(coord, message):
    """Only a dask coordinate defers its checks to compute time (SPEC section 5)."""
    for values in (np.ones((5, 5)), da.ones((5, 5), chunks=2)):
        with pytest.raises(ValueError, match=re.escape(message)) as info:
            daskgrad.gradient(values, spacing=[coord], dim=1)
        assert "\n" not in str(info.value)


def test_dask_coordinate_is_not_computed_at_call_time():
    computed = []

    def record(block):
        if block.size:  # dask calls it on empty arrays to learn the output's type
            computed.append(1)
        return block

    coord = da.from_array(np.tile(np.arange(5.0), (2, 1)), chunks=1).map_blocks(
        record, dtype=float, meta=np.array((), float)
    )
    (g,) = daskgrad.gradient(da.ones((2, 5), chunks=2), spacing=[coord], dim=1)
    assert computed == []
    assert_array_equal_bits(g.compute(), np.zeros((2, 5)))
    assert computed


@pytest.mark.parametrize(
    ("shape", "coord_shape", "message"),
    [
        (
            (3, 4),
            (2, 3, 4),
            "has shape (2, 3, 4), which does not fit values of shape (3, 4): it has 3 dims, more than the values' 2",
        ),
        (
            (3, 4),
            (3, 5),
            "has shape (3, 5), which does not fit values of shape (3, 4): aligned with the values' trailing dims it has 5 point(s) along dim 1, which needs 4",
        ),
        (
            (3, 4),
            (4, 1),
            "aligned with the values' trailing dims it has 1 point(s) along dim 1, which needs 4",
        ),
        (
            (3, 4),
            (2, 4),
            "has shape (2, 4), which does not fit values of shape (3, 4): it does not broadcast along dim 0 (2 against 3)",
        ),
    ],
)
def test_wrong_shapes_name_the_dim_both_shapes_and_what_is_allowed(shape, coord_shape, message):
    for wrap in (np.zeros, lambda s: da.zeros(s, chunks=1)):
        with pytest.raises(ValueError, match=re.escape(message)) as info:
            daskgrad.gradient(np.ones(shape), spacing=[wrap(coord_shape)], dim=1)
        assert "1 or the values' length along every other dim" in str(info.value)


def test_unknown_chunk_sizes_are_refused():
    coord = da.from_array(np.ones((2, 4)), chunks=1)
    coord = coord[coord[:, 0] > 0]
    with pytest.raises(
        ValueError,
        match=re.escape("unknown chunk sizes (shape (nan, 4)); call coord.compute_chunk_sizes()"),
    ):
        daskgrad.gradient(np.ones((2, 4)), spacing=[coord], dim=1)


def test_unknown_value_chunk_sizes_are_refused():
    values = da.ones((3, 4), chunks=2)
    values = values[values[:, 0] > 0]
    with pytest.raises(
        ValueError,
        match=re.escape("values is a dask array with unknown chunk sizes (shape (nan, 4))"),
    ):
        daskgrad.gradient(values, spacing=[np.zeros((3, 4))], dim=1)


def test_too_short_and_bad_dtypes():
    with pytest.raises(
        ValueError, match=re.escape("dim 1 has 2 point(s); edge_order=2 needs at least 3")
    ):
        daskgrad.gradient(np.ones((3, 2)), spacing=[np.zeros((3, 2))], dim=1, edge_order=2)
    with pytest.raises(
        TypeError,
        match=re.escape(
            "N-D coordinate for dim 0 must hold real numbers (integer or float), got dtype complex128"
        ),
    ):
        daskgrad.gradient(np.ones((3, 2)), spacing=[np.zeros((3, 2), complex)], dim=0)
    with pytest.raises(
        TypeError,
        match=re.escape("values of dtype complex128 cannot take an N-D coordinate for dim 0"),
    ):
        daskgrad.gradient(np.ones((3, 2), complex), spacing=[np.arange(6.0).reshape(3, 2)], dim=0)


@pytest.mark.gpu
def test_cupy_values_and_coordinates_equal_the_numpy_lines():
    cupy = cupy_or_skip()
    rng = np.random.default_rng(11)
    values = rng.normal(size=(3, 4, 7))
    coord = make_coordinate(rng, (4, 7), 1, "float64")
    for edge_order in (1, 2):
        expected = line_reference(values, coord, 2, edge_order)
        (eager,) = daskgrad.gradient(
            cupy.asarray(values), spacing=[cupy.asarray(coord)], dim=2, edge_order=edge_order
        )
        assert isinstance(eager, cupy.ndarray)
        assert_bitwise_equal(eager.get(), expected)
        dvalues = da.from_array(cupy.asarray(values), chunks=(2, 3, (1, 2, 4)), asarray=False)
        (lazy,) = daskgrad.gradient(dvalues, spacing=[coord], dim=2, edge_order=edge_order)
        out = lazy.compute()
        assert isinstance(out, cupy.ndarray)
        assert_bitwise_equal(out.get(), expected)
