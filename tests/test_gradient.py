"""daskgrad.gradient against numpy.gradient (bit for bit) for numpy and dask inputs."""

from __future__ import annotations

import re

import dask
import dask.array as da
import numpy as np
import pytest
from conftest import assert_bitwise_equal, numpy_reference

import daskgrad

CHUNKINGS_3D = [
    (7, 9, 5),  # one chunk
    (1, 1, 1),  # every chunk of length 1
    (3, 4, 2),
    ((2, 1, 4), (1, 1, 1, 6), (5,)),  # irregular, 1-long chunks in the middle
    ((6, 1), (8, 1), (4, 1)),  # a 1-long last chunk
    ((1, 6), (1, 8), (1, 4)),  # a 1-long first chunk
]


def _coords(rng, n, dtype=np.float64):
    return np.cumsum(rng.random(n) + 0.1).astype(dtype)


def spacing_forms(rng, shape):
    """Every spacing form ``daskgrad.gradient`` accepts, as (label, spacing) pairs, for all dims of ``shape``."""
    return [
        ("none", None),
        ("scalar", 0.5),
        ("int scalar", 3),
        ("numpy scalar", np.float64(0.25)),
        ("per-dim scalars", [0.5 * (i + 1) for i in range(len(shape))]),
        ("coords", [_coords(rng, n) for n in shape]),
        ("uniform coords", [np.arange(n) * 2.0 for n in shape]),
        ("int coords", [np.arange(n) * 3 for n in shape]),
        ("list coords", [list(_coords(rng, n)) for n in shape]),
        ("mixed", [_coords(rng, n) if i % 2 else 2.0 for i, n in enumerate(shape)]),
        ("float32 coords", [_coords(rng, n, np.float32) for n in shape]),
    ]


@pytest.mark.parametrize("edge_order", [1, 2])
@pytest.mark.parametrize("chunks", CHUNKINGS_3D, ids=str)
def test_dask_matches_numpy_for_every_spacing_form(rng, chunks, edge_order):
    x = rng.standard_normal((7, 9, 5))
    for label, spacing in spacing_forms(rng, x.shape):
        expected = numpy_reference(x, spacing, None, edge_order)
        lazy = daskgrad.gradient(
            da.from_array(x, chunks=chunks), spacing=spacing, edge_order=edge_order
        )
        assert len(lazy) == 3, label
        assert all(g.chunks == da.from_array(x, chunks=chunks).chunks for g in lazy), label
        for g, e in zip(dask.compute(*lazy, scheduler="sync"), expected):
            assert_bitwise_equal(g, e)


@pytest.mark.parametrize("edge_order", [1, 2])
def test_numpy_input_matches_numpy_for_every_spacing_form(rng, edge_order):
    x = rng.standard_normal((6, 4, 5))
    for label, spacing in spacing_forms(rng, x.shape):
        got = daskgrad.gradient(x, spacing=spacing, edge_order=edge_order)
        assert isinstance(got, tuple), label
        for g, e in zip(got, numpy_reference(x, spacing, None, edge_order)):
            assert isinstance(g, np.ndarray)
            assert_bitwise_equal(g, e)


@pytest.mark.parametrize(
    "dtype", ["float64", "float32", "float16", "complex128", "complex64", "int64", "int8", "uint16"]
)
@pytest.mark.parametrize("edge_order", [1, 2])
def test_dtypes_follow_numpy(rng, dtype, edge_order):
    x = (rng.standard_normal((8, 6)) * 20).astype(dtype)
    coords = [_coords(rng, 8), 0.5]
    for spacing in (None, 0.5, coords, [_coords(rng, 8, np.float32), np.float32(0.5)]):
        expected = numpy_reference(x, spacing, None, edge_order)
        for got in (
            daskgrad.gradient(x, spacing=spacing, edge_order=edge_order),
            dask.compute(
                *daskgrad.gradient(
                    da.from_array(x, chunks=(3, 2)), spacing=spacing, edge_order=edge_order
                )
            ),
        ):
            for g, e in zip(got, expected):
                assert_bitwise_equal(g, e)


def test_bool_values_are_zero_one_integers():
    x = np.array([[True, False, True], [False, False, True]])
    expected = numpy_reference(x.astype(np.int64))
    for got in (daskgrad.gradient(x), dask.compute(*daskgrad.gradient(da.from_array(x, chunks=1)))):
        for g, e in zip(got, expected):
            assert_bitwise_equal(g, e)


@pytest.mark.parametrize("unit", ["D", "s", "ns"])
def test_datetime_and_timedelta_behave_as_in_numpy(unit):
    t = np.array(
        ["2020-01-01", "2020-01-03", "2020-01-04", "2020-02-01", "2020-02-03"], dtype=f"M8[{unit}]"
    )
    for values in (t, t - t[0]):
        (expected,) = numpy_reference(values)
        for got in (
            daskgrad.gradient(values)[0],
            daskgrad.gradient(da.from_array(values, chunks=2))[0].compute(),
        ):
            assert_bitwise_equal(got, expected)


@pytest.mark.parametrize("dim", [0, -1, 1, (2, 0), [-1, -3, 1], ()])
def test_dim_forms_and_order(rng, dim):
    x = rng.standard_normal((5, 4, 6))
    axes = (dim,) if isinstance(dim, int) else tuple(dim)
    spacing = [_coords(rng, x.shape[a]) for a in axes]
    got = daskgrad.gradient(da.from_array(x, chunks=2), spacing=spacing, dim=dim)
    assert isinstance(got, tuple) and len(got) == len(axes)
    if not axes:
        return
    for g, e in zip(got, numpy_reference(x, spacing, axes)):
        assert_bitwise_equal(g.compute(), e)


def test_uniformity_is_decided_over_the_whole_axis(rng):
    # Uniform inside every block of 4, non-uniform overall: dask.array.gradient decides per
    # block and drifts from numpy; daskgrad must not.
    x = rng.standard_normal(12)
    coord = np.concatenate([np.arange(4) * 0.1, 1 + np.arange(4) * 0.3, 3 + np.arange(4) * 0.7])
    (expected,) = numpy_reference(x, [coord])
    (got,) = daskgrad.gradient(da.from_array(x, chunks=4), spacing=[coord])
    assert_bitwise_equal(got.compute(), expected)


@pytest.mark.parametrize("kind", ["numpy", "list", "dask"])
def test_coordinate_kinds(rng, kind):
    x = rng.standard_normal((10, 3))
    coord = _coords(rng, 10)
    given = {"numpy": coord, "list": coord.tolist(), "dask": da.from_array(coord, chunks=3)}[kind]
    (got,) = daskgrad.gradient(da.from_array(x, chunks=(3, 3)), spacing=[given], dim=0)
    assert_bitwise_equal(got.compute(), numpy_reference(x, [coord], 0)[0])


def test_nan_and_inf_propagate_as_in_numpy(rng):
    x = rng.standard_normal((9, 7))
    x[4, 3] = np.nan
    x[0, 0] = np.inf
    x[8, 6] = -np.inf
    for spacing in (None, [_coords(rng, 9), _coords(rng, 7)]):
        for edge_order in (1, 2):
            expected = numpy_reference(x, spacing, None, edge_order)
            with np.errstate(invalid="ignore"):
                got = dask.compute(
                    *daskgrad.gradient(
                        da.from_array(x, chunks=(2, 3)), spacing=spacing, edge_order=edge_order
                    )
                )
            for g, e in zip(got, expected):
                assert_bitwise_equal(g, e)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "step", [1, 0.5, 2.0**-30, 2.0**40, np.float32(0.25), np.float64(4.0), -2.0, 0.1, 3.0], ids=repr
)
def test_power_of_two_steps_multiply_by_the_reciprocal_with_numpys_bits(dtype, step):
    # The kernel multiplies by 1/(2*dx) when that is exact; extreme values (subnormal results,
    # overflow to inf, NaN) must still round exactly as numpy's division does.
    info = np.finfo(dtype)
    x = np.random.default_rng(1).standard_normal((7, 9)).astype(dtype)
    x[1, :4] = [info.tiny, info.smallest_subnormal * 3, info.max, -info.max]
    x[2, 5:] = [np.nan, np.inf, -np.inf, 0.0]
    x[3, :3] = [info.max / 2, -info.max / 2, info.tiny * 5]
    with np.errstate(all="ignore"):
        expected = numpy_reference(x, [step, step], None, 1)
        expected_view = numpy_reference(x.T, [step, step], None, 1)
        got = dask.compute(
            *daskgrad.gradient(da.from_array(x, chunks=(3, 4)), spacing=[step, step])
        )
        view = dask.compute(
            *daskgrad.gradient(da.from_array(x.T, chunks=(4, 3)), spacing=[step, step])
        )
    for g, e in zip(got, expected):
        assert_bitwise_equal(g, e)
    for g, e in zip(view, expected_view):
        assert_bitwise_equal(g, e)


def test_array_like_input_gives_numpy_output():
    got = daskgrad.gradient([[1, 2, 4], [2, 5, 9]])
    assert all(isinstance(g, np.ndarray) for g in got)
    for g, e in zip(got, numpy_reference([[1, 2, 4], [2, 5, 9]])):
        assert_bitwise_equal(g, e)


def test_one_dim_returns_a_tuple():
    got = daskgrad.gradient(np.arange(5.0) ** 2)
    assert isinstance(got, tuple) and len(got) == 1
    got = daskgrad.gradient(da.arange(5.0, chunks=2) ** 2, dim=0)
    assert isinstance(got, tuple) and len(got) == 1 and isinstance(got[0], da.Array)


def test_dask_result_is_lazy():
    calls = []

    def load(block_id=None):
        calls.append(block_id)
        return np.ones((4, 4))

    x = da.map_blocks(load, chunks=((4, 4), (4, 4)), dtype=float, meta=np.empty((0, 0)))
    grads = daskgrad.gradient(x, spacing=[np.arange(8.0), 0.5], edge_order=2)
    assert calls == []
    assert all(isinstance(g, da.Array) for g in grads)
    dask.compute(*grads, scheduler="sync")
    assert len(calls) == 4  # each input block read once, for both dims


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "kwargs", "error", "message"),
    [
        (np.array(["a", "b", "c"]), {}, TypeError, "values must be numeric"),
        (np.array([1, 2, 3], dtype=object), {}, TypeError, "got dtype object"),
        (np.ones(5), {"edge_order": 3}, ValueError, "edge_order must be 1 or 2; got 3"),
        (np.ones(5), {"edge_order": 0}, ValueError, "edge_order must be 1 or 2; got 0"),
        (np.ones(5), {"edge_order": True}, ValueError, "edge_order must be 1 or 2; got True"),
        (np.ones((3, 4)), {"dim": (0, 0)}, ValueError, "names the same dim more than once"),
        (np.ones((3, 4)), {"dim": (1, -1)}, ValueError, "names the same dim more than once"),
        (np.ones((3, 4)), {"dim": 2}, np.exceptions.AxisError, "out of bounds"),
        (np.ones((3, 4)), {"dim": -3}, np.exceptions.AxisError, "out of bounds"),
        (np.ones((3, 4)), {"dim": "x"}, TypeError, "dim must be None, an int or a sequence"),
        (np.ones((3, 4)), {"dim": [0.5]}, TypeError, "dim must hold ints"),
        (
            np.ones((3, 4)),
            {"spacing": [1.0]},
            ValueError,
            "spacing has 1 entries but 2 dim(s) are differentiated",
        ),
        (
            np.ones((3, 4)),
            {"spacing": [1.0, 2.0, 3.0]},
            ValueError,
            "spacing has 3 entries but 2 dim(s)",
        ),
        (
            np.ones((3, 4)),
            {"spacing": [np.arange(4.0), 1.0]},
            ValueError,
            "coordinate for dim 0 has length 4 but the values have 3 points",
        ),
        (
            np.ones((3, 4)),
            {"spacing": [np.ones((3, 3)), 1.0]},
            ValueError,
            "coordinate for dim 0 has shape (3, 3), which does not fit values of shape (3, 4): it does not broadcast along dim 1",
        ),
        (
            np.ones((3, 4)),
            {"spacing": [1.0, [0.0, 1.0, 1.0, 2.0]]},
            ValueError,
            "coordinate for dim 1 repeats the value 1.0 at indices 1 and 2",
        ),
        (
            np.ones((3, 4)),
            {"spacing": [[0.0, np.nan, 2.0], 1.0]},
            ValueError,
            "coordinate for dim 0 must be finite, got nan at index 1",
        ),
        (np.ones((3, 4)), {"spacing": 0.0}, ValueError, "must be a finite, non-zero step, got 0.0"),
        (
            np.ones((3, 4)),
            {"spacing": [1.0, np.inf]},
            ValueError,
            "spacing for dim 1 must be a finite, non-zero step",
        ),
        (np.ones((3, 4)), {"spacing": "a"}, TypeError, "must be a number"),
        (
            np.ones((1, 4)),
            {},
            ValueError,
            "dim 0 has 1 point(s); edge_order=1 needs at least 2 points",
        ),
        (
            np.ones((2, 4)),
            {"edge_order": 2},
            ValueError,
            "dim 0 has 2 point(s); edge_order=2 needs at least 3 points",
        ),
        (np.float64(3.0), {}, ValueError, "at least one dim"),
    ],
)
def test_bad_arguments_give_clear_errors(values, kwargs, error, message):
    for v in (values, da.from_array(np.asarray(values), chunks=-1)):
        with pytest.raises(error, match=re.escape(message)):
            daskgrad.gradient(v, **kwargs)


def test_periodic_axis_equals_numpy_on_the_wrap_padded_array(rng):
    from daskgrad.core.gradient import differentiate_axes
    from daskgrad.core.spacing import axis_spacing

    x = rng.standard_normal((9, 4))
    coord = np.cumsum(rng.random(9) + 0.1)
    period = coord[-1] - coord[0] + 0.7
    padded_coord = np.concatenate([coord[-1:] - period, coord, coord[:1] + period])
    padded = np.concatenate([x[-1:], x, x[:1]])
    for edge_order in (1, 2):
        expected = np.gradient(padded, padded_coord, axis=0, edge_order=edge_order)[1:-1]
        s = axis_spacing(coord, axis=0, size=9, edge_order=edge_order, periodic=True, period=period)
        for chunks in ((9, 4), (1, 4), ((2, 1, 5, 1), (4,))):
            (got,) = differentiate_axes(da.from_array(x, chunks=chunks), [s])
            assert_bitwise_equal(got.compute(), expected)
        assert_bitwise_equal(differentiate_axes(x, [s])[0], expected)


@pytest.mark.parametrize(
    ("coord", "period"), [([270.0, 180.0, 90.0, 0.0], 360.0), ([0.0, 90.0, 180.0, 270.0], 200.0)]
)
def test_periodic_period_must_extend_the_coordinate_monotonically(coord, period):
    from daskgrad.core.spacing import axis_spacing

    with pytest.raises(ValueError, match="is not monotonic"):
        axis_spacing(np.array(coord), axis=0, size=4, edge_order=1, periodic=True, period=period)


def test_periodic_single_point_coordinate_needs_its_period():
    from daskgrad.core.spacing import axis_spacing

    with pytest.raises(
        ValueError,
        match=re.escape("periodic dim 0 has 1 point(s), so its period cannot be inferred"),
    ):
        axis_spacing(np.array([3.0]), axis=0, size=1, edge_order=1, periodic=True)
