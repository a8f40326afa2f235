"""Compatibility helpers: the array module of a block, and dask's task objects.

CuPy is never imported unless the data is already a CuPy array, so numpy-only users never pay
for it. dask's ``Task`` objects come from a private module; the import is gated here, with the
documented tuple form of tasks as the fallback.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def is_cupy_array(x: Any) -> bool:
    """True for a ``cupy.ndarray``, decided from the type's module so CuPy is never imported."""
    return type(x).__module__.split(".")[0] == "cupy"


def array_module(x: Any) -> ModuleType:
    """The array module that owns ``x``: ``numpy``, ``cupy``, or ``x.__array_namespace__()``.

    The kernels take their module from the data, never from a flag, so a dask array of CuPy
    chunks runs on the GPU with no extra argument. numpy and CuPy are recognised first (no
    method call on the hot path); any other array of the Array API standard (such as
    ``array_api_strict``) gives its own namespace; anything else is taken as numpy.

    Examples
    --------
    >>> import numpy as np
    >>> array_module(np.zeros(3)) is np
    True
    >>> import array_api_strict
    >>> array_module(array_api_strict.zeros(3)) is array_api_strict
    True
    """
    if isinstance(x, (np.ndarray, np.generic)):
        return np
    if is_cupy_array(x):
        import cupy

        return cupy
    namespace = getattr(x, "__array_namespace__", None)
    if namespace is not None:
        return namespace()
    return np


def to_numpy(x: Any) -> np.ndarray:
    """A host (numpy) copy of a numpy, CuPy, dask or array-like object."""
    if hasattr(x, "compute") and hasattr(x, "chunks"):  # dask array
        x = x.compute()
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)


make_task: Any
make_read_task: Any
ref: Any
try:  # dask >= 2024.12 describes tasks with Task objects; building them directly skips the
    # conversion of legacy tuples, which dominated planning time on graphs of 10^5 tasks.
    # The classes themselves, not wrappers: a 1 TiB graph builds 10^5 of them.
    from dask._task_spec import Task as make_task  # make_task(key, func, *args): ``func(*args)``
    from dask._task_spec import TaskRef as ref  # ref(key): another task's output, as an argument

    def make_read_task(key: Any, func: Any, *args: Any) -> Any:
        """:func:`make_task` for a task that reads the input: the scheduler treats it as a
        root task (``da.from_zarr``'s reads are marked the same way), spreading such tasks
        over the workers as threads free up instead of piling them where their source is.
        """
        return make_task(key, func, *args, _data_producer=True)
except ImportError:  # pragma: no cover - older dask: the documented tuple form

    def make_task(key: Any, func: Any, *args: Any) -> Any:
        """A graph task ``func(*args)``; arguments made with :func:`ref` are dependencies."""
        return (func, *args)

    def ref(key: Any) -> Any:
        """A reference to another task's output, as a top-level argument of :func:`make_task`."""
        return key

    make_read_task = make_task
