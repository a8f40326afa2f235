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


@numba.njit(nogil=True, cache=True, error_model="numpy", boundscheck=False)
def div_vort(u, v, ends, od, ov, mx, sx, wx, my, sy, wy, cos, metric, sphere, lo_ok, hi_ok):
    # Divergence (od) and/or vorticity (ov; an output of shape (0, 0, 0) is not asked for) of
    # (n0, ny, nx) views at rows 1 .. ny-2, through ``row`` and ``last_axis``: Dx of one input,
    # Dy of the other times cos(lat) (sphere), combined and divided by a*cos(lat) in the
    # values' dtype, as vector_blocks' numpy path. ``ends[q]`` (n0, ny) holds the neighbours'
    # points beside the first (q = 0: u, 2: v) and last (q = 1: u, 3: v) column: with
    # ``lo_ok``/``hi_ok`` those columns are computed too (central differences across the cut).
    n0, ny, nx = u.shape
    gx = np.empty_like(u[0, 0])
    gy = np.empty_like(u[0, 0])
    p = np.empty_like(u[0, :3])
    k0 = 0 if lo_ok else 1
    k1 = nx if hi_ok else nx - 1
    for out, sign in ((od, 1), (ov, -1)):
        if out.shape[0] == 0:
            continue
        along_x, along_y = (u, v) if sign == 1 else (v, u)
        q = 0 if sign == 1 else 2
        for i in range(n0):
            for j in range(1, ny - 1):
                r = along_x[i, j]
                last_axis(gx, r, mx, sx, wx[0], wx[1], wx[2])
                if lo_ok:
                    row(gx[:1], ends[q, i, j : j + 1], r[:1], r[1:2],
                        mx, sx, wx[0, 0], wx[1, 0], wx[2, 0])  # fmt: skip
                if hi_ok:
                    row(gx[nx - 1 :], r[nx - 2 : nx - 1], r[nx - 1 :], ends[q + 1, i, j : j + 1],
                        mx, sx, wx[0, nx - 1], wx[1, nx - 1], wx[2, nx - 1])  # fmt: skip
                if sphere:
                    for w in range(3):
                        c = cos[j - 1 + w]
                        src = along_y[i, j - 1 + w]
                        for k in range(nx):
                            p[w, k] = src[k] * c
                    row(gy, p[0], p[1], p[2], my, sy, wy[0, j], wy[1, j], wy[2, j])
                else:
                    row(
                        gy, along_y[i, j - 1], along_y[i, j], along_y[i, j + 1],
                        my, sy, wy[0, j], wy[1, j], wy[2, j],
                    )  # fmt: skip
                o = out[i, j]
                m = metric[j]
                for k in range(k0, k1):
                    t = gx[k] + gy[k] if sign == 1 else gx[k] - gy[k]
                    o[k] = t / m if sphere else t
