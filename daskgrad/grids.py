"""The grid of a model as its files give it: a second grid dataset, and grids with a time dim.

* :func:`attach_grid` takes the coordinates a data file lacks from a grid dataset (the
  ``grid=`` keyword, ``input.grid`` in a batch run): MOM6's ``ocean_static.nc`` (``geolat``,
  ``geolon_u``, ``wet`` ...), NEMO's ``mesh_mask.nc`` (``tmask`` ...), a ROMS grid file.
* :func:`fixed_in_time` turns WRF's ``XLAT(Time, south_north, west_east)`` into the 2-D grid it
  is, when it is the same at every time (checked now for numpy coordinates, inside the graph
  for dask ones), and refuses a moving grid in one line.

Examples
--------
>>> import numpy as np, xarray as xr
>>> data = xr.Dataset({"tos": (("yh", "xh"), np.ones((2, 3)))}, coords={"xh": [0.5, 1.5, 2.5]})
>>> static = xr.Dataset(
...     {"geolat": (("yh", "xh"), np.zeros((2, 3)), {"units": "degrees_north"}),
...      "areacello": (("yh", "xh"), np.ones((2, 3)))},
...     coords={"xh": [0.5, 1.5, 2.5]},
... )
>>> sorted(attach_grid(data, static).coords)
['geolat', 'xh']
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from daskgrad.core.options import OptionError
from daskgrad.geometry import match_level
from daskgrad.roles import mask_reason

__all__ = ["NEMO_DEPTHS", "attach_grid", "fixed_in_time"]

#: NEMO's vertical dims in its output files; its ``mesh_mask.nc`` calls the vertical ``z``.
NEMO_DEPTHS = ("deptht", "depthu", "depthv", "depthw")

XarrayObject = xr.DataArray | xr.Dataset


def _grid_role(name: Hashable, var: xr.DataArray, mask: Hashable | None) -> str | None:
    """What a grid dataset's variable gives the data: ``"lat"``/``"lon"`` (2-D or more),
    ``"mask"``, or nothing."""
    if name == mask or mask_reason(name, var) is not None:
        return "mask"
    if var.ndim >= 2:
        for role in ("lat", "lon"):
            if match_level(name, var, role) is not None:
                return role
    return None


def _has_grid_coordinate(obj: XarrayObject, role: str, dims: Sequence[Hashable]) -> bool:
    """Whether ``obj`` has its own 2-D latitude (or longitude) over the grid dims ``dims``."""
    return any(
        coord.ndim >= 2
        and set(coord.dims[-2:]) == set(dims[-2:])
        and match_level(name, coord, role) is not None  # type: ignore[arg-type]
        for name, coord in obj.coords.items()
    )


def _aligned_dims(grid: xr.Dataset, obj: XarrayObject) -> xr.Dataset:
    """The grid with its length-1 dims that the data lacks dropped (NEMO's ``t``), and NEMO's
    ``z`` named as the data's one vertical dim of the same length (``deptht`` ...)."""
    drop = {d: 0 for d, n in grid.sizes.items() if n == 1 and d not in obj.dims}
    if drop:
        grid = grid.isel(drop, drop=True)
    if "z" in grid.dims and "z" not in obj.dims:
        depths = [d for d in NEMO_DEPTHS if d in obj.dims and obj.sizes[d] == grid.sizes["z"]]
        if len(depths) == 1:
            grid = grid.rename_dims({"z": depths[0]})
    return grid


def attach_grid(obj: XarrayObject, grid: Any, *, mask: Hashable | None = None) -> XarrayObject:
    """``obj`` with the grid coordinates it lacks taken from the dataset ``grid``.

    Taken, as coordinates of ``obj``: the latitude/longitude coordinates with two or more dims
    (found as :mod:`daskgrad.geometry` finds them) over grid dims where ``obj`` has none of its
    own, and the masks (:func:`daskgrad.roles.mask_reason`, or the variable named ``mask``),
    each lying on ``obj``'s dims with the same lengths. The grid's length-1 dims that ``obj``
    lacks are dropped, and NEMO's ``z`` becomes the data's vertical dim (:data:`NEMO_DEPTHS`)
    of that length. Its other variables (cell areas, depths ...) are not taken, and ``obj``'s
    own variables always win.

    Raises
    ------
    OptionError
        (``argument="grid"``) ``grid`` is not a Dataset; one of its dimension coordinates
        differs from ``obj``'s; one of its variables lies on ``obj``'s dims with other
        lengths; or it has nothing for ``obj`` at all.
    """
    if grid is None:
        return obj
    if not isinstance(grid, xr.Dataset):
        raise OptionError(
            "grid",
            "grid must be an xarray.Dataset holding the grid's coordinates (e.g. "
            f"xarray.open_dataset('ocean_static.nc')); got {type(grid).__name__}",
        )
    grid = _aligned_dims(grid, obj)
    for d in grid.dims:
        if d in grid.coords and d in obj.coords and obj[d].dims == (d,):
            mine, theirs = np.asarray(obj[d].values), np.asarray(grid[d].values)
            if mine.shape != theirs.shape or not np.array_equal(mine, theirs):
                raise OptionError(
                    "grid",
                    f"grid: its coordinate {d!r} differs from the data's ({theirs.size} values "
                    f"from {theirs.flat[0]!r}, the data's {mine.size} from {mine.flat[0]!r}); "
                    "is it the grid of another model or resolution?",
                )
    added: dict[Hashable, xr.Variable] = {}
    relevant = []
    for name, var in grid.variables.items():
        role = _grid_role(name, grid[name], mask)
        if role is None or name in grid.dims or not set(var.dims) <= set(obj.dims):
            continue
        relevant.append(name)
        wrong = {d: n for d, n in var.sizes.items() if obj.sizes[d] != n}
        if wrong:
            d = next(iter(wrong))
            raise OptionError(
                "grid",
                f"grid: {name!r} has {d}={wrong[d]} but the data has {d}={obj.sizes[d]}; "
                "is it the grid of another model or resolution?",
            )
        if name in obj.variables:
            continue  # the data's own
        if role in ("lat", "lon") and _has_grid_coordinate(obj, role, var.dims):
            continue
        added[name] = xr.Variable(var.dims, var.data, var.attrs)
    if not relevant:
        raise OptionError(
            "grid",
            f"grid: none of its latitude/longitude coordinates or masks lies on the data's dims "
            f"{dict(obj.sizes)}; its variables are {[str(v) for v in grid.variables]}",
        )
    return obj.assign_coords(added) if added else obj


def _unmoved(first: Any, moved: Any, *, message: str) -> Any:
    if np.any(moved):
        raise ValueError(message)
    return first


def fixed_in_time(obj: XarrayObject, name: Hashable, grid_dims: Sequence[Hashable]) -> xr.DataArray:
    """The coordinate ``name`` of ``obj`` over ``grid_dims`` alone (in that order), when it is
    the same along its other dims (WRF's ``Time``).

    Checked now for a numpy coordinate; for a dask coordinate the check runs inside the graph,
    so nothing is computed here and a moving grid fails when the result is computed.

    Raises
    ------
    OptionError
        (``argument="geometry"``) a numpy coordinate that changes along another dim.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> xlat = np.broadcast_to(np.arange(6.0).reshape(2, 3), (4, 2, 3))
    >>> ds = xr.Dataset(coords={"XLAT": (("Time", "south_north", "west_east"), xlat)})
    >>> fixed_in_time(ds, "XLAT", ("south_north", "west_east")).dims
    ('south_north', 'west_east')
    >>> moving = ds.assign_coords(XLAT=ds["XLAT"] + np.arange(4.0)[:, None, None])
    >>> fixed_in_time(moving, "XLAT", ("south_north", "west_east"))
    Traceback (most recent call last):
    ...
    daskgrad.core.options.OptionError: geometry='spherical': 'XLAT' changes along 'Time' (a moving grid); daskgrad differentiates on a grid that is the same at every time: select one time (.isel(Time=0)) or give the grid with grid=
    """
    coord = obj.coords[name]
    coord = xr.DataArray(coord.variable)  # without its own coordinates
    lead = [d for d in coord.dims if d not in grid_dims]
    if not lead:
        return coord.transpose(*grid_dims)
    message = (
        f"geometry='spherical': {name!r} changes along {lead[0]!r} (a moving grid); daskgrad "
        "differentiates on a grid that is the same at every time: select one time "
        f"(.isel({lead[0]}=0)) or give the grid with grid="
    )
    first = coord.isel({d: 0 for d in lead}).transpose(*grid_dims)
    if isinstance(coord.data, da.Array):
        moved = (coord != first).any(dim=lead).transpose(*grid_dims)
        data = da.map_blocks(
            _unmoved,
            first.data,
            moved.data.rechunk(first.data.chunks),
            message=message,
            dtype=first.dtype,
            meta=first.data._meta,
        )
        return first.copy(data=data)
    if not bool((coord == first).all()):
        raise OptionError("geometry", message)
    return first
