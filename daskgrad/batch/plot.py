"""A PNG of one 2-D slice of one variable of a zarr store: ``daskgrad plot``.

matplotlib is an optional extra (``pip install 'daskgrad[plot]'``), imported only when a plot is
drawn. Only the slice is read from the store.

The slice: ``sel`` (coordinate values, nearest match) and ``isel`` (indices) fix dims; of the dims
left, latitude/longitude (found as ``geometry="spherical"`` finds them) are plotted as a map,
longitude on x and latitude on y; otherwise the last two dims are plotted (y, x). Every other dim
is taken at its middle index, where an edge's one-sided difference is not shown. The title says
what was chosen. A one-dimensional variable is drawn as a line.

Colours: a symmetric diverging colormap centred on zero for derivatives (and any field with both
signs), since the sign is the information, limited at the largest ``|value|`` short of outliers
(Tukey's far fence; the colorbar's arrows mark values beyond); a sequential one otherwise. The colorbar is labelled with
the variable's ``units``.

Examples
--------
>>> import tempfile, numpy as np, xarray as xr
>>> ds = xr.Dataset({"T": (("y", "x"), np.arange(12.0).reshape(3, 4), {"units": "K"})})
>>> folder = tempfile.mkdtemp()
>>> _ = ds.to_zarr(f"{folder}/s.zarr", zarr_format=3, consolidated=False)
>>> r = plot_store(f"{folder}/s.zarr", "T", out=f"{folder}/T.png")
>>> r.kind, r.dims, r.fixed, r.path.exists()
('plain', ('y', 'x'), {}, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from daskgrad.batch.paths import is_url
from daskgrad.batch.store import read_state
from daskgrad.geometry import CurvilinearAxes, SphericalAxes, find_lat_lon

__all__ = ["INSTALL_HINT", "PlotError", "PlotResult", "parse_selection", "plot_store"]

INSTALL_HINT = "daskgrad plot needs matplotlib: pip install 'daskgrad[plot]'"


class PlotError(ValueError):
    """A bad argument to :func:`plot_store`; the message is one line naming it."""


@dataclass(frozen=True)
class PlotResult:
    """What :func:`plot_store` drew.

    Attributes
    ----------
    path
        The PNG written.
    kind
        ``"map"`` (lon on x, lat on y), ``"plain"`` (a 2-D slice) or ``"line"`` (1-D).
    dims
        The plotted dims: (y, x) for ``map``/``plain``, (x,) for ``line``.
    fixed
        Every other dim with the index it was taken at.
    step
        Plotted dims thinned to at most ``max_points`` points: the step taken along each.
    title
        The title written on the figure.
    """

    path: Path
    kind: Literal["map", "plain", "line"]
    dims: tuple[Hashable, ...]
    fixed: dict[Hashable, int] = field(default_factory=dict)
    step: dict[Hashable, int] = field(default_factory=dict)
    title: str = ""


def parse_selection(items: tuple[str, ...] | list[str], option: str) -> dict[str, str]:
    """``("time=2026-01-01", "level=500")`` -> ``{"time": "2026-01-01", "level": "500"}``.

    Raises
    ------
    PlotError
        For an item without ``=``, with an empty dim, or a dim given twice.

    Examples
    --------
    >>> parse_selection(["level=500", "time=2026-01-01T06"], "--sel")
    {'level': '500', 'time': '2026-01-01T06'}
    """
    out: dict[str, str] = {}
    for item in items:
        dim, eq, value = item.partition("=")
        if not eq or not dim.strip() or not value.strip():
            raise PlotError(f"{option}: got {item!r}; expected DIM=VALUE, e.g. {option} time=0")
        if dim.strip() in out:
            raise PlotError(f"{option}: dim {dim.strip()!r} is given twice")
        out[dim.strip()] = value.strip()
    return out


def _open(store: str | Path) -> xr.Dataset:
    text = str(store)
    if not is_url(text) and not Path(text).expanduser().exists():
        raise PlotError(f"STORE: {text!r} does not exist; give the path of a zarr store")
    try:
        with warnings.catch_warnings():
            # daskgrad consolidates its stores on purpose; zarr warns that v3 has no
            # consolidated metadata in its spec yet.
            warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
            # A store without consolidated metadata (a plain to_zarr) is read all the same.
            warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated")
            return xr.open_zarr(text, consolidated=None, chunks={})
    except Exception as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PlotError(f"STORE: {text!r} is not a readable zarr store ({first})") from None


def _label_value(coord: xr.DataArray, text: str, dim: str) -> Any:
    """The user's ``--sel`` text as a label of ``coord``'s type."""
    kind = coord.dtype.kind
    try:
        if kind in "iuf":
            return float(text)
        if kind == "M":
            return np.datetime64(text, "ns")
    except ValueError:
        what = "a number" if kind in "iuf" else "a date such as 2026-01-01T06:00"
        raise PlotError(f"--sel: {dim}={text!r} is not {what}") from None
    return text


def _apply_selection(
    da: xr.DataArray, sel: Mapping[str, str], isel: Mapping[str, str]
) -> tuple[xr.DataArray, dict[Hashable, int], list[str]]:
    fixed: dict[Hashable, int] = {}
    notes: list[str] = []
    for option, mapping in (("--sel", sel), ("--isel", isel)):
        for dim in mapping:
            if dim not in da.dims:
                raise PlotError(
                    f"{option}: {dim!r} is not a dim of {da.name!r}; its dims are {list(da.dims)}"
                )
            if dim in sel and dim in isel:
                raise PlotError(f"--sel and --isel both fix dim {dim!r}; give one")
    for dim, text in isel.items():
        n = da.sizes[dim]
        try:
            index = int(text)
        except ValueError:
            raise PlotError(f"--isel: {dim}={text!r} is not an integer index") from None
        if not -n <= index < n:
            raise PlotError(f"--isel: {dim}={index} is out of range; allowed: 0 to {n - 1}")
        fixed[dim] = index % n
        notes.append(f"{dim}={_coord_text(da, dim, index % n)}")
    for dim, text in sel.items():
        if dim not in da.coords:
            raise PlotError(f"--sel: dim {dim!r} has no coordinate to select from; use --isel")
        coord = da[dim]
        label = _label_value(coord, text, dim)
        try:
            if coord.dtype.kind in "iufM":
                index = int(coord.to_index().get_indexer([label], method="nearest")[0])
            else:
                index = int(coord.to_index().get_loc(label))
        except (KeyError, TypeError, ValueError):
            values = coord.values
            raise PlotError(
                f"--sel: {dim}={text!r} is not among its values (from {values[0]!r} to "
                f"{values[-1]!r})"
            ) from None
        fixed[dim] = index
        notes.append(f"{dim}={_coord_text(da, dim, index)}")
    return da.isel(fixed), fixed, notes


def _coord_text(da: xr.DataArray, dim: Hashable, index: int) -> str:
    if dim not in da.coords:
        return f"index {index}"
    value = da[dim].values[index]
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="auto"))
    if isinstance(value, np.floating):
        return f"{value:g}"
    return str(value)


def _plot_dims(
    da: xr.DataArray,
) -> tuple[Literal["map", "plain", "line"], tuple[Hashable, ...], tuple[Hashable, Hashable] | None]:
    """The kind of plot, its (y, x) dims, and the 2-D (lat, lon) coordinates of a curvilinear map."""
    if da.ndim == 1:
        return "line", da.dims, None
    try:
        axes = find_lat_lon(da)
    except ValueError:
        axes = None
    if isinstance(axes, SphericalAxes) and axes.lat_dim in da.dims and axes.lon_dim in da.dims:
        return "map", (axes.lat_dim, axes.lon_dim), None
    if isinstance(axes, CurvilinearAxes) and all(d in da.dims for d in axes.dims):
        return "map", axes.dims, (axes.lat, axes.lon)
    return "plain", da.dims[-2:], None


def _is_derivative(da: xr.DataArray) -> bool:
    name = str(da.attrs.get("standard_name", ""))
    return str(da.attrs.get("long_name", "")).startswith("gradient of") or any(
        part in name for part in ("derivative_of_", "tendency_of_")
    )


def _colour_limit(finite: np.ndarray) -> float:
    """The largest ``|value|``, capped at Tukey's far fence of ``|value|`` (q75 + 3 IQR).

    A few extreme points (d/dlon next to a pole, where ``cos(lat)`` is nearly zero) would
    otherwise wash out the whole field; a field without outliers keeps its full range.
    """
    if finite.size == 0:
        return 1.0
    magnitude = np.abs(finite)
    q25, q75 = np.percentile(magnitude, [25.0, 75.0])
    limit = min(float(magnitude.max()), float(q75 + 3.0 * (q75 - q25)))
    return limit if limit > 0 else float(magnitude.max()) or 1.0


def _axis_label(da: xr.DataArray, dim: Hashable) -> str:
    if dim not in da.coords:
        return f"{dim} (index)"
    units = da[dim].attrs.get("units")
    return f"{dim} [{units}]" if units else str(dim)


def plot_store(
    store: str | Path,
    variable: str,
    *,
    out: str | Path | None = None,
    sel: Mapping[str, str] | None = None,
    isel: Mapping[str, str] | None = None,
    figsize: tuple[float, float] = (8.0, 5.0),
    dpi: int = 100,
    max_points: int = 2000,
) -> PlotResult:
    """Write a PNG of one slice of ``variable`` in the zarr ``store``.

    Parameters
    ----------
    store
        A zarr store (path or URL), e.g. a daskgrad output.
    variable
        A data variable of the store.
    out
        The PNG to write (default: ``<variable>.png`` in the current folder).
    sel, isel
        Dims fixed by coordinate value (nearest for numbers and dates) or by index; values are
        strings as on the command line.
    figsize, dpi
        The figure's size in inches and its resolution: the PNG is ``figsize * dpi`` pixels.
    max_points
        A plotted dim longer than this is thinned to every k-th point (said in the title), so
        that a slice of a huge grid is never held whole: a PNG cannot show more anyway.

    Returns
    -------
    PlotResult

    Raises
    ------
    PlotError
        A missing store, an unknown variable, a bad selection: one line naming the argument,
        the value and what is allowed.
    ImportError
        Without matplotlib, with :data:`INSTALL_HINT` as its message.
    """
    try:
        # A bare Figure renders with Agg and leaves pyplot's global state (and backend) alone.
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(INSTALL_HINT) from None

    ds = _open(store)
    if variable not in ds.data_vars:
        raise PlotError(
            f"VARIABLE: {variable!r} is not in {str(store)!r}; allowed: "
            f"{', '.join(map(str, ds.data_vars)) or '(no data variables)'}"
        )
    da = ds[variable]
    if da.dtype.kind not in "iufb":
        raise PlotError(f"VARIABLE: {variable!r} has dtype {da.dtype}; only numbers can be plotted")
    da, fixed, notes = _apply_selection(da, sel or {}, isel or {})
    if not isinstance(max_points, int) or max_points < 2:
        raise PlotError(f"max_points: got {max_points!r}; allowed: an integer of at least 2")
    if da.ndim == 0:
        raise PlotError(
            f"--sel/--isel fix every dim of {variable!r}; leave one or two dims to plot"
        )
    kind, dims, grid = _plot_dims(da)
    rest = {d: da.sizes[d] // 2 for d in da.dims if d not in dims}
    for d, i in rest.items():
        notes.append(f"{d}={_coord_text(da, d, i)} (middle: index {i} of {da.sizes[d]})")
    fixed.update(rest)
    step = {d: -(-da.sizes[d] // max_points) for d in dims if da.sizes[d] > max_points}
    for d, k in step.items():
        notes.append(f"{d}: 1 point in {k}")
    da = da.isel({**rest, **{d: slice(None, None, k) for d, k in step.items()}})
    da = da.transpose(*dims)
    values = np.asarray(da.values, dtype=np.float64)  # reads only this slice's chunks

    units = da.attrs.get("units")
    title = f"{variable}" + (f" [{units}]" if units else "")
    state = read_state(str(store))
    if state is not None and not state.get("complete"):
        title += " (incomplete run: blocks not written yet show the fill value)"
    if notes:
        title += "\n" + ", ".join(notes)

    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    ax = fig.subplots()
    finite = values[np.isfinite(values)]
    if kind == "line":
        x = da[dims[0]].values if dims[0] in da.coords else np.arange(values.size)
        ax.plot(x, values)
        ax.set_xlabel(_axis_label(da, dims[0]))
        ax.set_ylabel(units or variable)
        if finite.size and _is_derivative(da):
            ax.axhline(0.0, color="0.5", linewidth=0.8)
    else:
        ydim, xdim = dims
        if grid is not None:  # a curvilinear grid: each point at its own longitude, latitude
            y = np.asarray(da[grid[0]].transpose(*dims).values)
            x = np.asarray(da[grid[1]].transpose(*dims).values)
        else:
            y = da[ydim].values if ydim in da.coords else np.arange(values.shape[0])
            x = da[xdim].values if xdim in da.coords else np.arange(values.shape[1])
        diverging = _is_derivative(da) or (finite.size and finite.min() < 0 < finite.max())
        cmap, limit = ("RdBu_r", _colour_limit(finite)) if diverging else ("viridis", None)
        mesh = ax.pcolormesh(
            x,
            y,
            values,
            shading="nearest",
            cmap=cmap,
            vmin=None if limit is None else -limit,
            vmax=limit,
        )
        fig.colorbar(mesh, ax=ax, label=units or "", extend="both" if diverging else "neither")
        ax.set_xlabel(_axis_label(da, xdim if grid is None else grid[1]))
        ax.set_ylabel(_axis_label(da, ydim if grid is None else grid[0]))
    ax.set_title(title, fontsize=10)
    path = Path(out if out is not None else f"{variable}.png").expanduser()
    try:
        fig.savefig(path, format="png", dpi=dpi)
    except OSError as err:
        raise PlotError(f"--out: cannot write {str(path)!r}: {err.strerror or err}") from None
    return PlotResult(path, kind, tuple(dims), fixed, step, title)
