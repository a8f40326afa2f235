"""The fused kernel: a block's interior along every requested dim in one compiled pass.

:func:`interior_pass` runs numba-compiled loops over a 3-D view of a float32 or float64 block
and writes the central differences at points ``1 .. n-2`` of each requested axis into that
axis's output, reading each input row once for all of them (the rows of the neighbouring
planes and lines are still in cache when their turn comes). The block's first and last
points along each axis (faces, one-sided rules) are left to the array-module code in
:mod:`daskgrad.core.kernels`, as are every other dtype and array kind.

The same numbers as numpy, bit for bit: every value comes from the same IEEE operations, in
the same order, on the same operands, and numba is asked for no fast-math (no reassociation,
no fused multiply-add). Each difference is taken in the values' dtype; the divide (or the
multiply by an exact reciprocal) and the three-point weights then run in float64 and are
rounded to the output. Where numpy computes in float32, that is the same number: an addition,
subtraction, multiplication or division rounded to float64 and then to float32 is the float32
result itself (53 >= 2 * 24 + 2 bits, so rounding twice is innocuous), and the weights of a
float32 product are rounded to float32 after every operation, as numpy's loop rounds them.

numba is an optional dependency (``pip install 'daskgrad[fast]'``); without it, or with
``DASKGRAD_KERNEL=numpy`` in the environment, :func:`enabled` is false and every block takes
the array-module path, which gives the same bits.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = ["enabled", "interior_pass", "load", "vector_interior", "view_3d"]

# Modes of one axis in :func:`interior_pass` (the same numbers as in _fused_numba).
NONE, MULTIPLY, DIVIDE, WEIGHTS, WEIGHTS32 = 0, 1, 2, 3, 4


@lru_cache(maxsize=1)
def _numba_vector() -> Any:
    """The compiled divergence/vorticity pass, or None (numba is not installed)."""
    try:
        from daskgrad.core._fused_numba import div_vort
    except ImportError:
        return None
    return div_vort


@lru_cache(maxsize=1)
def _numba_kernel() -> Any:
    """The compiled pass (compiled, or loaded from numba's cache, on first use), or None."""
    try:
        from daskgrad.core._fused_numba import fused
    except ImportError:  # numba is not installed
        return None
    return fused


def enabled() -> bool:
    """True when the compiled pass can run: numba is installed and not switched off.

    ``DASKGRAD_KERNEL=numpy`` in the environment switches it off (the array-module path then
    runs, with the same bits).

    Examples
    --------
    >>> isinstance(enabled(), bool)
    True
    """
    if os.environ.get("DASKGRAD_KERNEL", "").lower() == "numpy":
        return False
    return _numba_kernel() is not None


def load() -> None:
    """Load the compiled pass now, as the first block would (nothing where it is off).

    numba, LLVM and the pass's machine code take 100-125 MiB of a process's resident memory:
    code that measures a process's resting memory (the batch runner's budget) calls this
    first, so that the memory is counted before any block runs.
    """
    if enabled():
        f = np.zeros((3, 3, 3))
        interior_pass(
            f, [f.copy(), None, None], [MULTIPLY, NONE, NONE], [0.5, 0.0, 0.0], [None] * 3
        )


def _groups(shape: Sequence[int], axes: Sequence[int]) -> list[tuple[int, list[int]]]:
    # Runs of dims no one differentiates merge into one; every differentiated dim stays alone.
    groups: list[tuple[int, list[int]]] = []
    for a, n in enumerate(shape):
        if a not in axes and groups and groups[-1][1][0] not in axes:
            groups[-1] = (groups[-1][0] * n, [*groups[-1][1], a])
        else:
            groups.append((n, [a]))
    return groups


def view_3d(
    f: np.ndarray, axes: Sequence[int]
) -> tuple[list[tuple], tuple[int, int, int], dict[int, int]] | None:
    """How a block is seen by :func:`interior_pass`: 3-D views, without a copy.

    Returns ``(keys, shape, where)``: ``f[key].reshape(shape)`` for each key is one part to
    run (the whole block, or, for a 4-D block whose first dim no one differentiates, each
    index along it), and ``where[axis]`` is the position of each differentiated axis in that
    3-D view. ``None`` where no 3-D view exists without a copy (more than three groups of
    dims, or dims to merge in a block that is not C-contiguous).

    Examples
    --------
    >>> view_3d(np.zeros((2, 3, 4, 5)), [2, 3])
    ([()], (6, 4, 5), {2: 1, 3: 2})
    >>> keys, shape, where = view_3d(np.zeros((6, 2, 3, 4)), [1, 2, 3])
    >>> len(keys), shape, where
    (6, (2, 3, 4), {1: 0, 2: 1, 3: 2})
    """
    groups = _groups(f.shape, axes)
    keys: list[tuple] = [()]
    if len(groups) == 4 and groups[0][1][0] not in axes:
        keys = [tuple(i) for i in np.ndindex(*f.shape[: len(groups[0][1])])]
        groups = groups[1:]
    if len(groups) > 3:
        return None
    if any(len(g) > 1 for _, g in groups) and not f.flags.c_contiguous:
        return None
    pad = 3 - len(groups)
    shape = tuple([1] * pad + [n for n, _ in groups])
    where = {g[0]: pad + i for i, (_, g) in enumerate(groups) if g[0] in axes}
    return keys, shape, where  # type: ignore[return-value]


def interior_pass(
    f: np.ndarray,
    outs: Sequence[np.ndarray | None],
    modes: Sequence[int],
    scalars: Sequence[float],
    weights: Sequence[np.ndarray | None],
) -> None:
    """Central differences at the interior points of every requested axis of a 3-D block.

    Parameters
    ----------
    f
        The block as a 3-D float32 or float64 array (any strides).
    outs
        Per axis, the C-contiguous output of ``f``'s shape, or ``None`` for an axis not asked
        for. Points ``1 .. n-2`` along the axis are written; nothing else is touched.
    modes
        Per axis: ``MULTIPLY`` (by ``scalars[axis]``, an exact reciprocal), ``DIVIDE`` (by
        ``scalars[axis]``), ``WEIGHTS`` or ``WEIGHTS32`` (three-point weights, float64 or a
        float32 product), ``NONE``.
    scalars
        Per axis: the divisor or reciprocal, exactly the value numpy uses.
    weights
        Per axis: a ``(3, n)`` float64 array of the weights ``a, b, c`` per point of the axis
        (exactly numpy's, widened), or ``None``.

    Examples
    --------
    >>> f = np.arange(24.0).reshape(2, 3, 4) ** 2
    >>> out = np.zeros_like(f)
    >>> if enabled():
    ...     interior_pass(f, [None, None, out], [0, 0, MULTIPLY], [0.0, 0.0, 0.5], [None] * 3)
    >>> bool(not enabled() or (out[:, :, 1:-1] == np.gradient(f, axis=2)[:, :, 1:-1]).all())
    True
    """
    kernel = _numba_kernel()
    dummy_out = np.empty((0, 0, 0), f.dtype)
    dummy_w = np.empty((3, 1), np.float64)
    o = [dummy_out if out is None else out for out in outs]
    w = []
    for axis, wa in enumerate(weights):
        if wa is None:
            # The kernel reads one weight per point of the axis (unused in these modes).
            w.append(np.zeros((3, max(1, f.shape[axis])), np.float64))
        else:
            w.append(wa)
    del dummy_w
    kernel(f, *o, *(int(m) for m in modes), *(float(s) for s in scalars), *w)


def vector_interior(
    u: np.ndarray,
    v: np.ndarray,
    outs: Sequence[np.ndarray | None],
    x_axis: tuple[int, float, np.ndarray],
    y_axis: tuple[int, float, np.ndarray],
    cos: np.ndarray | None,
    metric: np.ndarray | None,
    x_faces: Sequence[np.ndarray | None] = (None, None, None, None),
) -> None:
    """Divergence and/or vorticity at the interior points of a 3-D ``(n0, ny, nx)`` block.

        ``Dx(u) + Dy(v c)`` and ``Dx(v) - Dy(u c)``, divided by ``metric`` on a sphere (``c`` =
        ``cos``, both in the values' dtype, one value per point along ``ny``), each derivative by
        the rows of :func:`interior_pass` (the same operations as numpy's, in the same order) and
        every sum and quotient in the values' dtype, as :mod:`daskgrad.vector_blocks` computes
        them with the array module. Points ``1 .. ny-2`` x ``1 .. nx-2`` are written, and the first
    (last) column too where ``x_faces`` gives the neighbours' points beside it.

        Parameters
        ----------
        u, v
            The blocks as 3-D float32 or float64 views, ``y`` then ``x`` as the last two axes.
        outs
            ``(divergence, vorticity)``: outputs of the blocks' shape and dtype, or ``None``.
        x_axis, y_axis
            ``(mode, scalar, weights)`` of each axis as :func:`interior_pass` takes them (weights
            of shape ``(3, n)``, also for the modes that do not read them).
        cos, metric
            ``cos(lat)`` and ``a*cos(lat)`` per point along ``y``, or ``None`` without geometry.
        x_faces
            ``(u before, u after, v before, v after)``: ``(n0, ny)`` arrays of the points beside
            the first and last column (the neighbours' faces along ``x``), or ``None``; a column
            is computed where both inputs have its face.

        Examples
        --------
        >>> u = np.arange(64.0).reshape(1, 8, 8); v = np.zeros_like(u); out = np.zeros_like(u)
        >>> w = np.zeros((3, 8))
        >>> if enabled():
        ...     vector_interior(u, v, [out, None], (MULTIPLY, 0.5, w), (MULTIPLY, 0.5, w), None, None)
        >>> bool(not enabled() or (out[0, 1:-1, 1:-1] == 1.0).all())
        True
    """
    kernel = _numba_vector()
    none = np.empty((0, 0, 0), u.dtype)
    od, ov = (none if o is None else o for o in outs)
    sphere = cos is not None and metric is not None
    ny = u.shape[1]
    c = cos if sphere else np.ones(ny, u.dtype)
    m = metric if sphere else np.ones(ny, u.dtype)
    (mx, sx, wx), (my, sy, wy) = x_axis, y_axis
    lo_ok = x_faces[0] is not None and x_faces[2] is not None
    hi_ok = x_faces[1] is not None and x_faces[3] is not None
    ends = np.zeros((4, u.shape[0], ny), u.dtype)
    for q, face in enumerate(x_faces):
        if face is not None and (lo_ok if q % 2 == 0 else hi_ok):
            ends[q] = face
    kernel(
        u, v, ends, od, ov, int(mx), float(sx), wx, int(my), float(sy), wy, c, m, sphere,
        lo_ok, hi_ok,
    )  # fmt: skip
