"""numba loops of :mod:`daskgrad.core.compiled` (imported only where numba is installed).

Module-level functions, so numba caches their machine code on disk (``cache=True``): a new
process loads it instead of compiling again. No fast-math: every operation is the IEEE one, in
the order written.

Examples
--------
The interior of the last axis of a 3 x 3 x 3 block, multiplied by the reciprocal of ``2 * dx``:

>>> f = np.arange(27.0).reshape(3, 3, 3) ** 2
>>> o, none, w = np.zeros_like(f), np.empty((0, 0, 0)), np.zeros((3, 3))
>>> fused(f, none, none, o, NONE, NONE, MULTIPLY, 0.0, 0.0, 0.5, w, w, w)
>>> o[0, 0].tolist()
[0.0, 2.0, 0.0]
"""

import numba
import numpy as np

NONE, MULTIPLY, DIVIDE, WEIGHTS, WEIGHTS32 = 0, 1, 2, 3, 4


@numba.njit(inline="always", cache=True)
def row(o, lo, mid, hi, mode, s, wa, wb, wc):
    # One output row of one axis: o[k] from lo[k], mid[k], hi[k] (k over the row).
    if mode == MULTIPLY:
        for k in range(o.shape[0]):
            o[k] = np.float64(hi[k] - lo[k]) * s
    elif mode == DIVIDE:
        for k in range(o.shape[0]):
            o[k] = np.float64(hi[k] - lo[k]) / s
    elif mode == WEIGHTS:
        for k in range(o.shape[0]):
            o[k] = wa * np.float64(lo[k]) + wb * np.float64(mid[k]) + wc * np.float64(hi[k])
    else:  # WEIGHTS32: a float32 product, rounded to float32 after every operation
        for k in range(o.shape[0]):
            t = np.float32(wa * np.float64(lo[k]))
            t = np.float32(np.float64(t) + np.float64(np.float32(wb * np.float64(mid[k]))))
            o[k] = np.float32(np.float64(t) + np.float64(np.float32(wc * np.float64(hi[k]))))


@numba.njit(inline="always", cache=True)
def last_axis(o, r, mode, s, wa, wb, wc):
    # Along the row itself: points 1 .. n-2, the weights varying with k.
    n = r.shape[0]
    if mode == MULTIPLY:
        for k in range(1, n - 1):
            o[k] = np.float64(r[k + 1] - r[k - 1]) * s
    elif mode == DIVIDE:
        for k in range(1, n - 1):
            o[k] = np.float64(r[k + 1] - r[k - 1]) / s
    elif mode == WEIGHTS:
        for k in range(1, n - 1):
            o[k] = (
                wa[k] * np.float64(r[k - 1])
                + wb[k] * np.float64(r[k])
                + wc[k] * np.float64(r[k + 1])
            )
    else:
        for k in range(1, n - 1):
            t = np.float32(wa[k] * np.float64(r[k - 1]))
            t = np.float32(np.float64(t) + np.float64(np.float32(wb[k] * np.float64(r[k]))))
            o[k] = np.float32(np.float64(t) + np.float64(np.float32(wc[k] * np.float64(r[k + 1]))))


@numba.njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)
def fused(f, o0, o1, o2, m0, m1, m2, s0, s1, s2, w0, w1, w2):
    n0, n1, n2 = f.shape
    for i in range(n0):
        for j in range(n1):
            if m2 != NONE and n2 >= 3:
                last_axis(o2[i, j], f[i, j], m2, s2, w2[0], w2[1], w2[2])
            if m1 != NONE and 0 < j < n1 - 1:
                row(
                    o1[i, j], f[i, j - 1], f[i, j], f[i, j + 1],
                    m1, s1, w1[0, j], w1[1, j], w1[2, j],
                )  # fmt: skip
            if m0 != NONE and 0 < i < n0 - 1:
                row(
                    o0[i, j], f[i - 1, j], f[i, j], f[i + 1, j],
                    m0, s0, w0[0, i], w0[1, i], w0[2, i],
                )  # fmt: skip
