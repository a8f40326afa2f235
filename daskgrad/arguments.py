"""The arguments of a ``grad`` call that name parts of the object: variables, dims, periodic.

Each is checked against the xarray object and normalized; every error is an
:class:`~daskgrad.core.options.OptionError` naming its argument.

Examples
--------
>>> import numpy as np, xarray as xr
>>> ds = xr.Dataset({"T": (("y", "x"), np.zeros((2, 3))), "name": ("x", ["a", "b", "c"])})
>>> choice = choose_variables(ds, None)
>>> choice.chosen, choice.left_out
([('T', 'T', False)], {'name': 'dtype <U1, not numbers'})
>>> periodic_map(ds, "x", ["y", "x"])
{'x': None}
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import xarray as xr

from daskgrad.core.options import OptionError, is_member
from daskgrad.roles import NUMERIC_KINDS, left_out_by_default

__all__ = [
    "NUMERIC_KINDS",
    "UNNAMED",
    "Choice",
    "choose_variables",
    "kind_of",
    "periodic_map",
    "requested_dims",
]

#: The name of an unnamed DataArray in the output names.
UNNAMED = "var"

XarrayObject = xr.DataArray | xr.Dataset


def kind_of(obj: XarrayObject) -> str:
    return "Dataset" if isinstance(obj, xr.Dataset) else "DataArray"


def _is_numeric(x: xr.DataArray) -> bool:
    return x.dtype.kind in NUMERIC_KINDS


@dataclass
class Choice:
    """The variables of a call: what is differentiated, what is left out and why.

    Attributes
    ----------
    chosen
        ``(key, label, named)`` per variable: ``key`` for ``obj[key]`` (``None``: the DataArray
        itself), its label in output names, and whether the user named it.
    left_out
        The data variables not chosen by default, with the reason (:mod:`daskgrad.roles`).
    notes
        One line per named variable that the default would have left out.
    """

    chosen: list[tuple[Hashable | None, Hashable, bool]]
    left_out: dict[Hashable, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def choose_variables(obj: XarrayObject, variables: Any, *, mask: Hashable | None = None) -> Choice:
    """The variables to differentiate: ``variables`` as named, or the CF-aware default.

    The default is every numeric data variable that :func:`daskgrad.roles.left_out_by_default`
    does not leave out, and not ``mask`` (the name of the variable used as the mask).
    """
    if isinstance(obj, xr.DataArray):
        if variables is not None:
            raise OptionError(
                "variables",
                f"variables is for Datasets; a DataArray is differentiated itself, so leave "
                f"variables=None (got {variables!r})",
            )
        label = obj.name if obj.name is not None else UNNAMED
        if not _is_numeric(obj):
            raise OptionError(
                "variables",
                f"the DataArray {label!r} has dtype {obj.dtype}; the accessor differentiates "
                "integer, float and complex data",
            )
        return Choice([(None, label, True)])
    available = list(obj.data_vars)
    roles = left_out_by_default(obj)
    if mask is not None and mask in obj.data_vars:
        roles = {mask: "the mask", **{k: v for k, v in roles.items() if k != mask}}
    if variables is None:
        chosen = [(k, k, False) for k in available if k not in roles]
        if not chosen:
            if any(_is_numeric(obj[k]) for k in available):
                reasons = ", ".join(f"{k!r} ({why})" for k, why in roles.items())
                raise OptionError(
                    "variables",
                    f"every data variable of the Dataset is left out by default: {reasons}; "
                    "name the ones to differentiate in variables",
                )
            raise OptionError(
                "variables",
                f"the Dataset has no numeric data variable to differentiate (data variables: "
                f"{available}); integer, float and complex variables are differentiated",
            )
        return Choice(chosen, {k: v for k, v in roles.items() if k in obj.data_vars})
    if isinstance(variables, str) or (
        not isinstance(variables, (list, tuple)) and is_member(variables, obj.data_vars)
    ):
        names = [variables]
    else:
        names = variables
    if not isinstance(names, (list, tuple)) or not names:
        raise OptionError(
            "variables",
            f"variables must be None, a variable name or a non-empty list of names; got "
            f"{variables!r}",
        )
    if len(set(names)) != len(names):
        raise OptionError("variables", f"variables={variables!r} names a variable more than once")
    notes = []
    for v in names:
        if v not in obj.data_vars:
            where = " (it is a coordinate)" if v in obj.coords else ""
            raise OptionError(
                "variables",
                f"variables: {v!r} is not a data variable of the Dataset{where}; the data "
                f"variables are {available}",
            )
        if not _is_numeric(obj[v]):
            raise OptionError(
                "variables",
                f"variables: {v!r} has dtype {obj[v].dtype}; the accessor differentiates "
                "integer, float and complex variables",
            )
        if v in roles:
            notes.append(
                f"variables: {v!r} is {roles[v]}, which is not differentiated by default; "
                "differentiated as named"
            )
    return Choice([(v, v, True) for v in names], {}, notes)


def requested_dims(obj: XarrayObject, dim: Any, chosen: Sequence[xr.DataArray]) -> list[Hashable]:
    all_dims = list(obj.dims)
    if dim is None:
        seen: dict[Hashable, None] = {}
        for x in chosen:
            seen.update(dict.fromkeys(x.dims))
        return list(seen)
    if isinstance(dim, str) or (not isinstance(dim, (list, tuple)) and is_member(dim, obj.dims)):
        dims = [dim]
    elif isinstance(dim, (list, tuple)):
        dims = list(dim)
    else:
        raise OptionError(
            "dim", f"dim must be None, a dim name or a list of dim names; got {dim!r}"
        )
    if not dims:
        raise OptionError("dim", "dim is an empty list; give dim names, or None for every dim")
    for d in dims:
        if d not in obj.dims:
            raise OptionError(
                "dim", f"dim {d!r} is not a dim of the {kind_of(obj)}; its dims are {all_dims}"
            )
    if len(set(dims)) != len(dims):
        raise OptionError("dim", f"dim={dim!r} names a dim more than once")
    have = {d for x in chosen for d in x.dims}
    for d in dims:
        if d not in have:
            raise OptionError(
                "dim",
                f"dim {d!r} is in none of the chosen variables "
                f"{[x.name for x in chosen]}; their dims are {sorted(have, key=str)}",
            )
    return dims


def periodic_map(obj: XarrayObject, periodic: Any, dims: Sequence[Hashable]) -> dict[Hashable, Any]:
    if periodic is None:
        return {}
    if isinstance(periodic, Mapping):
        mapping = dict(periodic)
    elif isinstance(periodic, str) or (
        not isinstance(periodic, (list, tuple, set, frozenset)) and is_member(periodic, obj.dims)
    ):
        mapping = {periodic: None}
    elif isinstance(periodic, (list, tuple, set, frozenset)):
        mapping = dict.fromkeys(periodic)
    else:
        raise OptionError(
            "periodic",
            "periodic must be None, a dim name, a list of dim names or a dict {dim: period}; "
            f"got {periodic!r}",
        )
    for d in mapping:
        if d not in obj.dims:
            raise OptionError(
                "periodic",
                f"periodic dim {d!r} is not a dim of the {kind_of(obj)}; its dims are {list(obj.dims)}",
            )
        if d not in dims:
            raise OptionError(
                "periodic",
                f"periodic dim {d!r} is not among the differentiated dims {list(dims)}; add it "
                "to dim or drop it from periodic",
            )
    return mapping
