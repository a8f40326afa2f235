"""The derived fields' keys of the ``gradient`` section: ``derived``, ``vector``, ``gradients``.

Examples
--------
>>> VectorConfig(u="u10", v="v10").components is None
True
>>> check_derived(["vorticity"], None, True)
Traceback (most recent call last):
...
pydantic_core._pydantic_core.PydanticCustomError: vorticity need gradient.vector: {u: <variable>, v: <variable>}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from daskgrad.batch.config.errors import _fail, _show
from daskgrad.core.options import Components

__all__ = ["Derived", "VectorConfig", "check_derived"]

_FROZEN = ConfigDict(extra="forbid", strict=True, frozen=True)

#: The derived fields ``gradient.derived`` may list (:data:`daskgrad.vector_plan.OPERATORS`).
Derived = Literal["divergence", "vorticity", "laplacian", "advection"]


class VectorConfig(BaseModel):
    """The vector of the derived fields (``gradient.vector``).

    Attributes
    ----------
    u, v : str
        The data variables of its eastward (x) and northward (y) components.
    dims : list of str or None
        Without geometry, the dims ``[x, y]`` they run along (default: the last two of ``u``).
    components : {'grid', 'geographic'} or None
        On a curvilinear grid, whether ``u`` and ``v`` point along the grid's x and y lines or
        east and north (default: from their standard names).
    """

    model_config = _FROZEN

    u: str = Field(description="the eastward (x) component")
    v: str = Field(description="the northward (y) component")
    dims: list[str] | None = Field(default=None, description="no geometry: [x, y]")
    components: Components | None = Field(
        default=None, description="curvilinear grids: grid | geographic (default: standard names)"
    )

    @field_validator("dims")
    @classmethod
    def _two(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (len(value) != 2 or value[0] == value[1]):
            _fail(f"must name two dims, x then y; got {_show(value)}")
        return value

    @model_validator(mode="after")
    def _different(self) -> VectorConfig:
        if self.u == self.v:
            _fail(f"u and v name the same variable {_show(self.u)}", field="v")
        return self


def check_derived(derived: list[str] | None, vector: VectorConfig | None, gradients: bool) -> None:
    """The rules between ``gradient.derived``, ``gradient.vector`` and ``gradient.gradients``."""
    names = derived or []
    if derived is not None:
        if not names:
            _fail("must list some of divergence, vorticity, laplacian, advection, or be left out",
                  field="derived")  # fmt: skip
        if len(set(names)) != len(names):
            _fail(f"lists an operator twice: {_show(names)}", field="derived")
    wanting = [d for d in names if d != "laplacian"]
    if wanting and vector is None:
        _fail(
            f"{' and '.join(wanting)} need gradient.vector: {{u: <variable>, v: <variable>}}",
            field="derived",
        )
    if vector is not None and not names:
        _fail("is used by gradient.derived, which is not given", field="vector")
    if not gradients and not names:
        _fail("false leaves nothing to write without gradient.derived", field="gradients")
