"""CF metadata of the derived fields: divergence, vorticity, Laplacian and advection.

Pure functions on attribute mappings, like :mod:`daskgrad.cf` (whose unit algebra they use):

* ``standard_name``: CF names the divergence and the relative vorticity of the wind
  (``divergence_of_wind``, ``atmosphere_relative_vorticity``) and of sea water velocity
  (``divergence_of_sea_water_velocity``, ``ocean_relative_vorticity``); they are given where
  the standard names of ``u`` and ``v`` say which it is (``eastward_wind``/``northward_wind``,
  ``x_wind``/``y_wind``, ``eastward_sea_water_velocity``, ``sea_water_x_velocity``, ...). CF
  has no standard name for a Laplacian or a horizontal advection, so none is made up.
* ``units`` (UDUNITS, simplified): ``<u units> m-1`` for divergence and vorticity (``s-1`` for a
  wind in ``m s-1``), ``<f units> m-2`` for a Laplacian, ``<f units> <u units> m-1`` for an
  advection (``K s-1``). Without geometry the coordinates' units replace ``m`` when both dims
  have the same units; otherwise (or where the inputs' units are unknown or differ between
  ``u`` and ``v``) no ``units`` is written.
* ``long_name`` and a ``history`` line naming the discrete form.

Examples
--------
>>> from datetime import datetime, timezone
>>> wind = {"units": "m s-1", "standard_name": "eastward_wind"}
>>> attrs = derived_attrs("vorticity", wind, {"units": "m s-1", "standard_name": "northward_wind"},
...                       None, "m", u="u10", v="v10", form="flux form on the sphere",
...                       now=datetime(2026, 12, 3, tzinfo=timezone.utc))
>>> attrs["standard_name"], attrs["units"], attrs["long_name"]
('atmosphere_relative_vorticity', 's-1', 'relative vorticity of (u10, v10)')
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import Any

from daskgrad.cf import append_history, derivative_units, history_line

__all__ = ["derived_attrs", "derived_name", "flow_of"]

# The standard names of (u, v) pairs, by the medium they describe.
_WIND = (
    {"eastward_wind", "x_wind", "grid_eastward_wind"},
    {"northward_wind", "y_wind", "grid_northward_wind"},
)
_SEA = (
    {
        "eastward_sea_water_velocity", "sea_water_x_velocity",
        "surface_eastward_sea_water_velocity", "baroclinic_eastward_sea_water_velocity",
        "barotropic_eastward_sea_water_velocity", "eastward_sea_water_velocity_assuming_no_tide",
        "surface_geostrophic_eastward_sea_water_velocity",
    },
    {
        "northward_sea_water_velocity", "sea_water_y_velocity",
        "surface_northward_sea_water_velocity", "baroclinic_northward_sea_water_velocity",
        "barotropic_northward_sea_water_velocity",
        "northward_sea_water_velocity_assuming_no_tide",
        "surface_geostrophic_northward_sea_water_velocity",
    },
)  # fmt: skip
_NAMES = {
    ("divergence", "wind"): "divergence_of_wind",
    ("divergence", "sea"): "divergence_of_sea_water_velocity",
    ("vorticity", "wind"): "atmosphere_relative_vorticity",
    ("vorticity", "sea"): "ocean_relative_vorticity",
}


def flow_of(u_attrs: Mapping[str, Any], v_attrs: Mapping[str, Any]) -> str | None:
    """``"wind"``, ``"sea"`` or ``None``: what the standard names of ``u`` and ``v`` say.

    Examples
    --------
    >>> flow_of({"standard_name": "sea_water_x_velocity"}, {"standard_name": "sea_water_y_velocity"})
    'sea'
    >>> flow_of({"standard_name": "eastward_wind"}, {}) is None
    True
    """
    us, vs = u_attrs.get("standard_name"), v_attrs.get("standard_name")
    for flow, (east, north) in (("wind", _WIND), ("sea", _SEA)):
        if us in east and vs in north:
            return flow
    return None


def derived_name(operator: str, var: Hashable | None = None) -> str:
    """The output name of a derived field: ``divergence``, ``vorticity``, ``laplacian_<var>``,
    ``advection_<var>``.

    Examples
    --------
    >>> derived_name("divergence"), derived_name("laplacian", "t2m")
    ('divergence', 'laplacian_t2m')
    """
    if operator in ("divergence", "vorticity"):
        return operator
    return f"{operator}_{var}"


def _power(units: Any, exponent: int) -> str | None:
    if units is None or str(units).strip() == "":
        return None
    return f"({units}){exponent}" if exponent != 1 else str(units)


def derived_attrs(
    operator: str,
    u_attrs: Mapping[str, Any] | None,
    v_attrs: Mapping[str, Any] | None,
    f_attrs: Mapping[str, Any] | None,
    length_units: str | None,
    *,
    u: Hashable | None = None,
    v: Hashable | None = None,
    var: Hashable | None = None,
    form: str = "",
    edge_order: int = 1,
    now: datetime | None = None,
) -> dict[str, str]:
    """The CF attributes of one derived field.

    Parameters
    ----------
    operator
        ``divergence``, ``vorticity``, ``laplacian`` or ``advection``.
    u_attrs, v_attrs
        The attributes of the vector's components (``None`` for a Laplacian).
    f_attrs
        The attributes of the scalar (Laplacian, advection), else ``None``.
    length_units
        The units of distance: ``"m"`` on a sphere; without geometry the coordinates' units
        (``None`` when unknown or not the same along both dims).
    u, v, var
        The names, for ``long_name`` and ``history``.
    form, edge_order, now
        Recorded in the ``history`` line.
    """
    u_attrs, v_attrs, f_attrs = u_attrs or {}, v_attrs or {}, f_attrs or {}
    same = u_attrs.get("units") == v_attrs.get("units")
    u_units = u_attrs.get("units") if same else None
    if operator == "divergence":
        long_name = f"divergence of ({u}, {v})"
        units = derivative_units(u_units, length_units)
    elif operator == "vorticity":
        long_name = f"relative vorticity of ({u}, {v})"
        units = derivative_units(u_units, length_units)
    elif operator == "laplacian":
        long_name = f"Laplacian of {var}"
        units = derivative_units(f_attrs.get("units"), _power(length_units, 2))
    elif operator == "advection":
        long_name = f"advection of {var} by ({u}, {v})"
        f_units = f_attrs.get("units")
        both = (
            None if f_units in (None, "") or u_units in (None, "") else f"({f_units}) ({u_units})"
        )
        units = derivative_units(both, length_units)
    else:
        raise ValueError(f"operator: got {operator!r}")
    attrs = {"long_name": long_name}
    if units is not None:
        attrs["units"] = units
    flow = flow_of(u_attrs, v_attrs) if operator in ("divergence", "vorticity") else None
    if flow is not None:
        attrs["standard_name"] = _NAMES[operator, flow]
    what = f"{long_name} ({form + ', ' if form else ''}edge_order={edge_order})"
    previous = (f_attrs if operator in ("laplacian", "advection") else u_attrs).get("history")
    attrs["history"] = append_history(previous, history_line(what, now=now))
    return attrs
