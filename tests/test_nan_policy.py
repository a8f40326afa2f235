"""nan_policy="one-sided": each run of non-NaN values differentiated as numpy.gradient would
differentiate that run alone, bit for bit, for numpy and dask values (any chunking).

The oracle, :func:`one_sided_reference`, literally cuts every line into runs and calls
``numpy.gradient`` on each run with the run's coordinate slice (or the step);
:func:`periodic_reference` does the same round a periodic line, a run across the seam taking
coordinates continued by the period. Comparisons are ``assert_array_equal`` (NaN == NaN) plus
equal bytes wherever the result is not NaN. The last test drives the block code through a
namespace holding only functions CuPy has (CuPy itself cannot run here).
"""

from __future__ import annotations

import itertools

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import daskgrad
from daskgrad.core.gradient import differentiate_axes
from daskgrad.core.spacing import axis_spacing


def one_sided_reference(values, spacing, axis: int, edge_order: int) -> np.ndarray:
    """numpy.gradient on each maximal non-NaN run of each line along ``axis``; NaN elsewhere."""
    values = np.asarray(values)
    out_dtype = np.gradient(values[:3] if values.ndim == 1 else values, axis=0).dtype
    out = np.full(values.shape, np.nan, dtype=out_dtype)
    lines = np.moveaxis(values, axis, -1)
    result = np.moveaxis(out, axis, -1)
    coord = None if spacing is None or np.ndim(spacing) == 0 else np.asarray(spacing)
    n = lines.shape[-1]
    for idx in np.ndindex(lines.shape[:-1]):
        line = lines[idx]
        isnan = np.isnan(line) if line.dtype.kind in "fc" else np.zeros(n, bool)
        i = 0
        while i < n:
            if isnan[i]:
                i += 1
                continue
            j = i
            while j < n and not isnan[j]:
                j += 1
            if j - i >= edge_order + 1:
                run = line[i:j]
                if spacing is None:
                    g = np.gradient(run, edge_order=edge_order)
                elif coord is None:
                    g = np.gradient(run, spacing, edge_order=edge_order)
                else:
                    g = np.gradient(run, coord[i:j], edge_order=edge_order)
                result[idx][i:j] = g
            i = j
    return out


def assert_same(actual, expected) -> None:
    """Equal dtype and values (NaN where NaN is), and the same bits wherever not NaN."""
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    np.testing.assert_array_equal(actual, expected)
    keep = ~np.isnan(expected)
    assert actual[keep].tobytes() == expected[keep].tobytes()


# --- strategies ----------------------------------------------------------------------------


@st.composite
def chunking(draw, n: int) -> tuple[int, ...]:
    chunks, left = [], n
    while left:
        c = draw(st.integers(1, min(left, 4)))
        chunks.append(c)
        left -= c
    return tuple(chunks)


@st.composite
def spacing_entry(draw, n: int, complex_values: bool):
    kinds = ["none", "step", "uniform", "nonuniform", "piecewise", "int"]
    if complex_values:
        kinds += ["complex-step", "complex-coords"]
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "step":
        return draw(st.sampled_from([0.5, 2, 0.1, np.float64(0.3), np.float32(0.3), -1.5]))
    if kind == "complex-step":
        return draw(st.sampled_from([0.5 + 1j, np.complex128(-2j), np.complex64(1 - 0.5j)]))
    if kind == "uniform":
        return np.arange(n) * draw(st.sampled_from([0.1, 2.0, -0.5])) + 3.0
    if kind == "int":
        return np.arange(n) * draw(st.integers(1, 5)) + draw(st.integers(-3, 3))
    if kind == "piecewise":  # uniform on stretches only: some runs are uniform, some not
        pieces = draw(
            st.lists(
                st.tuples(st.integers(1, 5), st.sampled_from([0.1, 0.3, 1.0, 2.0])),
                min_size=1,
                max_size=4,
            )
        )
        steps = np.concatenate([np.full(k, s) for k, s in pieces] + [np.full(n, 0.7)])[: n - 1]
        return np.concatenate([[0.0], np.cumsum(steps)])
    if kind == "complex-coords":
        re = np.cumsum(draw(st.lists(st.floats(0.05, 10.0), min_size=n, max_size=n)))
        im = np.array(draw(st.lists(st.floats(-5.0, 5.0), min_size=n, max_size=n)))
        return (re + 1j * im).astype(draw(st.sampled_from([np.complex128, np.complex64])))
    inc = draw(st.lists(st.floats(0.05, 10.0), min_size=n - 1, max_size=n - 1))
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    coord = np.concatenate([[0.0], np.cumsum(inc)]).astype(dtype)
    if len(np.unique(coord)) < n:  # float32 rounding can repeat a value
        coord = np.arange(n, dtype=dtype)
    return coord if draw(st.booleans()) else coord[::-1].copy()


@st.composite
def nan_values(draw, shape: tuple[int, ...], dtype: str):
    """Random values with NaN where a drawn mask says (all, none, isolated, short runs)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    size = int(np.prod(shape))
    values = rng.standard_normal(size) * 10
    if dtype.startswith("complex"):
        values = values + 1j * rng.standard_normal(size)
    values = values.astype(dtype)
    style = draw(st.sampled_from(["none", "all", "sparse", "dense", "drawn", "inf"]))
    if style == "none":
        mask = np.zeros(size, bool)
    elif style == "all":
        mask = np.ones(size, bool)
    elif style == "drawn":
        mask = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), bool)
    else:
        mask = rng.random(size) < {"sparse": 0.15, "dense": 0.5, "inf": 0.3}[style]
    if style == "inf":  # inf is data, as in numpy
        values[rng.random(size) < 0.2] = np.inf
    if dtype.startswith("complex"):  # NaN in the real part, the imaginary part, or both
        part = rng.integers(0, 3, size)
        values[mask & (part == 0)] = complex(np.nan, 1.0)
        values[mask & (part == 1)] = complex(1.0, np.nan)
        values[mask & (part == 2)] = complex(np.nan, np.nan)
    else:
        values[mask] = np.nan
    return values.reshape(shape)


@st.composite
def case(draw):
    ndim = draw(st.integers(1, 3))
    edge_order = draw(st.sampled_from([1, 2]))
    shape = tuple(draw(st.integers(edge_order + 1, 9 if ndim < 3 else 5)) for _ in range(ndim))
    dtype = draw(st.sampled_from(["float64", "float32", "float16", "complex128", "complex64"]))
    values = draw(nan_values(shape, dtype))
    dims = draw(st.sampled_from(["all", "one"]))
    axes = tuple(range(ndim)) if dims == "all" else (draw(st.integers(0, ndim - 1)),)
    spacing = [draw(spacing_entry(shape[a], dtype.startswith("complex"))) for a in axes]
    chunks = draw(st.none() | st.tuples(*(chunking(n) for n in shape)))
    return values, axes, spacing, edge_order, chunks


# --- properties ----------------------------------------------------------------------------


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case(), st.booleans())
def test_one_sided_matches_numpy_on_each_run(c, dask_coords):
    values, axes, spacing, edge_order, chunks = c
    x = values if chunks is None else da.from_array(values, chunks=chunks)
    entries = [
        da.from_array(s, chunks=2) if dask_coords and chunks is not None and np.ndim(s) else s
        for s in spacing
    ]
    args = [1.0 if s is None else s for s in entries]
    with np.errstate(all="ignore"):
        result = daskgrad.gradient(
            x, spacing=args, dim=axes, edge_order=edge_order, nan_policy="one-sided"
        )
        expected = [one_sided_reference(values, s, a, edge_order) for s, a in zip(spacing, axes)]
        if chunks is not None:
            assert all(r.chunks == x.chunks for r in result)
            result = dask.compute(*result, scheduler="sync")
    for r, e in zip(result, expected):
        assert_same(r, e)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_runs_cross_chunk_boundaries_with_length_one_chunks(data):
    # A long 1-D line cut into many chunks of 1..3: runs and equal-difference stretches of the
    # coordinate both span several chunks.
    n = data.draw(st.integers(8, 40))
    edge_order = data.draw(st.sampled_from([1, 2]))
    values = data.draw(nan_values((n,), "float64"))
    spacing = data.draw(spacing_entry(n, False))
    chunks = data.draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    cut, total = [], 0
    for c in chunks:
        if total >= n:
            break
        cut.append(min(c, n - total))
        total += cut[-1]
    x = da.from_array(values, chunks=(tuple(cut),))
    (g,) = daskgrad.gradient(
        x,
        spacing=[1.0 if spacing is None else spacing],
        edge_order=edge_order,
        nan_policy="one-sided",
    )
    with np.errstate(all="ignore"):
        expected = one_sided_reference(values, spacing, 0, edge_order)
    assert_same(g.compute(scheduler="sync"), expected)


# --- fixed cases ---------------------------------------------------------------------------


def test_docstring_example_by_hand():
    f = np.array([1.0, 2.0, 4.0, np.nan, 5.0, 7.0, np.nan, 3.0])
    (g,) = daskgrad.gradient(f, nan_policy="one-sided")
    # [1, 2, 4]: one-sided, central, one-sided; [5, 7]: two one-sided; [3]: too short.
    np.testing.assert_array_equal(g, [1.0, 1.5, 2.0, np.nan, 2.0, 2.0, np.nan, np.nan])


def test_uniform_run_on_a_nonuniform_axis_uses_the_uniform_formula():
    # x is non-uniform over the axis, but the run 3..7 sits on an evenly spaced stretch:
    # numpy decides for the run, so the uniform formula applies there.
    x = np.array([0.0, 0.5, 1.7, 2.0, 2.1, 2.2, 2.3, 2.4, 3.0, 4.5])
    f = np.sin(x * 3)
    f[2] = np.nan
    f[8] = np.nan
    for edge_order in (1, 2):
        expected = one_sided_reference(f, x, 0, edge_order)
        assert_same(
            daskgrad.gradient(f, spacing=[x], edge_order=edge_order, nan_policy="one-sided")[0],
            expected,
        )
        for chunks in (1, 2, 3):
            (g,) = daskgrad.gradient(
                da.from_array(f, chunks=chunks),
                spacing=[x],
                edge_order=edge_order,
                nan_policy="one-sided",
            )
            assert_same(g.compute(), expected)


def test_without_nan_equals_propagate_bit_for_bit(rng):
    f = rng.standard_normal((7, 9))
    x = np.cumsum(rng.random(9) + 0.1)
    for edge_order in (1, 2):
        one = daskgrad.gradient(f, spacing=[0.3, x], edge_order=edge_order, nan_policy="one-sided")
        prop = daskgrad.gradient(f, spacing=[0.3, x], edge_order=edge_order)
        for a, b in zip(one, prop):
            assert a.tobytes() == b.tobytes()


def test_all_nan_gives_all_nan():
    f = np.full((4, 5), np.nan, dtype=np.float32)
    for g in daskgrad.gradient(da.from_array(f, chunks=2), nan_policy="one-sided", edge_order=2):
        out = g.compute()
        assert out.dtype == np.float32 and np.isnan(out).all()


def test_integer_and_bool_values_have_no_nan(rng):
    f = rng.integers(-5, 5, (5, 6))
    for values in (f, f > 0):
        one = daskgrad.gradient(values, nan_policy="one-sided")
        prop = daskgrad.gradient(values)
        for a, b in zip(one, prop):
            assert a.tobytes() == b.tobytes()


def test_datetime_values_are_propagate():
    t = np.array(["2020-01-01", "2020-01-03", "NaT", "2020-01-09"], dtype="M8[D]")
    (one,) = daskgrad.gradient(t, nan_policy="one-sided")
    (prop,) = daskgrad.gradient(t)
    np.testing.assert_array_equal(one, prop)


def test_unknown_chunk_sizes_are_refused():
    u = da.ones(6, chunks=3)
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        daskgrad.gradient(u[u > 0], nan_policy="one-sided")


def test_complex_nan_in_either_part_cuts_the_run():
    f = np.array([1 + 1j, 2 + 0j, complex(3, np.nan), 4j, 5 + 5j, complex(np.nan, 0), 1, 2, 3])
    (g,) = daskgrad.gradient(f, nan_policy="one-sided")
    assert_same(g, one_sided_reference(f, None, 0, 1))
    assert np.isnan(g[[2, 5]]).all() and not np.isnan(g[[0, 1, 3, 4, 6, 7, 8]]).any()


def test_dask_result_is_lazy_and_keeps_chunks():
    f = da.from_array(np.arange(40.0).reshape(5, 8), chunks=(2, 3))
    coord = da.from_array(np.cumsum(np.arange(1.0, 9.0)), chunks=4)
    g = daskgrad.gradient(f, spacing=[1.0, coord], nan_policy="one-sided", edge_order=2)
    assert all(isinstance(r, da.Array) and r.chunks == f.chunks for r in g)


def test_bad_nan_policy_is_refused():
    with pytest.raises(
        ValueError,
        match=r"nan_policy must be 'propagate' or 'one-sided'; got 'omit'",
    ):
        daskgrad.gradient(np.ones(3), nan_policy="omit")
    with pytest.raises(ValueError, match="nan_policy"):
        differentiate_axes(np.ones(3), [axis_spacing(None, axis=0, size=3, edge_order=1)], None)


def periodic_reference(values, step, coord, period, axis: int, edge_order: int) -> np.ndarray:
    """One-sided on a periodic axis, line by line: a line without NaN gets numpy.gradient of
    the wrap-padded line (trimmed); otherwise each cyclic run gets numpy.gradient, a run that
    crosses the seam with the coordinates after the seam continued by the period."""
    values = np.asarray(values)
    out = np.full(values.shape, np.nan, dtype=values.dtype)
    lines = np.moveaxis(values, axis, -1)
    result = np.moveaxis(out, axis, -1)
    n = lines.shape[-1]
    for idx in np.ndindex(lines.shape[:-1]):
        line = lines[idx]
        isnan = np.isnan(line)
        if not isnan.any():
            padded = np.concatenate([line[-1:], line, line[:1]])
            if coord is None:
                g = np.gradient(padded, step)
            else:
                ext = np.concatenate([coord[-1:] - period, coord, coord[:1] + period])
                g = np.gradient(padded, ext)
            result[idx][:] = g[1:-1]
            continue
        p = int(np.flatnonzero(isnan)[0])
        u = p + 1
        while u <= p + n:  # unwrapped positions after the first NaN, once round the circle
            if isnan[u % n]:
                u += 1
                continue
            v = u
            while v <= p + n and not isnan[v % n]:
                v += 1
            span = np.arange(u, v)  # one run, in unwrapped positions
            if span[0] >= n:
                span = span - n
            if v - u >= edge_order + 1:
                points = span % n
                if coord is None:
                    g = np.gradient(line[points], step, edge_order=edge_order)
                else:
                    c = np.where(span >= n, coord[points] + period, coord[points])
                    if span[-1] < n:
                        c = coord[points]
                    g = np.gradient(line[points], c, edge_order=edge_order)
                result[idx][points] = g
            u = v
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_periodic_runs_cross_the_seam(data):
    ndim = data.draw(st.integers(1, 2))
    edge_order = data.draw(st.sampled_from([1, 2]))
    shape = tuple(data.draw(st.integers(2, 9)) for _ in range(ndim))
    axis = data.draw(st.integers(0, ndim - 1))
    n = shape[axis]
    dtype = data.draw(st.sampled_from(["float64", "float32", "complex128"]))
    values = data.draw(nan_values(shape, dtype))
    kind = data.draw(st.sampled_from(["step", "uniform", "nonuniform", "int"]))
    step = coord = period = None
    if kind == "step":
        step = data.draw(st.sampled_from([1.0, 0.5, np.float32(0.3), -2.0]))
    elif kind == "uniform":  # longitude-like, period inferred
        coord = np.arange(n) * 0.5 + 10.0
        period = n * 0.5
    elif kind == "int":
        coord = np.arange(n) * 3
        period = 3.0 * n + data.draw(st.sampled_from([0.0, 2.0]))
    else:
        inc = data.draw(st.lists(st.floats(0.5, 10.0), min_size=n - 1, max_size=n - 1))
        coord = np.concatenate([[0.0], np.cumsum(inc)]) - 5.0
        period = float(coord[-1] - coord[0]) + data.draw(st.sampled_from([0.5, 3.0, 7.25]))
    s = axis_spacing(
        step if coord is None else coord,
        axis=axis,
        size=n,
        edge_order=edge_order,
        periodic=True,
        period=None if kind == "uniform" else period,
    )
    with np.errstate(all="ignore"):
        expected = periodic_reference(values, step, coord, period, axis, edge_order)
        (g,) = differentiate_axes(values, [s], "one-sided")
        assert_same(g, expected)
        chunks = data.draw(st.tuples(*(chunking(k) for k in shape)))
        (lazy,) = differentiate_axes(da.from_array(values, chunks=chunks), [s], "one-sided")
        assert lazy.chunks == chunks
        assert_same(lazy.compute(scheduler="sync"), expected)


def test_periodic_line_without_nan_keeps_the_periodic_numbers(rng):
    f = rng.standard_normal((3, 8))
    f[1, 5] = np.nan
    s = axis_spacing(np.arange(8) * 45.0, axis=1, size=8, edge_order=2, periodic=True)
    (g,) = differentiate_axes(f, [s], "one-sided")
    (h,) = differentiate_axes(f, [s])
    assert g[[0, 2]].tobytes() == h[[0, 2]].tobytes()
    # Line 1: one run from 6 round the seam to 4, differentiated as one line.
    x = np.concatenate([np.arange(6, 8) * 45.0, np.arange(0, 5) * 45.0 + 360.0])
    run = np.concatenate([f[1, 6:], f[1, :5]])
    expected = np.gradient(run, x, edge_order=2)
    np.testing.assert_array_equal(g[1, 6:], expected[:2])
    np.testing.assert_array_equal(g[1, :5], expected[2:])
    assert np.isnan(g[1, 5])


def test_periodic_integer_values_are_propagate():
    s = axis_spacing(np.arange(6.0) * 60, axis=0, size=6, edge_order=1, periodic=True, period=360.0)
    (g,) = differentiate_axes(np.arange(6), [s], "one-sided")
    (h,) = differentiate_axes(np.arange(6), [s])
    np.testing.assert_array_equal(g, h)


# Every function of the block's array module that nan_runs may call; each is a documented
# CuPy function with the same signature (CuPy cannot run here, so this is the CPU-side proof).
CUPY_FUNCTIONS = {
    "add",
    "subtract",
    "multiply",
    "divide",
    "maximum",
    "isnan",
    "where",
    "take",
    "clip",
    "broadcast_to",
    "concatenate",
    "full",
    "empty",
    "asarray",
    "cumsum",
    "any",
}


def test_block_code_uses_only_functions_cupy_has(monkeypatch, rng):
    import types

    import daskgrad.core.nan_runs
    import daskgrad.core.one_sided

    used: set[str] = set()

    def explicit(name):
        func = getattr(np, name)

        def call(*args, **kwargs):  # arithmetic never left to the library's promotion rules
            assert kwargs.get("dtype") is not None, f"{name} without dtype="
            assert not any(type(a) in (int, float, complex) for a in args), name
            return func(*args, **kwargs)

        return call

    funcs = {name: getattr(np, name) for name in CUPY_FUNCTIONS}
    funcs.update({name: explicit(name) for name in ("add", "subtract", "multiply", "divide")})
    namespace = types.SimpleNamespace(**funcs)

    class Recorder:
        def __getattr__(self, name):
            used.add(name)
            return getattr(namespace, name)  # AttributeError for anything CuPy lacks

    monkeypatch.setattr(daskgrad.core.nan_runs, "array_module", lambda a: Recorder())
    monkeypatch.setattr(daskgrad.core.one_sided, "array_module", lambda a: Recorder())
    n = 11
    coords = [
        None,
        0.5,
        np.float32(0.3),
        np.cumsum(rng.random(n) + 0.1),
        np.array([0, 1, 2, 3, 3.5, 4, 4.5, 5, 6, 7, 9.0]),
    ]
    for dtype in ("float64", "float32", "complex128"):
        f = rng.standard_normal((3, n)).astype(dtype)
        f[rng.random(f.shape) < 0.25] = np.nan
        for spacing, edge_order in itertools.product(coords, (1, 2)):
            with np.errstate(all="ignore"):
                expected = one_sided_reference(f, spacing, 1, edge_order)
            args = [1.0 if spacing is None else spacing]
            for x in (f, da.from_array(f, chunks=(2, 3))):
                (g,) = daskgrad.gradient(
                    x, spacing=args, dim=1, edge_order=edge_order, nan_policy="one-sided"
                )
                assert_same(dask.compute(g, scheduler="sync")[0], expected)
        s = axis_spacing(np.arange(n) * 2.0, axis=1, size=n, edge_order=2, periodic=True)
        with np.errstate(all="ignore"):
            expected = periodic_reference(f, None, np.arange(n) * 2.0, 2.0 * n, 1, 2)
        assert_same(differentiate_axes(f, [s], "one-sided")[0], expected)
    assert used <= CUPY_FUNCTIONS
    assert {"isnan", "where", "maximum", "take", "divide", "cumsum", "any"} <= used
