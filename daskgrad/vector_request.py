"""A call that asks for gradients and derived fields together: ``derived=``, ``vector=``,
``gradients=`` of ``ds.grad.lazy``/``compute``/``to_zarr``, and a batch run's
``gradient.derived``/``gradient.vector``/``gradient.gradients``.

:func:`plan_with_derived` plans both (:func:`daskgrad.plan.plan_gradients` and
:func:`daskgrad.vector_plan.plan_derived`) and checks them against each other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import xarray as xr

from daskgrad.core.options import GradientOptions, OptionError, check_components
from daskgrad.plan import GradientPlan, plan_gradients
from daskgrad.vector_plan import VECTOR_OPERATORS, DerivedPlan, check_operators, plan_derived

__all__ = ["VectorSpec", "plan_with_derived", "vector_spec"]

XarrayObject = xr.DataArray | xr.Dataset


@dataclass(frozen=True)
class VectorSpec:
    """The ``vector`` argument of a call with ``derived`` (YAML ``gradient.vector``).

    Attributes
    ----------
    u, v
        The components' variable names.
    dims
        Without geometry, the dims ``[x, y]`` they run along (default: the last two of ``u``).
    components
        On a curvilinear grid, ``"geographic"`` or ``"grid"`` (default: from their standard
        names).
    """

    u: Hashable
    v: Hashable
    dims: tuple[Hashable, Hashable] | None = None
    components: str | None = None


_VECTOR_KEYS = ("u", "v", "dims", "components")


def vector_spec(vector: Any) -> VectorSpec | None:
    """``vector`` (``None`` or a mapping with ``u``, ``v`` and optionally ``dims`` and
    ``components``) checked.

    Examples
    --------
    >>> vector_spec({"u": "u10", "v": "v10"})
    VectorSpec(u='u10', v='v10', dims=None, components=None)
    >>> vector_spec({"u": "u10"})
    Traceback (most recent call last):
    ...
    daskgrad.core.options.OptionError: vector must be a mapping with the keys u and v (and optionally dims, components); got {'u': 'u10'}
    """
    if vector is None:
        return None
    if isinstance(vector, VectorSpec):
        return vector
    if (
        not isinstance(vector, dict)
        or "u" not in vector
        or "v" not in vector
        or any(k not in _VECTOR_KEYS for k in vector)
    ):
        raise OptionError(
            "vector",
            "vector must be a mapping with the keys u and v (and optionally dims, components); "
            f"got {vector!r}",
        )
    dims = vector.get("dims")
    if dims is not None and (not isinstance(dims, (list, tuple)) or len(dims) != 2):
        raise OptionError("vector", f"vector.dims must be two dims [x, y]; got {dims!r}")
    components = vector.get("components")
    if components is not None:
        try:
            check_components(components)
        except OptionError as err:
            raise OptionError("vector", f"vector.{err}") from None
    return VectorSpec(
        vector["u"], vector["v"], None if dims is None else (dims[0], dims[1]), components
    )


def plan_with_derived(
    obj: XarrayObject, options: GradientOptions, derived: Any, vector: Any, gradients: bool
) -> tuple[GradientPlan | None, DerivedPlan]:
    """The plans of a call that asks for gradients and derived fields together
    (``ds.grad.lazy(derived=..., vector=...)``, a batch run's ``gradient.derived``).

    ``obj`` has ``options.grid`` merged. The gradients follow ``options`` (``None`` for
    ``gradients=False``); the derived fields run over the horizontal dims (the geometry's, or
    ``vector["dims"]`` without geometry; a Laplacian alone without geometry takes
    ``options.dim``); a Laplacian and an advection apply to each chosen variable
    (``options.variables``, or the default choice less those that do not fit).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({k: (("y", "x"), np.zeros((3, 4))) for k in ("u", "v", "T")})
    >>> g, d = plan_with_derived(ds, GradientOptions(), ["vorticity", "laplacian"],
    ...                          {"u": "u", "v": "v"}, False)
    >>> g, d.names
    (None, ['vorticity', 'laplacian_u', 'laplacian_v', 'laplacian_T'])
    """
    from daskgrad.arguments import choose_variables

    if derived is None:
        raise OptionError(
            "gradients", "gradients=False leaves nothing to compute: ask for derived fields too"
        )
    if not isinstance(gradients, bool):
        raise OptionError("gradients", f"gradients must be True or False; got {gradients!r}")
    ops = check_operators(derived)
    spec = vector_spec(vector)
    wanting = [o for o in ops if o in VECTOR_OPERATORS]
    if wanting and spec is None:
        raise OptionError(
            "vector",
            f"{' and '.join(wanting)} need the vector: vector={{'u': <name>, 'v': <name>}}",
        )
    gplan = plan_gradients(obj, options) if gradients else None
    scalars: list[Any] = []
    if any(o in ("laplacian", "advection") for o in ops):
        named = options.mask if isinstance(options.mask, str) and options.mask != "auto" else None
        scalars = [k for k, _, _ in choose_variables(obj, options.variables, mask=named).chosen]
    dim: Any
    if options.geometry is not None:
        dim = None
    elif spec is not None:
        dim = None if spec.dims is None else list(spec.dims)
    else:
        dim = options.dim
    try:
        dplan = plan_derived(
            obj,
            ops,
            u=None if spec is None else spec.u,
            v=None if spec is None else spec.v,
            scalars=scalars,
            options=dataclasses.replace(options, dim=dim),
            components=None if spec is None else spec.components,
            strict=options.variables is not None,
        )
    except OptionError as err:  # what the vector's own keys decide is named as theirs
        if err.argument == "components" or (err.argument == "dim" and spec and spec.dims):
            key = "components" if err.argument == "components" else "dims"
            raise OptionError("vector", f"vector.{key}: {err}") from None
        raise
    taken = set(gplan.names) if gplan is not None else set()
    for name in dplan.names:
        if name in taken:
            raise OptionError(
                "derived", f"the derived field {name!r} has the name of a gradient output"
            )
    return gplan, dplan
