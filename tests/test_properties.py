"""Hypothesis: random shapes (1-D to 4-D), chunkings, dims, spacing forms (complex and dask
coordinates included) and edge orders."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
from conftest import assert_bitwise_equal, numpy_reference
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import daskgrad


@st.composite
def chunking(draw, n: int) -> tuple[int, ...]:
    """A random split of ``n`` into chunks, 1-long chunks likely."""
    chunks = []
    left = n
    while left:
        c = draw(st.integers(1, min(left, 4)))
        chunks.append(c)
        left -= c
    return tuple(chunks)


@st.composite
def spacing_entry(draw, n: int, complex_values: bool = False):
    entry = draw(_spacing_entry(n, complex_values))
    if np.ndim(entry) and draw(st.booleans()):  # a dask coordinate: decided inside the graph
        entry = da.from_array(entry, chunks=draw(chunking(n)))
    return entry


@st.composite
def _spacing_entry(draw, n: int, complex_values: bool):
    kinds = ["step", "coords", "uniform-coords", "int-coords", "blockwise-uniform"]
    if complex_values:
        kinds += ["complex-step", "complex-coords", "complex-uniform-coords"]
    kind = draw(st.sampled_from(kinds))
    if kind == "complex-step":
        return draw(st.sampled_from([0.5 + 1j, np.complex128(-2j), np.complex64(1 - 0.5j)]))
    if kind == "complex-uniform-coords":
        return np.arange(n) * draw(st.sampled_from([0.1 + 0.2j, -1j])) + 3.0
    if kind == "complex-coords":
        re = np.cumsum(draw(st.lists(st.floats(0.05, 10.0), min_size=n, max_size=n)))
        im = np.array(draw(st.lists(st.floats(-5.0, 5.0), min_size=n, max_size=n)))
        return (re + 1j * im).astype(draw(st.sampled_from([np.complex128, np.complex64])))
    if kind == "step":
        return draw(st.sampled_from([0.5, 2, 1e-3, np.float64(0.1), np.float32(0.3), -1.5]))
    if kind == "uniform-coords":
        return np.arange(n) * draw(st.sampled_from([0.1, 2.0, -0.5])) + 3.0
    if kind == "int-coords":
        return np.arange(n) * draw(st.integers(1, 5))
    if kind == "blockwise-uniform":  # uniform in pieces: the per-block uniformity trap
        steps = np.repeat(draw(st.sampled_from([[0.1, 0.3], [1.0, 1.0], [2.0, 0.5, 2.0]])), n)[
            : n - 1
        ]
        return np.concatenate([[0.0], np.cumsum(steps)])
    increments = draw(st.lists(st.floats(0.05, 10.0), min_size=n - 1, max_size=n - 1))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    coord = np.concatenate([[0.0], np.cumsum(increments)]).astype(dtype)
    if len(np.unique(coord)) < n:  # rounding in float32 can repeat a value
        coord = np.arange(n, dtype=dtype)
    return coord if draw(st.booleans()) else coord[::-1].copy()


@st.composite
def case(draw):
    ndim = draw(st.integers(1, 4))
    edge_order = draw(st.sampled_from([1, 2]))
    shape = tuple(draw(st.integers(edge_order + 1, 7 if ndim < 4 else 4)) for _ in range(ndim))
    chunks = tuple(draw(chunking(n)) for n in shape)
    dims = draw(
        st.one_of(
            st.none(),
            st.integers(-ndim, ndim - 1),
            st.permutations(range(ndim)).flatmap(
                lambda p: st.integers(1, ndim).map(lambda k: tuple(p[:k]))
            ),
        )
    )
    axes = (
        tuple(range(ndim)) if dims is None else ((dims % ndim,) if isinstance(dims, int) else dims)
    )
    dtype = draw(st.sampled_from(["float64", "float32", "int32", "complex128", "complex64"]))
    form = draw(st.sampled_from(["none", "scalar", "per-dim"]))
    if form == "none":
        spacing = None
    elif form == "scalar":
        spacing = draw(st.sampled_from([0.5, 3, np.float64(0.7)]))
    else:
        spacing = [draw(spacing_entry(shape[a], dtype.startswith("complex"))) for a in axes]
    seed = draw(st.integers(0, 2**32 - 1))
    values = (np.random.default_rng(seed).standard_normal(shape) * 10).astype(dtype)
    return values, chunks, dims, spacing, edge_order


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case())
def test_dask_and_numpy_inputs_equal_numpy_gradient_bit_for_bit(c):
    values, chunks, dims, spacing, edge_order = c
    host = spacing
    if isinstance(spacing, list):  # numpy's form of dask coordinates (scalars kept as they are)
        host = [s.compute() if isinstance(s, da.Array) else s for s in spacing]
    expected = numpy_reference(values, host, dims, edge_order)
    eager = daskgrad.gradient(values, spacing=spacing, dim=dims, edge_order=edge_order)
    lazy = daskgrad.gradient(
        da.from_array(values, chunks=chunks), spacing=spacing, dim=dims, edge_order=edge_order
    )
    assert len(eager) == len(lazy) == len(expected)
    for g in lazy:
        assert g.chunks == chunks
    for e, a, b in zip(expected, eager, dask.compute(*lazy, scheduler="sync")):
        assert_bitwise_equal(a, e)
        assert_bitwise_equal(b, e)
