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

__all__ = ["enabled", "interior_pass", "load", "view_3d"]

# Modes of one axis in :func:`interior_pass` (the same numbers as in _fused_numba).
NONE, MULTIPLY, DIVIDE, WEIGHTS, WEIGHTS32 = 0, 1, 2, 3, 4


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
