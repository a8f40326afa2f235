"""What a plan is: the records :func:`daskgrad.plan.plan_gradients` decides, before any data.

A :class:`GradientPlan` holds every output (:class:`GradientField`) and, per input variable, a
:class:`VariablePlan`: the engine's spacing records, the curvilinear grid
(:class:`CurvilinearPart`) and the mask (:class:`~daskgrad.masks.MaskPart`). Everything needed
to compute one block of a variable's outputs is here, so a driver can build each block's tasks
from the plan and the variable's data alone:

1. read the block, widened by its halo along :attr:`VariablePlan.halo_axes` (depth
   ``edge_order`` for ``nan_policy="one-sided"``);
2. where :attr:`VariablePlan.mask` is set, ``daskgrad.core.mask.apply_mask(values,
   mask.block(region))`` over the same widened region;
3. differentiate with :attr:`VariablePlan.axis_spacings` and :attr:`VariablePlan.nan_policy`
   (``daskgrad.core``), the curvilinear fields with :attr:`CurvilinearPart.lat_coord` and
   ``lon_coord`` over the grid dims;
4. apply the metric of each field's :attr:`GradientField.role` (``1/R`` for ``"lat"``,
   ``1/(R cos lat)`` along :attr:`VariablePlan.axes`' latitude for ``"lon"``).

Examples
--------
>>> import numpy as np, xarray as xr
>>> from daskgrad.plan import plan_gradients
>>> ds = xr.Dataset({"T": (("y", "x"), np.ones((3, 4)))},
...                 coords={"m": (("y", "x"), np.eye(3, 4, dtype=bool))})
>>> vp = plan_gradients(ds, GradientOptions(mask="m")).variables[0]
>>> vp.key, vp.mask.name, vp.nan_policy, [f.name for f in vp.fields]
('T', 'm', 'one-sided', ['dT_dy', 'dT_dx'])
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Literal

import xarray as xr

from daskgrad.coords import DimSpacing
from daskgrad.core.options import Geometry, GradientOptions
from daskgrad.core.spacing import AxisSpacing
from daskgrad.geometry import CurvilinearAxes, SphericalAxes
from daskgrad.masks import MaskPart

__all__ = [
    "CurvilinearPart",
    "FieldRole",
    "GradientField",
    "GradientOptions",
    "GradientPlan",
    "MaskPart",
    "VariablePlan",
]


XarrayObject = xr.DataArray | xr.Dataset
Role = Literal["lat", "lon"]
#: How a field is computed: ``None`` along a plain dim; ``"lat"``/``"lon"`` on a 1-D spherical
#: grid; on a curvilinear grid ``"grid"`` (along a grid dim, per metre) or ``"east"``/``"north"``.
FieldRole = Literal["lat", "lon", "grid", "east", "north"] | None


@dataclass(frozen=True)
class GradientField:
    """One output field: ``d var / d dim``.

    Attributes
    ----------
    name
        The output variable name.
    var
        The input variable name (``"var"`` for an unnamed DataArray).
    dim
        The dim differentiated along.
    spacing
        The dim's coordinate numbers, units and period (radians for spherical lat/lon);
        ``None`` for a curvilinear grid's fields, whose spacing is the grid's geometry.
    role
        See :data:`FieldRole`.
    attrs
        The output's CF attributes (``long_name``, ``history`` and, when known, ``units``
        and ``standard_name``; see :mod:`daskgrad.cf`).
    """

    name: Hashable
    var: Hashable
    dim: Hashable
    spacing: DimSpacing | None
    role: FieldRole
    attrs: dict[str, str]


@dataclass(frozen=True)
class CurvilinearPart:
    """The fields of one variable on a curvilinear grid (:mod:`daskgrad.core.curvilinear`).

    Attributes
    ----------
    lat, lon
        The coordinates' names (of the input, or merged from the ``grid`` dataset).
    grid_dims
        The two grid dims, in the coordinates' order.
    axes
        The variable's axes of ``grid_dims``.
    periodic
        The variable's grid axes that wrap around.
    components
        ``"grid"`` or ``"geographic"``.
    edge_order
        1 or 2.
    lat_coord, lon_coord
        The 2-D latitude and longitude over ``grid_dims`` (degrees; numpy or dask), as the
        engine takes them: a coordinate with a time dim (WRF's ``XLAT(Time, ...)``) already
        reduced to its one time (:func:`daskgrad.grids.fixed_in_time`; for dask, the check
        that it does not move runs in the graph).
    """

    lat: Hashable
    lon: Hashable
    grid_dims: tuple[Hashable, Hashable]
    axes: tuple[int, int]
    periodic: tuple[int, ...]
    components: str
    edge_order: int
    lat_coord: xr.DataArray | None = field(default=None, repr=False, compare=False)
    lon_coord: xr.DataArray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class VariablePlan:
    """What one input variable gives: its fields and everything needed to compute them.

    Attributes
    ----------
    key
        ``obj[key]`` is the variable (``None``: the DataArray itself).
    fields
        Its outputs, in order.
    axis_spacings
        The engine's spacing records, for the fields whose role is ``None``, ``"lat"`` or
        ``"lon"`` (in that order).
    curvilinear
        For its fields on a curvilinear grid (else ``None``).
    mask
        Its mask (else ``None``): applied to the values block by block with
        :func:`daskgrad.core.mask.apply_mask` before they are differentiated.
    nan_policy
        The policy its differences run with: ``"one-sided"`` where it has a mask, else the
        call's.
    axes
        Its latitude/longitude for spherical geometry (else ``None``).
    """

    key: Hashable | None  # None: the DataArray itself
    fields: tuple[GradientField, ...]
    axis_spacings: tuple[AxisSpacing, ...]  # for the fields whose role is None, "lat" or "lon"
    curvilinear: CurvilinearPart | None = None
    mask: MaskPart | None = None
    nan_policy: str = "propagate"
    axes: SphericalAxes | CurvilinearAxes | None = None

    @property
    def halo_axes(self) -> tuple[int, ...]:
        """The variable's axes whose neighbours every block needs (one point deep)."""
        axes = [s.axis for s in self.axis_spacings]
        if self.curvilinear is not None:
            axes += [a for a in self.curvilinear.axes if a not in axes]
        return tuple(axes)

    @property
    def periodic_axes(self) -> tuple[int, ...]:
        """The axes among :attr:`halo_axes` that wrap around."""
        axes = [s.axis for s in self.axis_spacings if s.periodic]
        if self.curvilinear is not None:
            axes += list(self.curvilinear.periodic)
        return tuple(axes)


@dataclass(frozen=True)
class GradientPlan:
    """Every output of one call, decided and checked before any data is read.

    Attributes
    ----------
    fields
        The outputs in order: by variable, then by requested dim.
    geometry
        ``"spherical"`` or ``None``.
    radius
        Sphere radius in metres.
    nan_policy
        ``"propagate"`` or ``"one-sided"`` (:class:`~daskgrad.core.options.GradientOptions`);
        a variable with a mask runs ``"one-sided"`` (:attr:`VariablePlan.nan_policy`).
    axes
        The latitude/longitude coordinates found for spherical geometry, of the first variable
        that has them (else ``None``); each variable's own are :attr:`VariablePlan.axes`.
    variables
        Per input variable, its :class:`VariablePlan`: fields, spacing records, curvilinear
        grid, mask.
    left_out
        The data variables not differentiated, with the reason (:mod:`daskgrad.roles`; the
        mask; none of the requested dims).
    notes
        Lines worth telling the user (a named variable the default leaves out; a variable
        ``mask="auto"`` found no mask for although it shares dims with one).
    """

    fields: tuple[GradientField, ...]
    geometry: Geometry
    radius: float
    axes: SphericalAxes | CurvilinearAxes | None
    variables: tuple[VariablePlan, ...]
    nan_policy: str = "propagate"
    left_out: dict[Hashable, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def names(self) -> list[Hashable]:
        """The output variable names, in order."""
        return [f.name for f in self.fields]
