"""daskgrad.blocks: one block at a time gives the whole-array graph's bits, for every option."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from daskgrad.accessor import build_gradients
from daskgrad.blocks import BlockRecipe, block_fields, block_recipe
from daskgrad.core.mask import apply_mask
from daskgrad.core.options import GradientOptions
from daskgrad.plan import plan_gradients


def _faces(values: np.ndarray, recipe: BlockRecipe, bounds, axis: int):
    """The neighbours' faces of the block ``bounds`` along ``axis``, cut from the whole array."""
    depth = recipe.depth
    n = values.shape[axis]
    a0, a1 = bounds[axis]
    periodic = axis in recipe.periodic

    def take(lo: int, hi: int):
        key = [slice(b0, b1) for b0, b1 in bounds]
        if periodic:
            key[axis] = np.arange(lo, hi) % n
            return values[tuple(key)]
        if lo < 0 or hi > n:
            return None
        key[axis] = slice(lo, hi)
        return values[tuple(key)]

    if not periodic and n == a1 - a0:
        return (None, None)
    return take(a0 - depth, a0), take(a1, a1 + depth)


def _blockwise(ds: xr.Dataset, options: GradientOptions, chunks: dict) -> dict:
    """Every output assembled from :func:`block_fields`, block by block."""
    plan = plan_gradients(ds, options)
    out = {}
    for vp in plan.variables:
        x = ds[vp.key]
        chunk_shape = tuple(chunks.get(d, n) for d, n in zip(x.dims, x.shape))
        recipe = block_recipe(ds, plan, vp, chunk_shape)
        assert isinstance(recipe, BlockRecipe), recipe
        values = x.values
        if vp.mask is not None:  # what the tile's read gives: the masked values
            values = apply_mask(values, vp.mask.broadcastable())
        fields = {name: np.empty(x.shape, recipe.out_dtype) for name in recipe.names}
        starts = [range(0, n, c) for n, c in zip(x.shape, chunk_shape)]
        for corner in itertools.product(*starts):
            bounds = [(a, min(n, a + c)) for a, n, c in zip(corner, x.shape, chunk_shape)]
            block = values[tuple(slice(a, b) for a, b in bounds)]
            faces = {a: _faces(values, recipe, bounds, a) for a in recipe.axes}
            for name, f in zip(recipe.names, block_fields(recipe, block, corner, faces)):
                fields[name][tuple(slice(a, b) for a, b in bounds)] = f
        out.update(fields)
    return out


def _dataset(n: tuple[int, int, int], dtype: str, nan_share: float, seed: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(n).astype(dtype)
    values[rng.random(n) < nan_share] = np.nan
    lat = np.sort(rng.uniform(-80, 80, n[1]))
    lat = np.unique(lat) if len(np.unique(lat)) == n[1] else np.linspace(-80, 80, n[1])
    return xr.Dataset(
        {"T": (("z", "lat", "lon"), values, {"units": "K"})},
        coords={
            "z": ("z", np.cumsum(rng.uniform(0.5, 2.0, n[0]))),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", np.arange(n[2]) * (360.0 / n[2]), {"units": "degrees_east"}),
        },
    )


@settings(max_examples=40, deadline=None)
@given(
    n=st.tuples(st.integers(3, 7), st.integers(3, 7), st.integers(3, 8)),
    chunk=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    edge_order=st.sampled_from([1, 2]),
    spherical=st.booleans(),
    periodic=st.booleans(),
    dtype=st.sampled_from(["float64", "float32"]),
    seed=st.integers(0, 2**16),
)
def test_blocks_equal_the_whole_array_graph(n, chunk, edge_order, spherical, periodic, dtype, seed):
    ds = _dataset(n, dtype, 0.0, seed)
    options = GradientOptions(
        edge_order=edge_order,
        geometry="spherical" if spherical else None,
        periodic={"lon": 360.0} if periodic else None,
    )
    chunks = dict(zip(("z", "lat", "lon"), chunk))
    plan = plan_gradients(ds, options)
    recipe = block_recipe(ds, plan, plan.variables[0], chunk)
    if isinstance(recipe, str):  # e.g. a last block of one point with edge_order=2
        assert "shorter than" in recipe
        return
    got = _blockwise(ds, options, chunks)
    want = build_gradients(ds.chunk(chunks), plan).compute()
    for name, values in got.items():
        np.testing.assert_array_equal(values, want[name].values, strict=True)


@settings(max_examples=30, deadline=None)
@given(
    n=st.tuples(st.integers(4, 8), st.integers(4, 8), st.integers(4, 9)),
    chunk=st.tuples(st.integers(2, 4), st.integers(2, 4), st.integers(2, 4)),
    edge_order=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_one_sided_blocks_equal_the_whole_array_graph(n, chunk, edge_order, seed):
    ds = _dataset(n, "float64", 0.25, seed)
    ds["z"] = ("z", np.arange(n[0]) * 2.0)  # uniform: runs need no whole-line scan
    options = GradientOptions(edge_order=edge_order, nan_policy="one-sided", geometry="spherical")
    chunks = dict(zip(("z", "lat", "lon"), chunk))
    plan = plan_gradients(ds, options)
    recipe = block_recipe(ds, plan, plan.variables[0], chunk)
    if isinstance(recipe, str):
        assert "shorter than" in recipe or "whole-array graph" in recipe
        return
    got = _blockwise(ds, options, chunks)
    want = build_gradients(ds.chunk(chunks), plan).compute()
    for name, values in got.items():
        np.testing.assert_array_equal(values, want[name].values, strict=True)


@pytest.mark.parametrize(
    ("options", "why"),
    [
        (GradientOptions(nan_policy="one-sided", periodic=["lon"], dim="lon"), "periodic"),
        (GradientOptions(nan_policy="one-sided", dim="z"), "scan along the dim"),
    ],
)
def test_paths_left_to_the_whole_array_graph_say_why(options, why):
    ds = _dataset((5, 4, 6), "float64", 0.0, 1)
    ds["z"] = ("z", [0.0, 1.0, 2.0, 4.0, 5.0])  # two equal steps: a run may be uniform
    plan = plan_gradients(ds, options)
    recipe = block_recipe(ds, plan, plan.variables[0], (2, 2, 2))
    assert isinstance(recipe, str) and why in recipe


def test_integer_values_with_one_sided_take_the_propagate_kernel():
    ds = xr.Dataset({"n": (("x",), np.arange(8) ** 2)})
    options = GradientOptions(nan_policy="one-sided")
    got = _blockwise(ds, options, {"x": 3})
    np.testing.assert_array_equal(got["dn_dx"], np.gradient(np.arange(8) ** 2), strict=True)


@settings(max_examples=20, deadline=None)
@given(
    chunk=st.tuples(st.integers(2, 4), st.integers(2, 4), st.integers(2, 4)),
    edge_order=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_masked_blocks_equal_the_whole_array_graph(chunk, edge_order, seed):
    """A land mask over (lat, lon) of float32 values: the masked blocks give the whole-array
    graph's bits (non-uniform latitudes whose runs cannot be uniform included)."""
    ds = _dataset((4, 7, 9), "float32", 0.0, seed)
    ds["z"] = ("z", np.arange(4) * 10.0)
    rng = np.random.default_rng(seed)
    ds.coords["wet"] = (("lat", "lon"), rng.random((7, 9)) > 0.3)
    ds["lon"] = ("lon", np.arange(9) * 2.0)  # uniform steps: no run needs a whole-line scan
    options = GradientOptions(edge_order=edge_order, mask="wet")
    chunks = dict(zip(("z", "lat", "lon"), chunk))
    plan = plan_gradients(ds, options)
    recipe = block_recipe(ds, plan, plan.variables[0], chunk)
    if isinstance(recipe, str):
        assert "shorter than" in recipe
        return
    assert recipe.one_sided
    got = _blockwise(ds, options, chunks)
    want = build_gradients(ds.chunk(chunks), plan).compute()
    for name, values in got.items():
        np.testing.assert_array_equal(values, want[name].values, strict=True)
