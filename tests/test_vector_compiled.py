"""The compiled divergence/vorticity pass against the array-module kernel, bit for bit.

Every block here takes the compiled pass (counted), and its results must equal
``vector_blocks``' numpy path on the same block and faces: float32 and float64, on the sphere
and without geometry, uniform and non-uniform steps, first- and second-order ends, the
differentiated dims in either order, 2-D to 4-D blocks, blocks inside the grid (faces on every
side) and at its ends (one-sided rules), NaN included. The path's own agreement with
``numpy.gradient``-built references is in ``tests/test_vector.py``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from daskgrad.core import compiled
from daskgrad.core.spacing import axis_spacing
from daskgrad.vector_blocks import array_block, vector_block, vector_recipe

pytestmark = pytest.mark.skipif(
    not compiled.enabled(), reason="numba is not installed (pip install 'daskgrad[fast]')"
)

NY, NX = 40, 36
LAT = -90 + (np.arange(NY) + 0.5) * 180 / NY
LON = np.arange(NX) * 360 / NX
# (y0, y1), (x0, x1): inside the grid; at its lower and upper ends; the whole grid.
BLOCKS = [((10, 30), (8, 26)), ((0, 12), (0, 10)), ((28, 40), (26, 36)), ((0, 40), (0, 36))]


def _coords(rng, sphere: bool, uniform: bool) -> tuple:
    if sphere:
        return np.deg2rad(LAT), np.deg2rad(LON)
    if uniform:
        return None, None
    return np.cumsum(rng.uniform(0.5, 1.5, NY)), np.cumsum(rng.uniform(0.5, 1.5, NX))


def _cut(a: np.ndarray, start: list[int], stops: dict[int, int]) -> np.ndarray:
    key = [slice(None)] * a.ndim
    for axis, stop in stops.items():
        key[axis] = slice(start[axis], stop)
    return np.ascontiguousarray(a[tuple(key)])


def _faces(a: np.ndarray, start: list[int], stops: dict[int, int]) -> dict:
    """Per differentiated axis, the neighbours' points beside the block (None at an end)."""
    out = {}
    for axis, stop in stops.items():
        pair = []
        for i in (start[axis] - 1, stop):
            if 0 <= i < a.shape[axis]:
                pair.append(_cut(a, [*start[:axis], i, *start[axis + 1 :]], {**stops, axis: i + 1}))
            else:
                pair.append(None)
        out[axis] = tuple(pair)
    return out


@pytest.fixture
def counted(monkeypatch):
    calls = []
    original = compiled.vector_interior

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(compiled, "vector_interior", counting)
    return calls


@pytest.mark.parametrize("dtype", ["f4", "f8"])
@pytest.mark.parametrize("sphere", [True, False])
@pytest.mark.parametrize("x_last", [True, False])
def test_compiled_pass_equals_the_array_module_path(dtype, sphere, x_last, counted):
    """Each block, every layout and rule => the compiled pass ran and gave the same bits."""
    rng = np.random.default_rng(7)
    n = 0
    for uniform, edge_order, nd in itertools.product([True, False], [1, 2], [2, 3, 4]):
        if sphere and uniform:
            continue  # the sphere's radians are the non-uniform case
        yc, xc = _coords(rng, sphere, uniform)
        yax, xax = (nd - 2, nd - 1) if x_last else (nd - 1, nd - 2)
        recipe = vector_recipe(
            ("divergence", "vorticity"), xax, yax,
            axis_spacing(xc, axis=xax, size=NX, edge_order=edge_order),
            axis_spacing(yc, axis=yax, size=NY, edge_order=edge_order),
            np.dtype(dtype), lat_degrees=LAT if sphere else None,
            radius=6371e3 if sphere else 0.0,
        )  # fmt: skip
        shape = [2, 3][: nd - 2] + ([NY, NX] if x_last else [NX, NY])
        u, v = (rng.standard_normal(shape).astype(dtype) for _ in "uv")
        u.flat[5] = np.nan
        for (y0, y1), (x0, x1) in BLOCKS:
            start = [0] * nd
            start[yax], start[xax] = y0, x0
            stops = {yax: y1, xax: x1}
            blocks = tuple(_cut(a, start, stops) for a in (u, v))
            fu, fv = (_faces(a, start, stops) for a in (u, v))
            got = vector_block(recipe, start, blocks, (fu, fv))
            want = array_block(recipe, start, blocks, (fu, fv))
            for g, w in zip(got, want):
                assert g.dtype == w.dtype
                assert np.array_equal(g, w, equal_nan=True), (uniform, edge_order, nd, y0, x0)
            n += 1
    assert len(counted) == n > 0


def test_blocks_the_pass_does_not_take_go_the_array_way(counted):
    """Narrow blocks and one-sided rules => the array-module path alone, the same numbers."""
    sx = axis_spacing(None, axis=1, size=6, edge_order=1)
    sy = axis_spacing(None, axis=0, size=6, edge_order=1)
    u, v = np.arange(36.0).reshape(6, 6), np.ones((6, 6))
    none = {1: (None, None), 0: (None, None)}
    narrow = vector_recipe(("divergence",), 1, 0, sx, sy, np.dtype("f8"))
    (div,) = vector_block(narrow, (0, 0), (u, v), (none, none))
    assert np.array_equal(div, np.gradient(u, axis=1))
    one_sided = vector_recipe(("vorticity",), 1, 0, sx, sy, np.dtype("f8"), one_sided=True)
    vector_block(one_sided, (0, 0), (u, v), (none, none))
    assert counted == []
