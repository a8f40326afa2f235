"""``daskgrad.gradient``: torch.gradient's arguments, numpy.gradient's numbers, any array kind.

This module checks the arguments and routes: NumPy and CuPy values go straight to the block
kernel (one block, no halo); dask values go to the halo graph. No arithmetic lives here.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np

from daskgrad.core._compat import is_cupy_array
from daskgrad.core.halo import gradient_dask
from daskgrad.core.kernels import gradient_block, working_dtypes
from daskgrad.core.ndcoords import NDAxisSpacing, differentiate_with_nd
from daskgrad.core.one_sided import gradient_one_sided
from daskgrad.core.options import OptionError, check_edge_order, check_nan_policy
from daskgrad.core.spacing import AxisSpacing, LazyAxisSpacing, normalize_spacing

__all__ = ["differentiate_axes", "gradient", "normalize_dims"]


def normalize_dims(dim: Any, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, an int or a sequence of ints; negatives from the end) as axes.

    Raises
    ------
    numpy.exceptions.AxisError
        A dim out of range.
    ValueError
        A dim given twice.
    TypeError
        A dim that is not an integer.

    Examples
    --------
    >>> normalize_dims(-1, 3)
    (2,)
    >>> normalize_dims(None, 2)
    (0, 1)
    """
    if dim is None:
        return tuple(range(ndim))
    dims = [dim] if isinstance(dim, (numbers.Integral, np.integer)) else dim
    if isinstance(dims, (str, bytes)) or not isinstance(dims, (Sequence, np.ndarray)):
        raise TypeError(f"dim must be None, an int or a sequence of ints, got {dim!r}")
    axes = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (numbers.Integral, np.integer)):
            raise TypeError(f"dim must hold ints, got {d!r} in dim={dim!r}")
        if not -ndim <= int(d) < ndim:
            raise np.exceptions.AxisError(int(d), ndim, "dim")
        axes.append(int(d) % ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"dim={dim!r} names the same dim more than once (as axes {axes})")
    return tuple(axes)


def _as_array(values: Any) -> Any:
    if isinstance(values, da.Array) or is_cupy_array(values) or isinstance(values, np.ndarray):
        return values
    return np.asarray(values)


def _check_complex_spacing(dtype: np.dtype, spacings: Sequence[Any]) -> None:
    # numpy.gradient drops the imaginary part here (with a ComplexWarning) in most forms and
    # raises in one (a Python complex step, 1-D values, edge_order=2); torch.gradient returns
    # a complex result. No answer is both, so the call is refused before anything runs.
    if dtype.kind == "c":
        return
    for s in spacings:
        if s.complex:
            raise TypeError(
                f"spacing for {s.label or f'dim {s.axis}'} is complex but the values are real "
                f"(dtype {dtype}): numpy.gradient would drop the imaginary part and "
                "torch.gradient would return a complex result; give complex values "
                "(e.g. values.astype(numpy.complex128)) for the complex gradient"
            )


def differentiate_axes(
    values: Any,
    spacings: Sequence[AxisSpacing | LazyAxisSpacing],
    nan_policy: str = "propagate",
) -> tuple[Any, ...]:
    """Gradients of ``values`` along the axes described by ``spacings`` (already normalized).

    The engine behind :func:`gradient` and the xarray accessor, which build ``spacings`` with
    :mod:`daskgrad.core.spacing` (that is where periodic axes come in).

    Parameters
    ----------
    values
        numpy, CuPy or dask array.
    spacings
        One :class:`~daskgrad.core.spacing.AxisSpacing` per differentiated axis (or, for dask
        values, a :class:`~daskgrad.core.spacing.LazyAxisSpacing` for a dask coordinate).
    nan_policy
        ``"propagate"`` or ``"one-sided"``, as for :func:`gradient`.

    Returns
    -------
    tuple
        One array per entry of ``spacings``, of the same kind as ``values``.

    Raises
    ------
    TypeError
        A complex step or coordinate with real (non-complex) values.
    ValueError
        An unknown ``nan_policy``.
    """
    nan_policy = check_nan_policy(nan_policy)
    _, out_dtype = working_dtypes(values.dtype)
    _check_complex_spacing(np.dtype(values.dtype), spacings)
    if not spacings:
        return ()
    nd = any(isinstance(s, NDAxisSpacing) for s in spacings)
    if nd and nan_policy != "propagate":
        raise OptionError(
            "nan_policy",
            f"nan_policy={nan_policy!r} is not available with an N-D coordinate yet; use "
            "nan_policy='propagate' there",
        )
    if nd:
        return differentiate_with_nd(values, spacings, differentiate_axes)
    if nan_policy == "one-sided" and np.dtype(values.dtype).kind in "fc":  # others have no NaN
        return gradient_one_sided(values, spacings, out_dtype)
    if isinstance(values, da.Array):
        return gradient_dask(values, spacings, out_dtype)
    faces = []
    for s in spacings:
        if s.periodic:  # one block that is its own neighbour on both sides
            key_last = [slice(None)] * values.ndim
            key_first = [slice(None)] * values.ndim
            key_last[s.axis] = slice(s.size - 1, s.size)
            key_first[s.axis] = slice(0, 1)
            faces.append((values[tuple(key_last)], values[tuple(key_first)]))
        else:
            faces.append((None, None))
    axes = [s.axis for s in spacings]
    eager = [s for s in spacings if isinstance(s, AxisSpacing)]  # lazy ones come with dask values
    return gradient_block(values, faces, axes, [s.block(0, s.size) for s in eager])


def gradient(
    values: Any,
    *,
    spacing: Any = None,
    dim: Any = None,
    edge_order: int = 1,
    nan_policy: str = "propagate",
) -> tuple:
    """Gradient of an N-d array: ``torch.gradient``'s arguments, ``numpy.gradient``'s numbers.

    Interior points use second-order central differences, the ends first- or second-order
    one-sided differences, and non-uniform coordinates numpy's three-point weights. Every
    result is bit-for-bit equal to
    ``numpy.gradient(numpy.asarray(values), *spacing, axis=dim, edge_order=edge_order)``,
    for every chunking of a dask input.

    Parameters
    ----------
    values
        numpy or CuPy array, dask array (numpy or CuPy chunks), or any array-like. Integer and
        bool values give float64 results; float16/32/64 and complex keep their dtype;
        datetime64 gives timedelta64 as in numpy. (numpy.gradient refuses bool; daskgrad treats
        it as 0/1 integers.)
    spacing
        ``None`` (step 1 everywhere); one scalar (the step of every differentiated dim); or a
        sequence with one entry per differentiated dim, each a scalar step or a 1-D
        coordinate array (numpy, CuPy, dask or list) as long as that dim. Uniform coordinates
        use the uniform formula exactly when numpy would (all differences equal, decided over
        the whole axis). Steps must be finite and non-zero, coordinates finite with no two
        *adjacent* values equal (``ValueError`` where numpy would give inf/NaN; repeats that
        are not adjacent are allowed, as in numpy). Complex steps and coordinates are allowed
        with complex values and give numpy's numbers; with real (integer, bool, float or
        datetime) values they are refused with ``TypeError`` at call time, because numpy
        drops the imaginary part (or raises, for a Python complex step on 1-D values with
        ``edge_order=2``) while torch returns a complex result. A dask coordinate of dask
        values is never computed here: it is checked, and its uniformity decided, inside the
        graph, so its errors come at compute time (still naming the dim). An entry may also
        be an N-D coordinate (2+ dims, aligned with ``values`` by numpy broadcasting,
        trailing dims first, with the dim's length along the dim): each line along the dim
        is then differentiated as ``numpy.gradient(line, line_coordinate)`` would, see
        :mod:`daskgrad.core.ndcoords`.
    dim
        ``None`` (every dim), an int, or a sequence of ints; negatives count from the end.
    edge_order
        1 or 2. Each differentiated dim needs at least ``edge_order + 1`` points.
    nan_policy
        ``"propagate"`` (default): numpy's numbers, NaN spreads to the neighbours.
        ``"one-sided"``: along each differentiated dim, each maximal run of non-NaN values is
        differentiated exactly as ``numpy.gradient`` differentiates that run alone (its own
        coordinates or step, central inside, one-sided at its ends, uniformity decided for
        the run); runs shorter than ``edge_order + 1`` and NaN points give NaN. Complex values
        are NaN where either part is; integer, bool and datetime values have no NaN, so both
        policies agree. (On a periodic dim, as the xarray accessor builds them, a run may
        cross the seam and is then one run.)

    Returns
    -------
    tuple
        One array per differentiated dim, in ``dim`` order, of the input's kind: numpy in,
        numpy out; CuPy in, CuPy out; dask in, lazy dask out with the input's chunks (nothing
        is computed until you ask).

    Notes
    -----
    A dask input is processed block by block with a halo of depth 1 taken from the
    neighbouring blocks' faces only, one kernel pass per block for all dims. Any chunking
    works, chunks of length 1 included. Two cases are rechunked internally and the results
    rechunked back: empty chunks along a differentiated dim, and, with ``edge_order=2``, a
    first or last chunk of length 1 (merged with its neighbour).

    Examples
    --------
    The examples of the torch.gradient documentation:

    >>> import numpy as np
    >>> import daskgrad
    >>> t = np.array([-2.0, 1.0, -3.0, 4.0, 5.0])
    >>> daskgrad.gradient(t**2 + 5)
    (array([-3. ,  2.5,  7.5,  8. ,  9. ]),)
    >>> y = np.array([0.0, 0.25, 1.0, 2.25])
    >>> daskgrad.gradient(y, spacing=(0.5,))
    (array([0.5, 1. , 2. , 2.5]),)
    >>> x = np.arange(27.0).reshape(3, 3, 3)
    >>> [g[0, 0, 0] for g in daskgrad.gradient(x)]
    [np.float64(9.0), np.float64(3.0), np.float64(1.0)]

    Complex values with a complex step, as in numpy:

    >>> daskgrad.gradient(np.array([0j, 1j, 4j]), spacing=1j)
    (array([1.+0.j, 2.+0.j, 3.+0.j]),)

    A dask array stays lazy:

    >>> import dask.array as da
    >>> g = daskgrad.gradient(da.from_array(x, chunks=1), dim=0)[0]
    >>> g.chunks == ((1, 1, 1), (1, 1, 1), (1, 1, 1))
    True
    >>> bool((g.compute() == 9).all())
    True

    With ``nan_policy="one-sided"`` a gap only cuts the line into runs:

    >>> f = np.array([1.0, 2.0, 4.0, np.nan, 5.0, 7.0])
    >>> daskgrad.gradient(f, nan_policy="one-sided")
    (array([1. , 1.5, 2. , nan, 2. , 2. ]),)
    """
    values = _as_array(values)
    working_dtypes(values.dtype)  # TypeError for non-numeric values, before anything else
    edge_order = check_edge_order(edge_order)
    nan_policy = check_nan_policy(nan_policy)
    if values.ndim == 0:
        raise ValueError("values must have at least one dim, got a 0-d array")
    axes = normalize_dims(dim, values.ndim)
    spacings = normalize_spacing(
        spacing, values.shape, axes, edge_order, lazy=isinstance(values, da.Array)
    )
    return differentiate_axes(values, spacings, nan_policy)
