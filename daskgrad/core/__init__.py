"""The engine: ``numpy.gradient``'s numbers on numpy, CuPy and dask arrays, no xarray.

- :mod:`~daskgrad.core.options`: the vocabulary of options every layer shares;
- :mod:`~daskgrad.core.gradient`: ``daskgrad.gradient``, its argument checks and routing;
- :mod:`~daskgrad.core.spacing`: every form of ``spacing`` as one exact record per axis;
- :mod:`~daskgrad.core.kernels`: numpy's formulas on one block and its faces;
- :mod:`~daskgrad.core.halo`: the dask graph, a face-only halo of depth 1;
- :mod:`~daskgrad.core.ndcoords`: N-D coordinate arrays, line by line;
- :mod:`~daskgrad.core.nan_runs`, :mod:`~daskgrad.core.one_sided`: ``nan_policy="one-sided"``;
- :mod:`~daskgrad.core.curvilinear`: derivatives on 2-D latitude/longitude grids;
- :mod:`~daskgrad.core.chunking`: the regular chunk grid zarr stores.

Nothing here imports xarray, zarr or the batch layer.

Examples
--------
>>> import numpy as np
>>> from daskgrad.core.gradient import gradient
>>> gradient(np.array([1.0, 2.0, 4.0]))
(array([1. , 1.5, 2. ]),)
"""
