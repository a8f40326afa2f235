"""A synthetic CF-style dataset for the demo and the tests (no data, no network needed)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["DEMO_PLOT_VARIABLE", "demo_config_path", "make_demo_dataset", "write_demo_plot"]

#: The output the demo draws: the northward temperature gradient per metre, a map.
DEMO_PLOT_VARIABLE = "dt2m_dlat"


def make_demo_dataset(
    nt: int = 24, nlat: int = 181, nlon: int = 360, nlevel: int = 5, seed: int = 0
) -> xr.Dataset:
    """Temperature and wind on a global lat/lon/time grid with non-uniform pressure levels.

    Parameters
    ----------
    nt, nlat, nlon, nlevel
        Grid size: hourly times, latitudes from -90 to 90, longitudes ``0 .. 360 - dlon``
        (a full circle: periodic), pressure levels (non-uniform spacing).
    seed
        Seed of the small random perturbation.

    Examples
    --------
    >>> ds = make_demo_dataset(nt=2, nlat=5, nlon=8, nlevel=2)
    >>> dict(ds.sizes)
    {'time': 2, 'lat': 5, 'lon': 8, 'level': 2}
    """
    rng = np.random.default_rng(seed)
    time = pd.date_range("2026-01-01", periods=nt, freq="h")
    lat = np.linspace(-90.0, 90.0, nlat)
    lon = np.arange(nlon) * (360.0 / nlon)
    level = np.geomspace(1000.0, 200.0, nlevel)
    hours = np.arange(nt)[:, None, None]
    la = np.deg2rad(lat)[None, :, None]
    lo = np.deg2rad(lon)[None, None, :]
    t2m = (
        288.0
        - 40.0 * np.sin(la) ** 2
        + 5.0 * np.cos(la) * np.cos(lo - 2 * np.pi * hours / 24.0)
        + 0.1 * rng.standard_normal((nt, nlat, nlon))
    ).astype(np.float32)
    u = (
        20.0 * np.cos(la)[None] * (level[None, :, None, None] / 1000.0) ** -0.5
        + rng.standard_normal((nt, nlevel, nlat, nlon))
    ).astype(np.float32)
    return xr.Dataset(
        {
            "t2m": (
                ("time", "lat", "lon"),
                t2m,
                {
                    "long_name": "2 metre temperature",
                    "standard_name": "air_temperature",
                    "units": "K",
                },
            ),
            "u": (
                ("time", "level", "lat", "lon"),
                u,
                {"long_name": "eastward wind", "standard_name": "eastward_wind", "units": "m s-1"},
            ),
        },
        coords={
            "time": ("time", time, {"standard_name": "time"}),
            "level": (
                "level",
                level,
                {"long_name": "pressure level", "standard_name": "air_pressure", "units": "hPa"},
            ),
            "lat": ("lat", lat, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lon, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs={"title": "daskgrad synthetic demo data", "Conventions": "CF-1.8"},
    )


def demo_config_path() -> Path:
    """``configs/demo.yaml``: from the installed package, or from the source tree."""
    packaged = resources.files("daskgrad") / "configs" / "demo.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def write_demo_plot(store: str | Path, folder: str | Path) -> Path | None:
    """Draw :data:`DEMO_PLOT_VARIABLE` of the demo's output ``store`` as ``folder/<var>.png``.

    Returns the PNG's path, or ``None`` when matplotlib (the ``[plot]`` extra) is missing.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> ds = make_demo_dataset(nt=2, nlat=5, nlon=8, nlevel=2)
    >>> ds.grad.to_zarr(folder / "g.zarr", dim="lat", variables="t2m", geometry="spherical")
    >>> write_demo_plot(folder / "g.zarr", folder).name
    'dt2m_dlat.png'
    """
    from daskgrad.batch.plot import INSTALL_HINT, plot_store

    try:
        result = plot_store(
            store, DEMO_PLOT_VARIABLE, out=Path(folder) / f"{DEMO_PLOT_VARIABLE}.png"
        )
    except ImportError as err:
        if str(err) != INSTALL_HINT:
            raise
        return None
    return result.path
