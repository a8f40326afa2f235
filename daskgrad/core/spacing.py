"""Spacing: every user form of ``spacing`` turned, once, into one record per differentiated axis.

Nothing downstream re-inspects user input. The records hold exactly the numbers
``numpy.gradient`` would use (same values, same Python/NumPy scalar types, so the same dtype
promotion), computed once over the whole axis:

* the uniform-vs-non-uniform decision is numpy's: the differences of the whole coordinate are
  compared with the first one; it is never re-made per block;
* non-uniform interior weights ``a, b, c`` are numpy's three-point weights, evaluated once per
  axis with numpy's own expressions and later sliced per block;
* the one-sided edge coefficients are numpy's, for ``edge_order`` 1 and 2.

A periodic axis has no edges: its coordinate is extended by one point at each end,
``[x[-1] - period, *x, x[0] + period]``, and every point is treated as an interior point of that
extended axis. This equals ``numpy.gradient`` of the wrap-padded array, trimmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from daskgrad.core._compat import is_cupy_array, to_numpy
from daskgrad.core.options import OptionError

__all__ = [
    "AxisSpacing",
    "BlockSpacing",
    "EdgeRule",
    "LazyAxisSpacing",
    "axis_spacing",
    "normalize_spacing",
    "resolve_lazy_spacing",
]


@dataclass(frozen=True)
class EdgeRule:
    """A one-sided difference at a non-periodic end of an axis.

    ``kind == "two-point"``: ``(f[1] - f[0]) / coeffs[0]`` (or ``(f[-1] - f[-2]) / coeffs[0]``).
    ``kind == "three-point"``: ``a*f[0] + b*f[1] + c*f[2]`` with ``coeffs == (a, b, c)``, points
    taken in increasing index order (``f[-3], f[-2], f[-1]`` at the far end).
    """

    kind: Literal["two-point", "three-point"]
    coeffs: tuple[Any, ...]


@dataclass(frozen=True)
class BlockSpacing:
    """The part of an :class:`AxisSpacing` one block needs (small: safe to put in a task).

    Attributes
    ----------
    divisor
        Uniform axes: numpy's ``2. * step``. ``None`` for non-uniform axes.
    weights
        Non-uniform axes: numpy's three-point weights ``(a, b, c)`` for the block's own points,
        as 1-D host arrays of the block's length. ``None`` for uniform axes.
    first, last
        The edge rule to apply at the block's first (last) point when that point is the first
        (last) point of a non-periodic axis; otherwise ``None`` and the point is a central
        difference using the neighbouring block's face.
    """

    divisor: Any
    weights: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    first: EdgeRule | None
    last: EdgeRule | None


@dataclass(frozen=True)
class AxisSpacing:
    """numpy's spacing for one differentiated axis, decided once over the whole axis.

    Attributes
    ----------
    axis
        The (non-negative) axis of the values.
    size
        The axis length.
    periodic
        Whether central differences wrap around the ends.
    step
        Uniform axes: the step exactly as numpy holds it (a Python number or a NumPy scalar).
    weights
        Non-uniform axes: three-point weights ``(a, b, c)`` per point (length ``size``). On a
        non-periodic axis the first and last entries are unused placeholders.
    first, last
        Edge rules of a non-periodic axis (``None`` when periodic).
    label
        How error messages name the axis (``"dim 0"``, ``"dim 'x'"``).
    diffs, coord, period
        For a coordinate: its differences exactly as numpy takes them (on a periodic axis,
        those of the extended coordinate), the coordinate as given, and the period of a
        periodic axis; ``None`` for a scalar step.
    edge_order
        The edge order the axis was built for.

    ``diffs`` to ``edge_order`` serve ``nan_policy="one-sided"`` only: it decides uniformity
    run by run, and unwraps runs that cross a periodic seam.
    """

    axis: int
    size: int
    periodic: bool
    step: Any
    weights: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    first: EdgeRule | None
    last: EdgeRule | None
    label: str = ""
    diffs: np.ndarray | None = None
    coord: np.ndarray | None = None
    period: Any = None
    edge_order: int = 1

    @property
    def uniform(self) -> bool:
        """True when numpy would use the uniform formulas on this axis."""
        return self.weights is None

    @property
    def complex(self) -> bool:
        """True when the step or the coordinate is complex (numpy then computes in complex)."""
        return bool(np.iscomplexobj(self.step if self.weights is None else self.weights[0]))

    @property
    def three_point_edges(self) -> bool:
        """True when the ends use the three-point rule (``edge_order=2``, not periodic)."""
        return self.first is not None and self.first.kind == "three-point"

    def block(self, start: int, stop: int) -> BlockSpacing:
        """The spacing of the block covering points ``start:stop`` of this axis."""
        divisor = 2.0 * self.step if self.uniform else None
        weights = None
        if self.weights is not None:
            a, b, c = self.weights
            weights = (a[start:stop], b[start:stop], c[start:stop])
        return BlockSpacing(
            divisor=divisor,
            weights=weights,
            first=self.first if start == 0 else None,
            last=self.last if stop == self.size else None,
        )


def _check_scalar_step(step: Any, label: str) -> Any:
    """Refuse steps that can only give inf/NaN; return the step otherwise.

    A 0-d array becomes the numpy scalar of its dtype: numpy promotes both alike (strong), and
    the kernels key their operation dtypes on the step's type.
    """
    if isinstance(step, np.ndarray) or is_cupy_array(step) or _is_dask_array(step):
        step = to_numpy(step)[()]  # a dask step here belongs to numpy values: computed
    try:
        value = np.asarray(step)
        finite = bool(np.isfinite(value))
    except TypeError:
        raise TypeError(
            f"spacing for {label} must be a number or a 1-D coordinate array, got {step!r}"
        ) from None
    if value.dtype.kind not in "iufc":
        raise TypeError(
            f"spacing for {label} must be a number, got {step!r} of dtype {value.dtype}"
        )
    if not finite or value == 0:
        raise ValueError(f"spacing for {label} must be a finite, non-zero step, got {step!r}")
    return step


def _check_coordinate_dtype(dtype: np.dtype, label: str) -> None:
    """Refuse coordinates that are not numbers (integer, float or complex)."""
    if dtype.kind not in "iufc":
        raise TypeError(
            f"coordinate for {label} must hold numbers, got dtype {dtype}; "
            "convert datetimes to numbers first (the xarray accessor does this with datetime_unit)"
        )


def _coordinate_differences(coord: np.ndarray, label: str) -> np.ndarray:
    """numpy's ``diff`` of a validated coordinate (integers promoted to float64, as numpy does).

    Complex coordinates are differenced as they are, exactly as numpy does.
    """
    _check_coordinate_dtype(coord.dtype, label)
    bad = np.flatnonzero(~np.isfinite(coord)) if coord.dtype.kind in "fc" else np.array([], int)
    if bad.size:
        raise ValueError(
            f"coordinate for {label} must be finite, got {coord[bad[0]]} at index {bad[0]}"
        )
    if np.issubdtype(coord.dtype, np.integer):
        coord = coord.astype(np.float64)
    diffs = np.diff(coord)
    zero = np.flatnonzero(diffs == 0)
    if zero.size:
        i = int(zero[0])
        raise ValueError(
            f"coordinate for {label} repeats the value {coord[i]} at indices {i} and {i + 1}; "
            "a gradient needs distinct coordinate values"
        )
    return diffs


def _nonuniform_interior_weights(dx1: np.ndarray, dx2: np.ndarray):
    # numpy's expressions, term for term, so the weights are bit-identical.
    a = -(dx2) / (dx1 * (dx1 + dx2))
    b = (dx2 - dx1) / (dx1 * dx2)
    c = dx1 / (dx2 * (dx1 + dx2))
    return a, b, c


def _edge_rules(ax_dx: Any, uniform: bool, edge_order: int) -> tuple[EdgeRule, EdgeRule]:
    """numpy's one-sided coefficients at both ends (the same expressions, the same scalar types)."""
    if edge_order == 1:
        dx_0 = ax_dx if uniform else ax_dx[0]
        dx_n = ax_dx if uniform else ax_dx[-1]
        return EdgeRule("two-point", (dx_0,)), EdgeRule("two-point", (dx_n,))
    if uniform:
        first = (-1.5 / ax_dx, 2.0 / ax_dx, -0.5 / ax_dx)
        last = (0.5 / ax_dx, -2.0 / ax_dx, 1.5 / ax_dx)
    else:
        dx1, dx2 = ax_dx[0], ax_dx[1]
        first = (
            -(2.0 * dx1 + dx2) / (dx1 * (dx1 + dx2)),
            (dx1 + dx2) / (dx1 * dx2),
            -dx1 / (dx2 * (dx1 + dx2)),
        )
        dx1, dx2 = ax_dx[-2], ax_dx[-1]
        last = (
            (dx2) / (dx1 * (dx1 + dx2)),
            -(dx2 + dx1) / (dx1 * dx2),
            (2.0 * dx2 + dx1) / (dx2 * (dx1 + dx2)),
        )
    return EdgeRule("three-point", first), EdgeRule("three-point", last)


def axis_spacing(
    entry: Any,
    *,
    axis: int,
    size: int,
    edge_order: int,
    label: str | None = None,
    periodic: bool = False,
    period: float | None = None,
) -> AxisSpacing:
    """Build the :class:`AxisSpacing` of one axis from a scalar step or a 1-D coordinate.

    Parameters
    ----------
    entry
        ``None`` (step 1.0), a scalar step, or a 1-D coordinate (numpy, CuPy, dask, list) of
        length ``size``.
    axis, size
        The axis and its length.
    edge_order
        1 or 2; the axis needs at least ``edge_order + 1`` points unless it is periodic.
    label
        How error messages name the axis (default ``"dim {axis}"``).
    periodic, period
        Wrap central differences around the ends. A coordinate needs ``period`` unless it is
        uniform, in which case the period defaults to ``size * step``.

    Examples
    --------
    >>> s = axis_spacing([0.0, 1.0, 3.0], axis=0, size=3, edge_order=1)
    >>> s.uniform, s.weights[1][1]
    (False, np.float64(0.5))
    """
    label = label or f"dim {axis}"
    if not periodic and size < edge_order + 1:
        raise ValueError(
            f"{label} has {size} point(s); edge_order={edge_order} needs at least "
            f"{edge_order + 1} points along every differentiated dim"
        )
    if entry is None:
        entry = 1.0
    if np.ndim(entry) == 0 and not isinstance(entry, (list, tuple)):
        step = _check_scalar_step(entry, label)
        first, last = (None, None) if periodic else _edge_rules(step, True, edge_order)
        return AxisSpacing(
            axis, size, periodic, step, None, first, last, label, edge_order=edge_order
        )
    return _coordinate_spacing(
        to_numpy(entry), _SpacingSpec(axis, size, edge_order, label, periodic, period)
    )


@dataclass(frozen=True)
class _SpacingSpec:
    """What :func:`axis_spacing` needs besides the coordinate (small: safe to put in a task)."""

    axis: int
    size: int
    edge_order: int
    label: str
    periodic: bool = False
    period: Any = None


def _check_coordinate_shape(shape: tuple, spec: _SpacingSpec) -> None:
    if len(shape) != 1:
        raise ValueError(f"coordinate for {spec.label} must be 1-D, got an array of shape {shape}")
    if not np.isnan(shape[0]) and shape[0] != spec.size:
        raise ValueError(
            f"coordinate for {spec.label} has length {shape[0]} but the values have "
            f"{spec.size} points along that dim"
        )


def inferred_period(diffs: np.ndarray, size: int, label: str) -> Any:
    """The period of a periodic axis given without one: ``size * step`` of a uniform coordinate.

    ``diffs`` are the coordinate's differences; uniform is numpy's test (every difference
    equal to the first). The one rule for the function, the accessor and the config.

    Examples
    --------
    >>> inferred_period(np.array([90.0, 90.0, 90.0]), 4, "dim 'lon'")
    np.float64(360.0)
    """
    if size < 2:
        raise OptionError(
            "periodic",
            f"periodic {label} has {size} point(s), so its period cannot be inferred; "
            "give it, e.g. periodic={'lon': 360.0}",
        )
    if not (diffs == diffs[0]).all():
        raise OptionError(
            "periodic",
            f"periodic {label} has a non-uniform coordinate, so its period cannot be "
            "inferred; give it, e.g. periodic={'lon': 360.0}",
        )
    return size * diffs[0]


def _coordinate_spacing(coord: np.ndarray, spec: _SpacingSpec) -> AxisSpacing:
    """:func:`axis_spacing` for a host coordinate: every check, numpy's uniformity decision."""
    axis, size, edge_order, label = spec.axis, spec.size, spec.edge_order, spec.label
    periodic, period = spec.periodic, spec.period
    _check_coordinate_shape(coord.shape, spec)
    _check_coordinate_dtype(coord.dtype, label)
    given = coord
    if periodic:
        if coord.dtype.kind == "c":
            raise ValueError(
                f"periodic {label} has a complex coordinate; a periodic axis needs a real, "
                "monotonic coordinate"
            )
        if period is None:
            diffs = _coordinate_differences(coord, label) if size >= 2 else coord[:0]
            period = inferred_period(diffs, size, label)
        coord = np.concatenate([coord[-1:] - period, coord, coord[:1] + period])
    diffs = _coordinate_differences(coord, label)
    if periodic and not ((diffs > 0).all() or (diffs < 0).all()):
        raise ValueError(
            f"periodic {label}: the coordinate extended by its period ({period}) is not "
            "monotonic; the period must exceed the coordinate's span and share its direction "
            "(negative for a decreasing coordinate)"
        )
    if (diffs == diffs[0]).all():
        step = diffs[0]
        first, last = (None, None) if periodic else _edge_rules(step, True, edge_order)
        return AxisSpacing(
            axis, size, periodic, step, None, first, last, label, diffs, given, period, edge_order
        )

    a, b, c = _nonuniform_interior_weights(diffs[:-1], diffs[1:])
    if not periodic:
        # Length-``size`` arrays indexed by point; the end entries are never read.
        a, b, c = (np.concatenate([w[:1], w, w[-1:]]) for w in (a, b, c))
    first, last = (None, None) if periodic else _edge_rules(diffs, False, edge_order)
    return AxisSpacing(
        axis, size, periodic, None, (a, b, c), first, last, label, diffs, given, period, edge_order
    )


@dataclass(frozen=True)
class LazyAxisSpacing:
    """The spacing of an axis whose coordinate is a dask array, decided inside the graph.

    Only metadata is checked when it is made (1-D, length when known, a numeric dtype); the
    coordinate's values are checked, and numpy's uniform/non-uniform decision taken, by
    :func:`resolve_lazy_spacing` in one graph task, so ``gradient`` computes nothing.

    Attributes
    ----------
    spec
        Axis, size, edge order, label and periodicity (everything but the coordinate).
    coord
        The 1-D dask coordinate (or a 0-d dask step).
    """

    spec: _SpacingSpec
    coord: Any

    @property
    def axis(self) -> int:
        """The (non-negative) axis of the values."""
        return self.spec.axis

    @property
    def size(self) -> int:
        """The axis length."""
        return self.spec.size

    @property
    def periodic(self) -> bool:
        """Whether central differences wrap around the ends."""
        return self.spec.periodic

    @property
    def label(self) -> str:
        """How error messages name the axis."""
        return self.spec.label

    @property
    def complex(self) -> bool:
        """True for a complex coordinate (known from its dtype, without computing it)."""
        return self.coord.dtype.kind == "c"

    @property
    def three_point_edges(self) -> bool:
        """True when the ends use the three-point rule (``edge_order=2``, not periodic)."""
        return self.spec.edge_order == 2 and not self.spec.periodic


def resolve_lazy_spacing(spec: _SpacingSpec, *chunks: Any) -> AxisSpacing:
    """The :class:`AxisSpacing` of a dask coordinate (or 0-d step), from its computed chunks.

    A graph task. Raises the errors :func:`axis_spacing` raises for a bad coordinate or step,
    naming the dim, at compute time.
    """
    if len(chunks) == 1 and np.ndim(chunks[0]) == 0:  # a 0-d dask step
        return axis_spacing(
            to_numpy(chunks[0]),
            axis=spec.axis,
            size=spec.size,
            edge_order=spec.edge_order,
            label=spec.label,
            periodic=spec.periodic,
            period=spec.period,
        )
    coord = np.concatenate([np.atleast_1d(to_numpy(c)) for c in chunks])
    return _coordinate_spacing(coord, spec)


def _is_dask_array(x: Any) -> bool:
    return hasattr(x, "dask") and hasattr(x, "chunks") and hasattr(x, "compute")


def _lazy_axis_spacing(
    coord: Any, axis: int, size: int, edge_order: int, label: str
) -> LazyAxisSpacing:
    spec = _SpacingSpec(axis, size, edge_order, label)
    if coord.ndim:  # metadata only: nothing is computed
        _check_coordinate_shape(coord.shape, spec)
    _check_coordinate_dtype(np.dtype(coord.dtype), label)
    return LazyAxisSpacing(spec, coord)


def normalize_spacing(
    spacing: Any,
    shape: Sequence[int],
    axes: Sequence[int],
    edge_order: int,
    *,
    lazy: bool = False,
) -> list[Any]:
    """Turn ``torch.gradient``'s ``spacing`` argument into one record per axis in ``axes``.

    Parameters
    ----------
    spacing
        ``None``; one scalar (the step of every axis); or a sequence with one entry per axis in
        ``axes``, each a scalar step, a 1-D coordinate as long as that axis, or an N-D
        coordinate (a :class:`~daskgrad.core.ndcoords.NDAxisSpacing` record, see
        :mod:`daskgrad.core.ndcoords`).
    shape
        Shape of the values.
    axes
        Differentiated axes, already normalized (non-negative, unique).
    edge_order
        1 or 2.
    lazy
        Keep dask coordinates lazy (:class:`LazyAxisSpacing`), for dask values; otherwise
        they are computed here.

    Examples
    --------
    >>> [s.step for s in normalize_spacing(0.5, (4, 5), (0, 1), 1)]
    [0.5, 0.5]
    """
    if isinstance(spacing, (list, tuple)):
        entries = list(spacing)
    elif spacing is None or np.ndim(spacing) == 0:
        entries = [spacing] * len(axes)
    else:  # an array: one scalar step per dim
        entries = [spacing[i] for i in range(len(spacing))]
    if len(entries) != len(axes):
        raise ValueError(
            f"spacing has {len(entries)} entries but {len(axes)} dim(s) are "
            f"differentiated (dims {tuple(axes)}); give one scalar, or one entry per dim "
            "(a 1-D coordinate goes inside a list: spacing=[x])"
        )
    # Imported here: ndcoords imports kernels, which imports this module.
    from daskgrad.core.ndcoords import is_nd_coordinate, nd_axis_spacing

    records: list[Any] = []
    for entry, axis in zip(entries, axes):
        if is_nd_coordinate(entry):  # one coordinate per line along the dim
            records.append(nd_axis_spacing(entry, shape, axis, edge_order))
        elif lazy and _is_dask_array(entry):
            if shape[axis] < edge_order + 1:  # the same error as for every other form
                axis_spacing(None, axis=axis, size=shape[axis], edge_order=edge_order)
            records.append(_lazy_axis_spacing(entry, axis, shape[axis], edge_order, f"dim {axis}"))
        else:
            records.append(axis_spacing(entry, axis=axis, size=shape[axis], edge_order=edge_order))
    return records
