"""The ``mask`` option: which points of each variable are wet, decided before any data is read.

``mask`` is one of

* ``None`` (default): no mask;
* a variable or coordinate name of the Dataset (or of the ``grid`` dataset), e.g.
  ``"mask_rho"``;
* a boolean ``xarray.DataArray`` (True = wet), e.g. ``ds.lsm < 0.5``;
* ``"auto"``: each variable gets its model's own mask (:data:`AUTO_MASKS`): ROMS ``mask_rho``,
  ``mask_u``, ``mask_v``, ``mask_psi`` and MOM6 ``wet``, ``wet_u``, ``wet_v``, ``wet_c`` by the
  variable's dims; NEMO ``tmask``/``umask``/``vmask``/``fmask`` (which share their dims) by the
  variable's vertical dim (``deptht`` -> ``tmask``, ``depthu`` -> ``umask``, ...) or the
  Dataset's, and at NEMO's first level (the surface) for a variable without a vertical dim.
  A variable that no model mask fits (a time series) has no mask.

A mask broadcasts against the variable: its dims must be among the variable's, with the same
lengths (length-1 dims the variable lacks are dropped). Numeric masks are wet where nonzero and
not NaN (the models write 0/1); a bool mask is wet where True. A variable with a mask is
differentiated with ``nan_policy="one-sided"``, land set to NaN first
(:func:`daskgrad.core.mask.apply_mask`): each wet run along a dim is differentiated as
``numpy.gradient`` differentiates it alone, and land is NaN in the result.

The plan records the resolved mask as a :class:`MaskPart` per variable.

Examples
--------
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset({"temp": (("eta_rho", "xi_rho"), np.ones((2, 3))),
...                  "mask_rho": (("eta_rho", "xi_rho"), np.array([[0.0, 1, 1], [1, 1, 1]]))})
>>> part = resolve_mask(ds, ds["temp"], "temp", "auto")
>>> part.name, part.wet.values.tolist()
('mask_rho', [[False, True, True], [True, True, True]])
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from daskgrad.core.options import OptionError
from daskgrad.grids import NEMO_DEPTHS

__all__ = ["AUTO_MASKS", "MaskPart", "resolve_mask"]

#: The masks ``mask="auto"`` takes, by model.
AUTO_MASKS = {
    "ROMS": ("mask_rho", "mask_u", "mask_v", "mask_psi"),
    "NEMO": ("tmask", "umask", "vmask", "fmask"),
    "MOM6": ("wet", "wet_u", "wet_v", "wet_c"),
}
#: NEMO's mask for each of its vertical dims.
_NEMO_POINT = {"deptht": "tmask", "depthu": "umask", "depthv": "vmask", "depthw": "tmask"}

XarrayObject = xr.DataArray | xr.Dataset


@dataclass(frozen=True, eq=False)
class MaskPart:
    """The mask of one variable, as the plan records it.

    Attributes
    ----------
    name
        The variable or coordinate of the input that holds the mask (``None`` for a DataArray
        given as ``mask=``).
    wet
        Boolean, True on wet points: dims a subset of the variable's, in the variable's order
        (lazy where the mask is dask-backed).
    axes
        The variable's axes of ``wet``'s dims.
    ndim
        The variable's number of dims.
    """

    name: Hashable | None
    wet: xr.DataArray = field(repr=False)
    axes: tuple[int, ...]
    ndim: int

    def broadcastable(self) -> Any:
        """``wet``'s data with length 1 along the variable's other axes (numpy or dask).

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> part = MaskPart("m", xr.DataArray(np.ones(3, bool), dims="x"), (1,), 3)
        >>> part.broadcastable().shape
        (1, 3, 1)
        """
        shape = [1] * self.ndim
        for axis, n in zip(self.axes, self.wet.shape):
            shape[axis] = n
        return self.wet.data.reshape(shape)

    def block(self, region: tuple[slice, ...]) -> np.ndarray:
        """The wet values of one block of the variable, ``region`` (one slice per axis of the
        variable, e.g. a block widened by its halo), broadcastable against that block: what
        :func:`daskgrad.core.mask.apply_mask` takes with the block's values.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> part = MaskPart("m", xr.DataArray(np.eye(3, dtype=bool), dims=("y", "x")), (1, 2), 3)
        >>> part.block((slice(0, 5), slice(1, 3), slice(0, 2))).astype(int).tolist()
        [[[0, 1], [0, 0]]]
        """
        key = tuple(region[a] for a in self.axes)
        values = np.asarray(self.wet.data[key])
        shape = [1] * self.ndim
        for axis, n in zip(self.axes, values.shape):
            shape[axis] = n
        return values.reshape(shape)


def _describe(name: Hashable | None) -> str:
    return f"mask {name!r}" if name is not None else "the mask DataArray"


def _fits(mask: xr.DataArray, x: xr.DataArray) -> bool:
    return all(d in x.dims and x.sizes[d] == n for d, n in mask.sizes.items())


def _names(obj: XarrayObject) -> list[Hashable]:
    """The variables and coordinates a mask may be named from."""
    return list(obj.variables) if isinstance(obj, xr.Dataset) else list(obj.coords)


def _aligned(
    mask: xr.DataArray, name: Hashable | None, x: xr.DataArray, label: Hashable
) -> MaskPart:
    """``mask`` checked against the variable ``x`` and turned into its :class:`MaskPart`."""
    drop = {d: 0 for d, n in mask.sizes.items() if n == 1 and d not in x.dims}
    if drop:
        mask = mask.isel(drop, drop=True)
    if not _fits(mask, x):
        raise OptionError(
            "mask",
            f"{_describe(name)} has dims {dict(mask.sizes)} but variable {label!r} has "
            f"{dict(x.sizes)}; a mask's dims must be among the variable's, with the same "
            "lengths",
        )
    if mask.dtype.kind not in "biuf":
        raise OptionError(
            "mask",
            f"{_describe(name)} has dtype {mask.dtype}; a mask is boolean (True = wet) or "
            "numbers (nonzero = wet)",
        )
    if np.dtype(x.dtype).kind not in "biufc":
        raise OptionError(
            "mask", f"variable {label!r} has dtype {x.dtype}; a mask applies to numbers"
        )
    for d in mask.dims:
        if d in mask.indexes and d in x.indexes and not mask.indexes[d].equals(x.indexes[d]):
            raise OptionError(
                "mask",
                f"{_describe(name)} has other {d!r} coordinates than variable {label!r}; give "
                "the mask on the variable's grid",
            )
    wet = mask if mask.dtype.kind == "b" else (mask != 0) & mask.notnull()
    order = [d for d in x.dims if d in wet.dims]
    wet = xr.DataArray(wet.transpose(*order).variable, name=name)
    return MaskPart(name, wet, tuple(x.get_axis_num(d) for d in order), x.ndim)


def _nemo_surface(mask: xr.DataArray, x: xr.DataArray) -> xr.DataArray:
    """A NEMO mask at its first level (the surface) for a variable without a vertical dim."""
    extra = [d for d in mask.dims if d not in x.dims and (d in NEMO_DEPTHS or d == "z")]
    return mask.isel({d: 0 for d in extra}, drop=True) if extra else mask


def _auto(obj: XarrayObject, x: xr.DataArray, label: Hashable) -> tuple[Hashable, Any] | None:
    present = {
        name: model for model, names in AUTO_MASKS.items() for name in names if name in _names(obj)
    }
    if not present:
        raise OptionError(
            "mask",
            "mask='auto' found none of the models' masks in the "
            f"{'Dataset' if isinstance(obj, xr.Dataset) else 'DataArray'} (ROMS "
            f"{'/'.join(AUTO_MASKS['ROMS'])}; NEMO {'/'.join(AUTO_MASKS['NEMO'])}; MOM6 "
            f"{'/'.join(AUTO_MASKS['MOM6'])}); give mask= a variable name or a boolean "
            "DataArray (True = wet), or the grid file with them as grid=",
        )
    fits = {}
    for name, model in present.items():
        m = obj[name]
        m = m.isel({d: 0 for d, n in m.sizes.items() if n == 1 and d not in x.dims}, drop=True)
        if model == "NEMO":
            m = _nemo_surface(m, x)
        if _fits(m, x):
            fits[name] = (model, m)
    if len(fits) > 1 and all(model == "NEMO" for model, _ in fits.values()):
        depths = [d for d in NEMO_DEPTHS if d in x.dims] or [
            d for d in NEMO_DEPTHS if d in obj.dims
        ]
        point = _NEMO_POINT.get(depths[0]) if len(depths) == 1 else None
        if point in fits:
            fits = {point: fits[point]}
    if len(fits) > 1:
        raise OptionError(
            "mask",
            f"mask='auto': variable {label!r} fits the masks {sorted(map(str, fits))}; name the "
            "one to use (mask='tmask', say) or choose variables of one grid",
        )
    if not fits:
        return None
    name, (_, m) = next(iter(fits.items()))
    return name, m


def resolve_mask(obj: XarrayObject, x: xr.DataArray, label: Hashable, mask: Any) -> MaskPart | None:
    """The :class:`MaskPart` of variable ``x`` (named ``label``) of ``obj`` for the option
    ``mask`` (see the module), or ``None`` for no mask.

    Raises
    ------
    OptionError
        (``argument="mask"``) an unknown name, a mask that does not fit the variable, a
        non-numeric mask, or ``"auto"`` with no model mask in ``obj``.
    """
    if mask is None:
        return None
    if isinstance(mask, xr.DataArray):
        return _aligned(mask, mask.name if mask.name in _names(obj) else None, x, label)
    if mask == "auto":
        found = _auto(obj, x, label)
        return None if found is None else _aligned(found[1], found[0], x, label)
    if not isinstance(mask, str) or mask not in _names(obj):
        names = [str(v) for v in _names(obj)]
        raise OptionError(
            "mask",
            f"mask={mask!r} is not a variable or coordinate of the "
            f"{'Dataset' if isinstance(obj, xr.Dataset) else 'DataArray'} (it has {names}); "
            "give a name, a boolean DataArray (True = wet) or 'auto'",
        )
    return _aligned(obj[mask], mask, x, label)
