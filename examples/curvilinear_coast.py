"""A curvilinear ocean grid with a coastline: eastward and northward gradients, lazily.

    python examples/curvilinear_coast.py [--out DIR]

Builds a rotated-pole grid (2-D latitude/longitude, as NEMO, MOM6 and ROMS write them) with a
land mask, differentiates a sea-surface temperature field on it with
``geometry="spherical", components="geographic", nan_policy="one-sided"`` through the bounded
writer (``ds.grad.to_zarr``), and draws ``dsst_deast`` with ``daskgrad plot`` to
``DIR/curvilinear_coast.png`` (the README's picture is made with ``--out docs``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

import daskgrad  # noqa: F401  (registers the accessor)
from daskgrad.batch.plot import plot_store


def rotated_pole_grid(ny: int, nx: int, pole_lat: float = 50.0, centre_lon: float = -30.0):
    """2-D latitude/longitude (degrees) of a regular grid in a frame whose pole is tilted."""
    rlat, rlon = np.meshgrid(
        np.deg2rad(np.linspace(-25.0, 25.0, ny)),
        np.deg2rad(np.linspace(-35.0, 35.0, nx)),
        indexing="ij",
    )
    x, y, z = np.cos(rlat) * np.cos(rlon), np.cos(rlat) * np.sin(rlon), np.sin(rlat)
    tilt = np.deg2rad(90.0 - pole_lat)
    x, z = x * np.cos(tilt) + z * np.sin(tilt), -x * np.sin(tilt) + z * np.cos(tilt)
    return np.rad2deg(np.arcsin(z)), np.rad2deg(np.arctan2(y, x)) + centre_lon


def ocean(ny: int = 240, nx: int = 320, nt: int = 4) -> xr.Dataset:
    """A sea-surface temperature on the grid, NaN on an island and a coast, chunked for dask."""
    lat, lon = rotated_pole_grid(ny, nx)
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    sst = 300.0 - 25.0 * np.sin(phi) ** 2 + 2.0 * np.sin(4 * lam) * np.cos(phi)
    j, i = np.meshgrid(np.arange(nx), np.arange(ny))
    land = ((i - 0.55 * ny) ** 2 + (j - 0.4 * nx) ** 2 < (0.12 * ny) ** 2) | (
        j > 0.85 * nx - 0.2 * i
    )
    sst = np.where(land, np.nan, sst)
    data = np.stack([sst + 0.3 * k for k in range(nt)])
    return xr.Dataset(
        {
            "sst": (
                ("time", "y", "x"),
                data,
                {"units": "K", "standard_name": "sea_surface_temperature"},
            )
        },
        coords={
            "nav_lat": (("y", "x"), lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "nav_lon": (("y", "x"), lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
    ).chunk({"time": 1, "y": 80, "x": 80})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=tempfile.mkdtemp(prefix="daskgrad-coast-"))
    out = Path(parser.parse_args().out)
    store = Path(tempfile.mkdtemp(prefix="daskgrad-coast-")) / "gradients.zarr"
    ds = ocean()
    ds.grad.to_zarr(
        store, ["y", "x"], geometry="spherical", components="geographic", nan_policy="one-sided"
    )
    result = xr.open_zarr(store)
    land = int(np.isnan(ds["sst"]).sum())
    lost = int(np.isnan(result["dsst_deast"]).sum()) - land
    print(f"{store}: {list(result.data_vars)}; NaN beyond the land mask: {lost}")
    picture = plot_store(store, "dsst_deast", out=out / "curvilinear_coast.png")
    print(f"picture: {picture.path}")


if __name__ == "__main__":
    main()
