"""What each data variable of a Dataset is for: the one rule behind the default ``variables``.

Real files hold more than fields. A data variable is **not** differentiated by default when

* another variable names it in one of CF's reference attributes: ``bounds`` and
  ``climatology`` (cell bounds: CMIP6's ``time_bnds``, ``lat_bnds``; NEMO's ``deptht_bounds``),
  ``cell_measures`` (``areacella``), ``ancillary_variables``, ``grid_mapping``, ``coordinates``
  (also where xarray moved it into ``encoding``) and ``formula_terms`` (ROMS's ``Cs_r``, ``h``
  and ``zeta`` for ``s_rho``), or the FMS/MOM6 attribute ``time_avg_info``
  (``average_T1``, ``average_DT``);
* it is a flag or mask: it has ``flag_values``, ``flag_masks`` or ``flag_meanings`` (ROMS's
  ``mask_rho``, ``spherical``), or it has one of the models' mask names (:data:`MODEL_MASKS`:
  ROMS ``mask_rho``/``mask_u``/``mask_v``/``mask_psi``, NEMO ``tmask``/``umask``/``vmask``/
  ``fmask`` and their ``*util`` forms, MOM6 ``wet``/``wet_u``/``wet_v``/``wet_c``, WRF
  ``LANDMASK``/``LAKEMASK``);
* its dtype is not integer, float or complex (datetime, cftime, string and ``char`` variables:
  ``time_bnds`` of a ``noleap`` calendar, WRF's ``Times``).

The planner adds two more reasons: the variable used as the ``mask``, and a variable with none
of the requested dims. An explicit ``variables`` list takes exactly what it names, whatever
this module says (a numeric variable; the planner notes when it names one left out here).

Examples
--------
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset(
...     {"tas": (("lat",), np.zeros(3)), "lat_bnds": (("lat", "bnds"), np.zeros((3, 2)))},
...     coords={"lat": ("lat", [0.0, 1.0, 2.0], {"bounds": "lat_bnds"})},
... )
>>> left_out_by_default(ds)
{'lat_bnds': "the cell bounds of 'lat'"}
>>> left_out_line({"lat_bnds": "the cell bounds of 'lat'"}, "variables")
"left out: 'lat_bnds' (the cell bounds of 'lat'); name it in variables to differentiate it"
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from typing import Any

import xarray as xr

__all__ = ["MODEL_MASKS", "REFERENCE_ATTRS", "left_out_by_default", "left_out_line", "referenced"]

#: dtype kinds differentiated: integers, floats, complex.
NUMERIC_KINDS = "iufc"

#: The attributes whose value names other variables, and what such a variable is to the one
#: that names it.
REFERENCE_ATTRS = {
    "bounds": "the cell bounds of",
    "climatology": "the climatology bounds of",
    "cell_measures": "a cell measure of",
    "ancillary_variables": "an ancillary variable of",
    "grid_mapping": "the grid mapping of",
    "coordinates": "a coordinate of",
    "formula_terms": "a formula term of",
    "time_avg_info": "the time-averaging information of",  # FMS (MOM6): average_T1/T2/DT
}

#: The models' land/sea masks, by name, and the model that writes them.
MODEL_MASKS = {
    **dict.fromkeys(("mask_rho", "mask_u", "mask_v", "mask_psi"), "ROMS"),
    **dict.fromkeys(
        ("tmask", "umask", "vmask", "fmask", "tmaskutil", "umaskutil", "vmaskutil", "fmaskutil"),
        "NEMO",
    ),
    **dict.fromkeys(("wet", "wet_u", "wet_v", "wet_c"), "MOM6"),
    **dict.fromkeys(("LANDMASK", "LAKEMASK"), "WRF"),
}

_FLAG_ATTRS = ("flag_values", "flag_masks", "flag_meanings")


def referenced(attrs: Mapping[Hashable, Any], key: str) -> list[str]:
    """The variable names one reference attribute holds.

    ``cell_measures`` and ``formula_terms`` are ``key: name`` pairs; ``grid_mapping`` is a name
    or, in CF 1.7's extended form, ``mapping: coord coord ...`` (the mappings are the names);
    ``time_avg_info`` is comma separated; the others list names.

    Examples
    --------
    >>> referenced({"formula_terms": "s: s_rho C: Cs_r eta: zeta"}, "formula_terms")
    ['s_rho', 'Cs_r', 'zeta']
    >>> referenced({"grid_mapping": "crs: lat lon"}, "grid_mapping")
    ['crs']
    >>> referenced({"time_avg_info": "average_T1,average_T2"}, "time_avg_info")
    ['average_T1', 'average_T2']
    """
    value = attrs.get(key)
    if not isinstance(value, str):
        return []
    tokens = [t for t in re.split(r"[\s,]+", value) if t]
    keyed = [t[:-1] for t in tokens if t.endswith(":")]
    if key == "grid_mapping":
        return keyed or tokens
    return [t for t in tokens if not t.endswith(":")]


def _references(ds: xr.Dataset) -> dict[Hashable, str]:
    """Each variable some other variable names, with what it is to the first that names it."""
    found: dict[Hashable, str] = {}
    for owner, var in ds.variables.items():
        for key, what in REFERENCE_ATTRS.items():
            names = referenced(var.attrs, key) + referenced(var.encoding, key)
            for name in names:
                if name != owner and name not in found:
                    found[name] = f"{what} {owner!r}"
    return found


def mask_reason(name: Hashable, var: xr.DataArray) -> str | None:
    """Why ``var`` is a flag or mask variable, or ``None``.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> mask_reason("mask_rho", xr.DataArray(np.ones(2)))
    "ROMS's mask"
    >>> mask_reason("m", xr.DataArray(np.ones(2), attrs={"flag_values": [0, 1]}))
    'a flag variable (flag_values)'
    """
    for attr in _FLAG_ATTRS:
        if attr in var.attrs:
            return f"a flag variable ({attr})"
    if isinstance(name, str) and name in MODEL_MASKS:
        return f"{MODEL_MASKS[name]}'s mask"
    return None


def left_out_by_default(ds: xr.Dataset) -> dict[Hashable, str]:
    """The data variables not differentiated by default, each with the reason, in order.

    The rules are this module's (references, flags and masks, non-numeric dtype, in that
    order of precedence for the reason given).
    """
    refs = _references(ds)
    out: dict[Hashable, str] = {}
    for name, var in ds.data_vars.items():
        reason = refs.get(name) or mask_reason(name, var)
        if reason is None and var.dtype.kind not in NUMERIC_KINDS:
            reason = f"dtype {var.dtype}, not numbers"
        if reason is not None:
            out[name] = reason
    return out


def left_out_line(left_out: Mapping[Hashable, str], key: str) -> str | None:
    """One line naming the variables left out and why (``None`` when none was); ``key`` is how
    the caller names the ``variables`` option (``"input.variables"`` in a batch run)."""
    if not left_out:
        return None
    items = ", ".join(f"{name!r} ({why})" for name, why in left_out.items())
    them = "it" if len(left_out) == 1 else "them"
    return f"left out: {items}; name {them} in {key} to differentiate {them}"
