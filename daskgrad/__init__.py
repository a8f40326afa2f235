"""daskgrad: numpy.gradient, bit for bit, on arrays far larger than memory.

``daskgrad.gradient`` takes ``torch.gradient``'s arguments and returns ``numpy.gradient``'s
numbers for numpy, CuPy and dask arrays. Importing daskgrad registers the ``grad`` accessor on
``xarray.DataArray`` and ``xarray.Dataset``.
"""

from importlib.metadata import PackageNotFoundError, version

from daskgrad import accessor as _accessor  # noqa: F401  (registers the ``grad`` accessor)
from daskgrad.core.gradient import gradient

try:
    __version__ = version("daskgrad")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "gradient"]
