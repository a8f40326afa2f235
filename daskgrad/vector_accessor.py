"""The accessor's operators: ``ds.grad.divergence``, ``vorticity``, ``laplacian``, ``advection``.

A mixin of :class:`daskgrad.accessor.GradAccessor`: each method takes the options of
``compute`` that apply to it (their keyword arguments are generated from
:class:`~daskgrad.core.options.GradientOptions`, as the accessor's are) and hands the call to
:func:`daskgrad.operators.operator_field`. Each returns one lazy ``xarray.DataArray``
(numpy-backed where the input is), with the input's dims and coordinates and CF attributes.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import xarray as xr

from daskgrad.core.options import Dims, GradientOptions
from daskgrad.operators import OPERATOR_OPTIONS, operator_field

__all__ = ["OperatorMethods"]

_Method = TypeVar("_Method", bound=Callable[..., Any])

_COMPONENTS_DOC = """components
    On a curvilinear grid, what ``u`` and ``v`` are: ``"geographic"`` (eastward and
    northward) or ``"grid"`` (along the grid's x and y lines, as ocean models write them;
    turned east and north first). ``None`` (default): read from their standard names
    (``eastward_*``/``northward_*``, ``x_*``/``y_*``), else an error. Ignored on a regular
    latitude/longitude grid, where both are the same."""


def _attribute_docs() -> dict[str, str]:
    """The Attributes section of :class:`GradientOptions`, entry by entry."""
    doc = inspect.getdoc(GradientOptions) or ""
    found = re.search(r"Attributes\n-+\n(.*?)\n\n(?:Examples|$)", doc, re.S)
    entries: dict[str, list[str]] = {}
    name = None
    for line in (found.group(1) if found else "").splitlines():
        if line and not line.startswith(" "):
            name = line.strip()
            entries[name] = [line]
        elif name is not None:
            entries[name].append(line)
    return {k: "\n".join(v) for k, v in entries.items()}


def _takes(options: Sequence[str]) -> Callable[[_Method], _Method]:
    """Give the method ``options`` as keyword-only arguments (defaults of GradientOptions;
    ``components`` defaults to ``None``) and their documentation in place of ``{options}``."""

    def decorate(method: _Method) -> _Method:
        sig = inspect.signature(method)
        hints = {f.name: f.type for f in dataclasses.fields(GradientOptions)}
        defaults = {f.name: f.default for f in dataclasses.fields(GradientOptions)}
        defaults["components"] = None
        params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        keyword = [
            inspect.Parameter(k, inspect.Parameter.KEYWORD_ONLY, default=defaults[k],
                              annotation=hints[k])
            for k in options
        ]  # fmt: skip
        method.__signature__ = sig.replace(parameters=[*params, *keyword])  # type: ignore[attr-defined]
        docs = _attribute_docs()
        docs["components"] = _COMPONENTS_DOC
        text = "\n".join(docs[k] for k in options if k in docs)
        body = "\n".join("        " + line if line else "" for line in text.splitlines())
        if method.__doc__:
            method.__doc__ = method.__doc__.replace("{options}", body.strip())
        method._options = tuple(options)  # type: ignore[attr-defined]
        return method

    return decorate


_VECTOR = OPERATOR_OPTIONS
_SCALAR = tuple(k for k in OPERATOR_OPTIONS if k != "components")


def _check(method: Callable[..., Any], keywords: dict[str, Any]) -> dict[str, Any]:
    allowed = method._options  # type: ignore[attr-defined]
    for key in keywords:
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise TypeError(f"{method.__name__}() got an unexpected keyword argument {key!r}{hint}")
    return keywords


class OperatorMethods:
    """The operators of the ``grad`` accessor (see :mod:`daskgrad.operators` for the formulas)."""

    _obj: Any

    @_takes(_VECTOR)
    def divergence(
        self, u: Any = "u", v: Any = "v", dim: Dims = None, **options: Any
    ) -> xr.DataArray:
        """The horizontal divergence of the vector ``(u, v)``, lazily.

        No geometry: ``du/dx + dv/dy`` along ``dim=[x, y]`` (default: the last two dims of
        ``u``, x last). ``geometry="spherical"``: ``1/(a cos(lat)) (du/dlon + d(v cos(lat))/dlat)``
        on the latitude/longitude dims, in flux form; on a curvilinear grid through its
        Jacobian. Units ``<u units> m-1`` (``s-1`` for a wind in ``m s-1``); standard name
        ``divergence_of_wind`` or ``divergence_of_sea_water_velocity`` where the standard names
        of ``u`` and ``v`` say which.

        Parameters
        ----------
        u, v
            The names of the vector's eastward (x) and northward (y) components, data
            variables on the same points.
        dim
            Without geometry, the two dims ``[x, y]``; on a sphere or a curvilinear grid leave
            it out (or name its dims, x first).
        {options}

        Returns
        -------
        xarray.DataArray
            Named ``divergence``, with ``u``'s dims, coordinates and chunks.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> import daskgrad
        >>> x = np.arange(5.0)
        >>> ds = xr.Dataset({"u": (("y", "x"), np.tile(2 * x, (3, 1))),
        ...                  "v": (("y", "x"), np.zeros((3, 5)))}, coords={"x": x})
        >>> ds.chunk({"x": 2}).grad.divergence(u="u", v="v").values[0]
        array([2., 2., 2., 2., 2.])
        """
        keywords = _check(OperatorMethods.divergence, options)
        return operator_field(self._obj, "divergence", dim=dim, u=u, v=v, keywords=keywords)

    @_takes(_VECTOR)
    def vorticity(
        self, u: Any = "u", v: Any = "v", dim: Dims = None, **options: Any
    ) -> xr.DataArray:
        """The relative vorticity (vertical component of the curl) of ``(u, v)``, lazily.

        No geometry: ``dv/dx - du/dy`` along ``dim=[x, y]`` (default: the last two dims of
        ``u``). ``geometry="spherical"``: ``1/(a cos(lat)) (dv/dlon - d(u cos(lat))/dlat)``, in
        flux form; on a curvilinear grid through its Jacobian. Units ``<u units> m-1``;
        standard name ``atmosphere_relative_vorticity`` or ``ocean_relative_vorticity`` where
        the inputs' standard names say which. Arguments as in :meth:`divergence`.

        Parameters
        ----------
        u, v
            The names of the vector's components.
        dim
            Without geometry, ``[x, y]``.
        {options}

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> import daskgrad
        >>> y = np.arange(4.0)
        >>> ds = xr.Dataset({"u": (("y", "x"), np.repeat(-y[:, None], 3, 1)),
        ...                  "v": (("y", "x"), np.zeros((4, 3)))}, coords={"y": y})
        >>> ds.grad.vorticity().values[:, 0]
        array([1., 1., 1., 1.])
        """
        keywords = _check(OperatorMethods.vorticity, options)
        return operator_field(self._obj, "vorticity", dim=dim, u=u, v=v, keywords=keywords)

    @_takes(_SCALAR)
    def laplacian(self, var: Any = None, dim: Dims = None, **options: Any) -> xr.DataArray:
        """The Laplacian of ``var``: the divergence of its gradient, lazily.

        No geometry: the sum of the second derivatives along ``dim`` (default: every dim of
        the variable). ``geometry="spherical"``: ``1/(a^2 cos(lat)) d/dlat(cos(lat) df/dlat)
        + 1/(a^2 cos^2(lat)) d2f/dlon2`` on the latitude/longitude dims (a curvilinear grid's
        through its Jacobian), as the divergence of the gradient's own fields. Units
        ``<var units> m-2``.

        Parameters
        ----------
        var
            The variable (a Dataset's data variable; leave it out for a DataArray).
        dim
            The dims (no geometry); on a sphere leave it out.
        {options}

        Returns
        -------
        xarray.DataArray
            Named ``laplacian_<var>``.

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> import daskgrad
        >>> x = np.arange(6.0)
        >>> f = xr.DataArray(x**2, dims="x", coords={"x": x}, name="f")
        >>> f.grad.laplacian().values
        array([1. , 1.5, 2. , 2. , 1.5, 1. ])
        """
        keywords = _check(OperatorMethods.laplacian, options)
        return operator_field(self._obj, "laplacian", dim=dim, var=var, keywords=keywords)

    @_takes(_VECTOR)
    def advection(
        self, var: Any = None, u: Any = "u", v: Any = "v", dim: Dims = None, **options: Any
    ) -> xr.DataArray:
        """The horizontal advection of ``var`` by ``(u, v)``: ``-(u df/dx + v df/dy)``, lazily.

        The sign is MetPy's (positive where the flow brings larger values); ``df/dx`` and
        ``df/dy`` are the gradient's own fields (per metre on a sphere). Units
        ``<var units> <u units> m-1`` (``K s-1``).

        Parameters
        ----------
        var
            The scalar (a data variable on the same points as ``u`` and ``v``).
        u, v
            The vector's components.
        dim
            Without geometry, ``[x, y]``.
        {options}

        Examples
        --------
        >>> import numpy as np, xarray as xr
        >>> import daskgrad
        >>> x = np.arange(4.0)
        >>> ds = xr.Dataset({"T": (("y", "x"), np.tile(x, (2, 1))), "u": (("y", "x"), np.ones((2, 4))),
        ...                  "v": (("y", "x"), np.ones((2, 4)))}, coords={"x": x})
        >>> ds.grad.advection("T").values[0]
        array([-1., -1., -1., -1.])
        """
        keywords = _check(OperatorMethods.advection, options)
        return operator_field(self._obj, "advection", dim=dim, u=u, v=v, var=var, keywords=keywords)
