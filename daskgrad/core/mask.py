"""Masks as coastlines: land set to NaN in one block, before the one-sided differences.

A mask says which points are wet (``True``) and which are land. :func:`apply_mask` is the one
step a mask adds: it takes one block of values and the mask's values over the same region
(broadcastable against the block: length 1 along the dims the mask does not have) and returns
the block with NaN on land, in :func:`masked_dtype`. The differences then run with
``nan_policy="one-sided"`` (:mod:`daskgrad.core.nan_runs`), so every run of wet points along a
dim is differentiated exactly as ``numpy.gradient`` differentiates that run alone, and land is
NaN in the result.

The step is elementwise, so it commutes with cutting blocks: a block widened by its halo is
masked with the mask over the widened region, and the dask graph of a whole array is one
``map_blocks`` of it (:func:`mask_array`).

Examples
--------
>>> import numpy as np
>>> apply_mask(np.array([[1, 2, 3]]), np.array([[True, False, True]]))
array([[ 1., nan,  3.]])
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from daskgrad.core._compat import array_module

__all__ = ["apply_mask", "mask_array", "masked_dtype"]


def masked_dtype(dtype: Any) -> np.dtype:
    """The dtype of masked values: float and complex stay as they are; integers and bool
    become float64, the dtype ``numpy.gradient`` computes them in (so the bits are numpy's).

    Examples
    --------
    >>> masked_dtype(np.int16), masked_dtype(np.float32), masked_dtype(np.complex64)
    (dtype('float64'), dtype('float32'), dtype('complex64'))
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "fc":
        return dtype
    if dtype.kind in "iub":
        return np.dtype(np.float64)
    raise TypeError(f"a mask applies to integer, float or complex values, not dtype {dtype}")


def apply_mask(values: Any, wet: Any) -> Any:
    """One block of ``values`` with NaN where ``wet`` is False (land).

    Parameters
    ----------
    values
        A numpy or CuPy block.
    wet
        The mask's values over the block's region, True on wet points: boolean (or 0/1), of the
        block's number of dims, each of the block's length or 1 (broadcast).

    Returns
    -------
    array
        The block as :func:`masked_dtype`, of the kind of ``values``.
    """
    xp = array_module(values)
    dtype = masked_dtype(values.dtype)
    out = values.astype(dtype, copy=False)
    return xp.where(xp.asarray(wet, dtype=bool), out, xp.asarray(np.nan, dtype=dtype))


def mask_array(values: Any, wet: Any) -> Any:
    """:func:`apply_mask` over a whole array: per block for dask values, at once otherwise.

    ``wet`` broadcasts against ``values`` as in :func:`apply_mask`. For dask values it is cut
    into the values' chunks along the dims it has (one task per block, nothing computed).

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.arange(6, chunks=2).reshape(1, 6)
    >>> mask_array(x, np.array([[1, 1, 0, 1, 1, 1]], bool)).compute()
    array([[ 0.,  1., nan,  3.,  4.,  5.]])
    """
    if not isinstance(values, da.Array):
        if isinstance(wet, da.Array):
            wet = wet.compute()
        return apply_mask(values, wet)
    chunks = tuple(c if n != 1 else (1,) for c, n in zip(values.chunks, np.shape(wet)))
    wet = da.asarray(wet).astype(bool).rechunk(chunks)
    dtype = masked_dtype(values.dtype)
    meta = values._meta.astype(dtype)
    return da.map_blocks(apply_mask, values, wet, dtype=dtype, meta=meta)
