"""A corpus of real file layouts, small: CMIP6, ERA5, WRF, ROMS, NEMO and MOM6 as they come.

Each builder returns the *raw* datasets of one product, exactly as its files hold them on disk
(integer or float times with ``units``/``calendar`` attributes, packed ``int16`` values with
``scale_factor``/``add_offset``, ``_FillValue``, ``char`` arrays, the ``coordinates``,
``bounds``, ``cell_measures``, ``formula_terms`` and ``flag_*`` attributes), so that xarray
decodes the written files as it decodes the real ones. :func:`write` writes them as the models
do (netCDF, or zarr for the ARCO ERA5 store) and returns their paths; tests open them with
``xarray.open_dataset`` as a user would.

The layouts (:data:`LAYOUTS`):

* ``cmip6``: CMOR's ``tas(time, lat, lon)``: ``time_bnds``/``lat_bnds``/``lon_bnds`` named by
  ``bounds``, a scalar ``height`` coordinate, a ``noleap`` calendar, ``cell_measures`` naming
  an external ``areacella``, non-uniform (Gaussian-like) latitudes;
* ``era5_cds``: the CDS netCDF since 2024: ``valid_time`` (int64 seconds), descending
  ``latitude``, a scalar ``number``, a string ``expver(valid_time)``, GRIB attributes;
* ``era5_packed``: the legacy CDS netCDF3: ``time`` in int32 hours, descending latitude,
  ``int16`` values packed with float64 ``scale_factor``/``add_offset`` (``packed_float32``:
  float32 ones);
* ``era5_arco``: the ARCO (Google) zarr v2 store (consolidated): ``time``, descending
  ``latitude``, float32;
* ``wrf``: ``wrfout``: ``Time`` without coordinate, ``Times`` as ``char``,
  ``XLAT/XLONG(Time, south_north, west_east)``, ``XLAT_U/XLONG_U`` on ``west_east_stag``,
  ``XLAT_V/XLONG_V`` on ``south_north_stag``, ``XTIME``, ``U``/``V`` staggered, ``LANDMASK``
  (``moving``: a grid that moves with time, which daskgrad refuses);
* ``roms``: a ROMS history file: ``lat_rho/lon_rho``, ``lat_u``, ``lat_v``, ``lat_psi`` ...,
  ``mask_rho/mask_u/mask_v/mask_psi`` with ``flag_values``, ``s_rho`` with ``formula_terms``,
  ``temp``/``u``/``v`` with 0 on land, ``zeta`` with a ``_FillValue`` on land;
* ``nemo``: an XIOS ``grid_T`` file (``nav_lat/nav_lon``, ``deptht`` with bounds,
  ``time_counter``/``time_centered`` with bounds, ``thetao`` with 0 on land, ``tos``) and a
  ``mesh_mask.nc`` grid file with ``tmask/umask/vmask(t, z, y, x)`` as ``int8``;
* ``mom6``: ``ocean_month.nc`` (``xh/xq/yh/yq`` nominal 1-D axes, ``time_bnds``,
  ``average_T1/T2/DT``, ``thetao``/``uo``/``vo``/``tos`` with ``_FillValue`` on land,
  ``cell_measures``) and ``ocean_static.nc`` with ``geolon/geolat`` (and ``_u``, ``_v``,
  ``_c``) and ``wet``/``wet_u``/``wet_v``/``wet_c``.

Examples
--------
>>> import tempfile
>>> paths = write("cmip6", tempfile.mkdtemp())
>>> sorted(paths)
['data']
>>> import xarray as xr
>>> ds = xr.open_dataset(paths["data"])
>>> ds["tas"].dims, ds["time"].dt.calendar, float(ds["height"])
(('time', 'lat', 'lon'), 'noleap', 2.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["LAYOUTS", "Layout", "curvilinear_grid", "open_layout", "write"]

F4 = np.float32
FILL = F4(1e20)


@dataclass(frozen=True)
class Layout:
    """One product: its files (``role -> (file name, raw dataset, how it is written)``)."""

    files: dict[str, tuple[str, xr.Dataset, str]]
    #: per file role, the netCDF encoding of its variables (chunking, char dims, dtypes)
    encoding: dict[str, dict] = field(default_factory=dict)


def curvilinear_grid(j: np.ndarray, i: np.ndarray, *, tilt: float = 0.15) -> tuple:
    """Latitude and longitude (degrees) of a smooth, non-orthogonal grid at indices ``(j, i)``.

    Fractional indices give the staggered points (``i - 0.5`` for a u point).

    Examples
    --------
    >>> lat, lon = curvilinear_grid(np.array([[0.0]]), np.array([[0.5]]))
    >>> round(float(lat[0, 0]), 3), round(float(lon[0, 0]), 3)
    (30.075, -69.45)
    """
    lat = 30.0 + 0.9 * j + tilt * i + 0.02 * i * j
    lon = -70.0 + 1.1 * i - 0.2 * j + 0.01 * j * j
    return lat, lon


def _grid_at(ny: int, nx: int, dj: float = 0.0, di: float = 0.0) -> tuple:
    j, i = np.meshgrid(np.arange(ny) + dj, np.arange(nx) + di, indexing="ij")
    return curvilinear_grid(j, i)


def _field(lat, lon, k: float = 0.0) -> np.ndarray:
    """A smooth field of latitude/longitude (degrees), shifted by ``k`` (a time or a level)."""
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    return 12.0 + 8.0 * np.cos(2.0 * phi) * np.sin(3.0 * lam + 0.3 * k) + 0.5 * k


# -- CMIP6 ------------------------------------------------------------------------------------


def cmip6() -> Layout:
    nt, nx = 4, 12
    lat = np.array([-77.5, -52.3, -25.1, 0.0, 25.1, 52.3, 77.5])  # non-uniform
    lon = np.arange(nx) * 30.0 + 15.0
    days = np.arange(nt) * 365.0 / 12 + 15.5  # noleap months
    edges = np.array([[d - 15.5, d + 15.5] for d in days])
    lat_b = np.stack(
        [np.r_[-90.0, (lat[1:] + lat[:-1]) / 2], np.r_[(lat[1:] + lat[:-1]) / 2, 90.0]], 1
    )
    lon_b = np.stack([lon - 15.0, lon + 15.0], 1)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    tas = np.stack([273.0 + 20.0 * np.cos(np.deg2rad(la)) + _field(la, lo, k) for k in range(nt)])
    ds = xr.Dataset(
        {
            "tas": (
                ("time", "lat", "lon"),
                tas.astype(F4),
                {
                    "standard_name": "air_temperature",
                    "long_name": "Near-Surface Air Temperature",
                    "units": "K",
                    "cell_methods": "area: time: mean",
                    "cell_measures": "area: areacella",
                    "coordinates": "height",
                    "_FillValue": FILL,
                    "missing_value": FILL,
                },
            ),
            "time_bnds": (("time", "bnds"), edges),
            "lat_bnds": (("lat", "bnds"), lat_b),
            "lon_bnds": (("lon", "bnds"), lon_b),
            "height": (
                (),
                2.0,
                {"units": "m", "axis": "Z", "positive": "up", "standard_name": "height"},
            ),
        },
        coords={
            "time": (
                "time",
                days,
                {
                    "bounds": "time_bnds",
                    "units": "days since 1850-01-01",
                    "calendar": "noleap",
                    "axis": "T",
                    "standard_name": "time",
                },
            ),
            "lat": (
                "lat",
                lat,
                {
                    "bounds": "lat_bnds",
                    "units": "degrees_north",
                    "axis": "Y",
                    "standard_name": "latitude",
                },
            ),
            "lon": (
                "lon",
                lon,
                {
                    "bounds": "lon_bnds",
                    "units": "degrees_east",
                    "axis": "X",
                    "standard_name": "longitude",
                },
            ),
        },
        attrs={
            "Conventions": "CF-1.7 CMIP-6.2",
            "external_variables": "areacella",
            "frequency": "mon",
            "table_id": "Amon",
            "variable_id": "tas",
        },
    )
    return Layout({"data": ("tas_Amon_model_historical_r1i1p1f1_gn.nc", ds, "NETCDF4_CLASSIC")})


# -- ERA5 -------------------------------------------------------------------------------------

_ERA5_LAT = np.linspace(90.0, -90.0, 9)  # descending, poles included
_ERA5_LON = np.arange(16) * 22.5


def _era5_t2m(nt: int) -> np.ndarray:
    la, lo = np.meshgrid(_ERA5_LAT, _ERA5_LON, indexing="ij")
    return np.stack([250.0 + 35.0 * np.cos(np.deg2rad(la)) + _field(la, lo, k) for k in range(nt)])


def era5_cds() -> Layout:
    nt = 5
    grib = {
        "GRIB_paramId": 167,
        "GRIB_shortName": "2t",
        "GRIB_units": "K",
        "GRIB_gridType": "regular_ll",
        "GRIB_NV": 0,
    }
    t2m = _era5_t2m(nt).astype(F4)
    ds = xr.Dataset(
        {
            "t2m": (
                ("valid_time", "latitude", "longitude"),
                t2m,
                {
                    **grib,
                    "long_name": "2 metre temperature",
                    "units": "K",
                    "standard_name": "unknown",
                    "coordinates": "number expver",
                    "_FillValue": F4(np.nan),
                },
            ),
            "sp": (
                ("valid_time", "latitude", "longitude"),
                (1.0e5 + 50.0 * t2m).astype(F4),
                {
                    "long_name": "Surface pressure",
                    "units": "Pa",
                    "GRIB_paramId": 134,
                    "coordinates": "number expver",
                    "_FillValue": F4(np.nan),
                },
            ),
            "number": (
                (),
                np.int64(0),
                {
                    "long_name": "ensemble member numerical id",
                    "units": "1",
                    "standard_name": "realization",
                },
            ),
            "expver": (
                ("valid_time",),
                np.array(["0001"] * nt, dtype=object),
                {"long_name": "Experiment version"},
            ),
        },
        coords={
            "valid_time": (
                "valid_time",
                np.int64(1704067200) + 3600 * np.arange(nt, dtype=np.int64),
                {
                    "long_name": "time",
                    "standard_name": "time",
                    "units": "seconds since 1970-01-01",
                    "calendar": "proleptic_gregorian",
                },
            ),
            "latitude": (
                "latitude",
                _ERA5_LAT,
                {
                    "units": "degrees_north",
                    "standard_name": "latitude",
                    "long_name": "latitude",
                    "stored_direction": "decreasing",
                },
            ),
            "longitude": (
                "longitude",
                _ERA5_LON,
                {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude"},
            ),
        },
        attrs={"GRIB_centre": "ecmf", "Conventions": "CF-1.7", "institution": "ECMWF"},
    )
    return Layout(
        {"data": ("data_stream-oper_stepType-instant.nc", ds, "NETCDF4")},
        {"data": {"expver": {"dtype": str}}},
    )


def _packed(values: np.ndarray, dtype) -> tuple[np.ndarray, dict]:
    lo, hi = float(values.min()), float(values.max())
    scale = (hi - lo) / (2**16 - 2)
    offset = lo + 32766 * scale
    packed = np.round((values - offset) / scale).astype(np.int16)
    return packed, {"scale_factor": dtype(scale), "add_offset": dtype(offset)}


def era5_packed(packed_float32: bool = False) -> Layout:
    nt = 4
    t2m, attrs = _packed(_era5_t2m(nt), np.float32 if packed_float32 else np.float64)
    ds = xr.Dataset(
        {
            "t2m": (
                ("time", "latitude", "longitude"),
                t2m,
                {
                    **attrs,
                    "_FillValue": np.int16(-32767),
                    "missing_value": np.int16(-32767),
                    "units": "K",
                    "long_name": "2 metre temperature",
                },
            ),
        },
        coords={
            "time": (
                "time",
                np.int32(1078800) + 6 * np.arange(nt, dtype=np.int32),
                {
                    "units": "hours since 1900-01-01 00:00:00.0",
                    "long_name": "time",
                    "calendar": "gregorian",
                },
            ),
            "latitude": (
                "latitude",
                _ERA5_LAT.astype(F4),
                {"units": "degrees_north", "long_name": "latitude"},
            ),
            "longitude": (
                "longitude",
                _ERA5_LON.astype(F4),
                {"units": "degrees_east", "long_name": "longitude"},
            ),
        },
        attrs={"Conventions": "CF-1.6", "history": "2023-01-01 00:00:00 GMT by grib_to_netcdf"},
    )
    return Layout({"data": ("adaptor.mars.internal.nc", ds, "NETCDF3_64BIT")})


def era5_arco() -> Layout:
    nt = 4
    t2m = _era5_t2m(nt).astype(F4)
    ds = xr.Dataset(
        {
            "2m_temperature": (
                ("time", "latitude", "longitude"),
                t2m,
                {"long_name": "2 metre temperature", "units": "K", "short_name": "t2m"},
            ),
        },
        coords={
            "time": (
                "time",
                np.arange(nt, dtype=np.int64),
                {"units": "hours since 2020-01-01", "calendar": "proleptic_gregorian"},
            ),
            "latitude": (
                "latitude",
                _ERA5_LAT.astype(F4),
                {"units": "degrees_north", "long_name": "latitude"},
            ),
            "longitude": (
                "longitude",
                _ERA5_LON.astype(F4),
                {"units": "degrees_east", "long_name": "longitude"},
            ),
        },
        attrs={"valid_time_start": "1940-01-01"},
    )
    return Layout({"data": ("ar-full-37-1h-0p25deg.zarr", ds, "zarr")})


# -- WRF --------------------------------------------------------------------------------------


def wrf(moving: bool = False) -> Layout:
    nt, nz, ny, nx = 3, 2, 6, 8
    lat, lon = _grid_at(ny, nx)
    lat_u, lon_u = _grid_at(ny, nx + 1, di=-0.5)
    lat_v, lon_v = _grid_at(ny + 1, nx, dj=-0.5)

    def in_time(a, shift=0.0):
        return np.stack([a + (shift * k if moving else 0.0) for k in range(nt)]).astype(F4)

    def described(desc, units, stagger, coords):
        return {
            "FieldType": np.int32(104),
            "MemoryOrder": "XY ",
            "description": desc,
            "units": units,
            "stagger": stagger,
            **({"coordinates": coords} if coords else {}),
        }

    t2 = np.stack([270.0 + _field(lat, lon, k) for k in range(nt)]).astype(F4)
    u = np.stack([[_field(lat_u, lon_u, k + z) for z in range(nz)] for k in range(nt)]).astype(F4)
    v = np.stack([[_field(lat_v, lon_v, k - z) for z in range(nz)] for k in range(nt)]).astype(F4)
    land = np.zeros((nt, ny, nx), F4)
    land[:, :2, :3] = 1.0
    times = np.array([f"2024-01-01_{h:02d}:00:00".encode() for h in range(nt)], dtype="S19")
    coords = "XLONG XLAT XTIME"
    ds = xr.Dataset(
        {
            "Times": (("Time",), times),
            "XLAT": (
                ("Time", "south_north", "west_east"),
                in_time(lat, 0.3),
                described("LATITUDE, SOUTH IS NEGATIVE", "degree_north", "", None),
            ),
            "XLONG": (
                ("Time", "south_north", "west_east"),
                in_time(lon),
                described("LONGITUDE, WEST IS NEGATIVE", "degree_east", "", None),
            ),
            "XLAT_U": (
                ("Time", "south_north", "west_east_stag"),
                in_time(lat_u, 0.3),
                described("LATITUDE, SOUTH IS NEGATIVE", "degree_north", "X", None),
            ),
            "XLONG_U": (
                ("Time", "south_north", "west_east_stag"),
                in_time(lon_u),
                described("LONGITUDE, WEST IS NEGATIVE", "degree_east", "X", None),
            ),
            "XLAT_V": (
                ("Time", "south_north_stag", "west_east"),
                in_time(lat_v, 0.3),
                described("LATITUDE, SOUTH IS NEGATIVE", "degree_north", "Y", None),
            ),
            "XLONG_V": (
                ("Time", "south_north_stag", "west_east"),
                in_time(lon_v),
                described("LONGITUDE, WEST IS NEGATIVE", "degree_east", "Y", None),
            ),
            "XTIME": (
                ("Time",),
                np.arange(nt, dtype=F4) * 60.0,
                {
                    "FieldType": np.int32(104),
                    "MemoryOrder": "0  ",
                    "description": "minutes since 2024-01-01 00:00:00",
                    "units": "minutes since 2024-01-01 00:00:00",
                    "stagger": "",
                },
            ),
            "T2": (
                ("Time", "south_north", "west_east"),
                t2,
                described("TEMP at 2 M", "K", "", coords),
            ),
            "HGT": (
                ("Time", "south_north", "west_east"),
                in_time(100.0 * lat - 2000.0),
                described("Terrain Height", "m", "", coords),
            ),
            "LANDMASK": (
                ("Time", "south_north", "west_east"),
                land,
                described("LAND MASK (1 FOR LAND, 0 FOR WATER)", "", "", coords),
            ),
            "U": (
                ("Time", "bottom_top", "south_north", "west_east_stag"),
                u,
                {
                    **described("x-wind component", "m s-1", "X", "XLONG_U XLAT_U XTIME"),
                    "MemoryOrder": "XYZ",
                },
            ),
            "V": (
                ("Time", "bottom_top", "south_north_stag", "west_east"),
                v,
                {
                    **described("y-wind component", "m s-1", "Y", "XLONG_V XLAT_V XTIME"),
                    "MemoryOrder": "XYZ",
                },
            ),
        },
        attrs={
            "TITLE": " OUTPUT FROM WRF V4.5.2 MODEL",
            "START_DATE": "2024-01-01_00:00:00",
            "DX": F4(30000.0),
            "DY": F4(30000.0),
            "MAP_PROJ": np.int32(1),
            "MAP_PROJ_CHAR": "Lambert Conformal",
            "CEN_LAT": F4(32.0),
            "CEN_LON": F4(-66.0),
        },
    )
    return Layout(
        {"data": ("wrfout_d01_2024-01-01_00:00:00", ds, "NETCDF4")},
        {"data": {"Times": {"char_dim_name": "DateStrLen"}}},  # char Times(Time, DateStrLen)
    )


# -- ROMS -------------------------------------------------------------------------------------

ROMS_SHAPE = (3, 3, 8, 10)  # ocean_time, s_rho, eta_rho, xi_rho


def roms_mask_rho() -> np.ndarray:
    """ROMS's land mask at rho points: a coast along the west and north, and an island."""
    _, _, ny, nx = ROMS_SHAPE
    mask = np.ones((ny, nx))
    mask[:, :2] = 0.0
    mask[-2:, :5] = 0.0
    mask[4, 6] = 0.0  # a one-point island
    mask[2:4, 7:9] = 0.0
    return mask


def roms() -> Layout:
    nt, ns, ny, nx = ROMS_SHAPE
    rho = _grid_at(ny, nx)
    upt = _grid_at(ny, nx - 1, di=0.5)
    vpt = _grid_at(ny - 1, nx, dj=0.5)
    psi = _grid_at(ny - 1, nx - 1, dj=0.5, di=0.5)
    m_rho = roms_mask_rho()
    m_u = m_rho[:, :-1] * m_rho[:, 1:]
    m_v = m_rho[:-1, :] * m_rho[1:, :]
    m_psi = m_u[:-1, :] * m_u[1:, :]

    def on(points, mask, shift):
        lat, lon = points
        f = np.stack(
            [[_field(lat, lon, k + 0.5 * s + shift) for s in range(ns)] for k in range(nt)]
        )
        return (f * mask).astype(F4)  # ROMS writes 0 on land where no fill value is defined

    zeta = np.stack([0.1 * _field(*rho, k) for k in range(nt)]).astype(F4)
    zeta[:, m_rho == 0] = F4(1e37)

    def coord(name, dims, points, which, where):
        unit = "degree_north" if which == "lat" else "degree_east"
        std = "latitude" if which == "lat" else "longitude"
        values = points[0] if which == "lat" else points[1]
        return name, (
            dims,
            values,
            {
                "long_name": f"{std} of {where}-points",
                "units": unit,
                "standard_name": std,
                "field": f"{name}, scalar",
            },
        )

    def mask_var(dims, values, where):
        return (
            dims,
            values,
            {
                "long_name": f"mask on {where}-points",
                "flag_values": np.array([0.0, 1.0]),
                "flag_meanings": "land water",
                "coordinates": f"lon_{where} lat_{where}",
            },
        )

    rho_d, u_d, v_d, psi_d = (
        ("eta_rho", "xi_rho"),
        ("eta_u", "xi_u"),
        ("eta_v", "xi_v"),
        ("eta_psi", "xi_psi"),
    )
    data_vars = dict(
        [
            coord("lat_rho", rho_d, rho, "lat", "rho"),
            coord("lon_rho", rho_d, rho, "lon", "rho"),
            coord("lat_u", u_d, upt, "lat", "u"),
            coord("lon_u", u_d, upt, "lon", "u"),
            coord("lat_v", v_d, vpt, "lat", "v"),
            coord("lon_v", v_d, vpt, "lon", "v"),
            coord("lat_psi", psi_d, psi, "lat", "psi"),
            coord("lon_psi", psi_d, psi, "lon", "psi"),
        ]
    )
    data_vars.update(
        {
            "mask_rho": mask_var(rho_d, m_rho, "rho"),
            "mask_u": mask_var(u_d, m_u, "u"),
            "mask_v": mask_var(v_d, m_v, "v"),
            "mask_psi": mask_var(psi_d, m_psi, "psi"),
            "spherical": (
                (),
                np.int32(1),
                {
                    "long_name": "grid type logical switch",
                    "flag_values": np.array([0, 1], np.int32),
                    "flag_meanings": "Cartesian spherical",
                },
            ),
            "Vtransform": (
                (),
                np.int32(2),
                {"long_name": "vertical terrain-following transformation equation"},
            ),
            "hc": (
                (),
                5.0,
                {"long_name": "S-coordinate parameter, critical depth", "units": "meter"},
            ),
            "Cs_r": (
                ("s_rho",),
                np.array([-0.8, -0.4, -0.05]),
                {"long_name": "S-coordinate stretching curves at RHO-points"},
            ),
            "h": (
                rho_d,
                50.0 + 10.0 * rho[0] - 300.0 + 5 * rho[1] + 400.0,
                {
                    "long_name": "bathymetry at RHO-points",
                    "units": "meter",
                    "coordinates": "lon_rho lat_rho",
                },
            ),
            "zeta": (
                ("ocean_time", *rho_d),
                zeta,
                {
                    "long_name": "free-surface",
                    "units": "meter",
                    "coordinates": "lon_rho lat_rho ocean_time",
                    "_FillValue": F4(1e37),
                },
            ),
            "temp": (
                ("ocean_time", "s_rho", *rho_d),
                on(rho, m_rho, 0.0),
                {
                    "long_name": "potential temperature",
                    "units": "Celsius",
                    "coordinates": "lon_rho lat_rho s_rho ocean_time",
                },
            ),
            "u": (
                ("ocean_time", "s_rho", *u_d),
                on(upt, m_u, 1.0),
                {
                    "long_name": "u-momentum component",
                    "units": "meter second-1",
                    "coordinates": "lon_u lat_u s_rho ocean_time",
                },
            ),
            "v": (
                ("ocean_time", "s_rho", *v_d),
                on(vpt, m_v, 2.0),
                {
                    "long_name": "v-momentum component",
                    "units": "meter second-1",
                    "coordinates": "lon_v lat_v s_rho ocean_time",
                },
            ),
        }
    )
    ds = xr.Dataset(
        data_vars,
        coords={
            "ocean_time": (
                "ocean_time",
                86400.0 * np.arange(nt) + 3.0e8,
                {
                    "long_name": "time since initialization",
                    "units": "seconds since 2000-01-01 00:00:00",
                    "calendar": "proleptic_gregorian",
                    "field": "time, scalar, series",
                },
            ),
            "s_rho": (
                "s_rho",
                np.array([-5.0 / 6, -0.5, -1.0 / 6]),
                {
                    "long_name": "S-coordinate at RHO-points",
                    "valid_min": -1.0,
                    "valid_max": 0.0,
                    "positive": "up",
                    "standard_name": "ocean_s_coordinate_g2",
                    "formula_terms": "s: s_rho C: Cs_r eta: zeta depth: h depth_c: hc",
                },
            ),
        },
        attrs={"type": "ROMS/TOMS history file", "Conventions": "CF-1.4, SGRID-0.3"},
    )
    return Layout({"data": ("roms_his.nc", ds, "NETCDF4")})


# -- NEMO -------------------------------------------------------------------------------------

NEMO_SHAPE = (3, 3, 7, 9)  # time_counter, deptht, y, x


def nemo_tmask() -> np.ndarray:
    """NEMO's T-point mask (z, y, x): land grows with depth."""
    _, nz, ny, nx = NEMO_SHAPE
    mask = np.ones((nz, ny, nx), np.int8)
    for z in range(nz):
        mask[z, :, : 2 + z] = 0
    mask[:, 3, 5] = 0
    mask[1:, 5:, 6:] = 0
    return mask


def nemo() -> Layout:
    nt, nz, ny, nx = NEMO_SHAPE
    lat, lon = _grid_at(ny, nx)
    tmask = nemo_tmask()
    umask = tmask.copy()
    umask[:, :, :-1] &= tmask[:, :, 1:]
    vmask = tmask.copy()
    vmask[:, :-1, :] &= tmask[:, 1:, :]
    depth = np.array([0.5, 1.5, 3.0])
    theta = (
        np.stack([np.stack([_field(lat, lon, k + z) for z in range(nz)]) for k in range(nt)])
        * tmask
    )
    tos = np.where(tmask[0] == 1, theta[:, 0], FILL)
    seconds = 3600.0 * np.arange(nt) + 3.9e9
    bounds = np.stack([seconds - 1800.0, seconds + 1800.0], 1)
    time_attrs = {
        "standard_name": "time",
        "units": "seconds since 1900-01-01 00:00:00",
        "calendar": "gregorian",
    }
    latlon = {
        "nav_lat": (
            ("y", "x"),
            lat.astype(F4),
            {"standard_name": "latitude", "long_name": "Latitude", "units": "degrees_north"},
        ),
        "nav_lon": (
            ("y", "x"),
            lon.astype(F4),
            {"standard_name": "longitude", "long_name": "Longitude", "units": "degrees_east"},
        ),
    }
    data = xr.Dataset(
        {
            **latlon,
            "deptht_bounds": (("deptht", "axis_nbounds"), np.stack([depth - 0.5, depth + 0.5], 1)),
            "time_centered": (
                ("time_counter",),
                seconds,
                {**time_attrs, "bounds": "time_centered_bounds", "long_name": "Time axis"},
            ),
            "time_centered_bounds": (("time_counter", "axis_nbounds"), bounds),
            "time_counter_bounds": (("time_counter", "axis_nbounds"), bounds),
            "thetao": (
                ("time_counter", "deptht", "y", "x"),
                theta.astype(F4),
                {
                    "standard_name": "sea_water_potential_temperature",
                    "long_name": "temperature",
                    "units": "degC",
                    "online_operation": "average",
                    "interval_operation": "3600 s",
                    "interval_write": "1 h",
                    "cell_methods": "time: mean (interval: 3600 s)",
                    "coordinates": "time_centered deptht nav_lat nav_lon",
                },
            ),
            "tos": (
                ("time_counter", "y", "x"),
                tos.astype(F4),
                {
                    "standard_name": "sea_surface_temperature",
                    "units": "degC",
                    "long_name": "sea surface temperature",
                    "_FillValue": FILL,
                    "missing_value": FILL,
                    "coordinates": "time_centered nav_lat nav_lon",
                },
            ),
        },
        coords={
            "deptht": (
                "deptht",
                depth.astype(F4),
                {
                    "long_name": "Vertical T levels",
                    "units": "m",
                    "positive": "down",
                    "bounds": "deptht_bounds",
                },
            ),
            "time_counter": (
                "time_counter",
                seconds,
                {
                    **time_attrs,
                    "axis": "T",
                    "bounds": "time_counter_bounds",
                    "long_name": "Time axis",
                },
            ),
        },
        attrs={
            "name": "ORCA_1h_grid_T",
            "description": "ocean T grid variables",
            "Conventions": "CF-1.6",
            "timeStamp": "2024-Jan-01 00:00:00 GMT",
        },
    )
    e1t = np.full((1, ny, nx), 1.0e5)
    mesh = xr.Dataset(
        {
            "nav_lon": (("y", "x"), lon.astype(F4)),
            "nav_lat": (("y", "x"), lat.astype(F4)),
            "nav_lev": (("z",), depth.astype(F4)),
            "time_counter": (("t",), np.array([0.0])),
            "tmask": (("t", "z", "y", "x"), tmask[None]),
            "umask": (("t", "z", "y", "x"), umask[None]),
            "vmask": (("t", "z", "y", "x"), vmask[None]),
            "tmaskutil": (("t", "y", "x"), tmask.max(axis=0)[None]),
            "glamt": (("t", "y", "x"), lon[None]),
            "gphit": (("t", "y", "x"), lat[None]),
            "e1t": (("t", "y", "x"), e1t),
            "e2t": (("t", "y", "x"), e1t),
        },
        attrs={"file_name": "mesh_mask.nc", "TimeStamp": "01/01/2024 00:00:00 -0000"},
    )
    return Layout(
        {
            "data": ("ORCA_1h_20240101_20240101_grid_T.nc", data, "NETCDF4"),
            "grid": ("mesh_mask.nc", mesh, "NETCDF4"),
        }
    )


# -- MOM6 -------------------------------------------------------------------------------------

MOM6_SHAPE = (2, 2, 6, 8)  # time, zl, yh, xh (symmetric: yq, xq one longer)


def mom6_wet() -> np.ndarray:
    _, _, ny, nx = MOM6_SHAPE
    wet = np.ones((ny, nx))
    wet[:2, :3] = 0.0
    wet[4, 5:7] = 0.0
    return wet


def mom6() -> Layout:
    nt, nz, ny, nx = MOM6_SHAPE
    h = _grid_at(ny, nx)
    u = _grid_at(ny, nx + 1, di=-0.5)
    v = _grid_at(ny + 1, nx, dj=-0.5)
    c = _grid_at(ny + 1, nx + 1, dj=-0.5, di=-0.5)
    wet = mom6_wet()
    pad_x = np.pad(wet, ((0, 0), (1, 1)))
    wet_u = pad_x[:, :-1] * pad_x[:, 1:]
    pad_y = np.pad(wet, ((1, 1), (0, 0)))
    wet_v = pad_y[:-1, :] * pad_y[1:, :]
    pad = np.pad(wet, 1)
    wet_c = pad[:-1, :-1] * pad[1:, :-1] * pad[:-1, 1:] * pad[1:, 1:]

    def on(points, mask, shift, levels=True):
        lat, lon = points
        if levels:
            f = np.stack([[_field(lat, lon, k + z + shift) for z in range(nz)] for k in range(nt)])
        else:
            f = np.stack([_field(lat, lon, k + shift) for k in range(nt)])
        return np.where(mask == 1, f, FILL).astype(F4)

    axis = {
        "xh": (
            "xh",
            h[1][0].copy(),
            {"long_name": "h point nominal longitude", "units": "degrees_east", "axis": "X"},
        ),
        "yh": (
            "yh",
            h[0][:, 0].copy(),
            {"long_name": "h point nominal latitude", "units": "degrees_north", "axis": "Y"},
        ),
        "xq": (
            "xq",
            u[1][0].copy(),
            {"long_name": "q point nominal longitude", "units": "degrees_east", "axis": "X"},
        ),
        "yq": (
            "yq",
            v[0][:, 0].copy(),
            {"long_name": "q point nominal latitude", "units": "degrees_north", "axis": "Y"},
        ),
    }
    days = 15.5 + 31.0 * np.arange(nt)
    common = {
        "_FillValue": FILL,
        "missing_value": FILL,
        "time_avg_info": "average_T1,average_T2,average_DT",
    }
    month = xr.Dataset(
        {
            "time_bnds": (
                ("time", "nv"),
                np.stack([days - 15.5, days + 15.5], 1),
                {
                    "long_name": "time axis boundaries",
                    "units": "days since 0001-01-01 00:00:00",
                    "calendar": "noleap",
                },
            ),
            "average_T1": (
                ("time",),
                days - 15.5,
                {
                    "long_name": "Start time for average period",
                    "units": "days since 0001-01-01 00:00:00",
                    "calendar": "noleap",
                },
            ),
            "average_T2": (
                ("time",),
                days + 15.5,
                {
                    "long_name": "End time for average period",
                    "units": "days since 0001-01-01 00:00:00",
                    "calendar": "noleap",
                },
            ),
            "average_DT": (
                ("time",),
                np.full(nt, 31.0),
                {"long_name": "Length of average period", "units": "days"},
            ),
            "thetao": (
                ("time", "zl", "yh", "xh"),
                on(h, wet, 0.0),
                {
                    "long_name": "Sea Water Potential Temperature",
                    "units": "degC",
                    "standard_name": "sea_water_potential_temperature",
                    "cell_methods": "area:mean zl:mean yh:mean xh:mean time: mean",
                    "cell_measures": "volume: volcello area: areacello",
                    **common,
                },
            ),
            "tos": (
                ("time", "yh", "xh"),
                on(h, wet, 0.5, levels=False),
                {
                    "long_name": "Sea Surface Temperature",
                    "units": "degC",
                    "standard_name": "sea_surface_temperature",
                    "cell_measures": "area: areacello",
                    **common,
                },
            ),
            "uo": (
                ("time", "zl", "yh", "xq"),
                on(u, wet_u, 1.0),
                {
                    "long_name": "Sea Water X Velocity",
                    "units": "m s-1",
                    "cell_methods": "z_l:mean yh:mean xq:point time: mean",
                    **common,
                },
            ),
            "vo": (
                ("time", "zl", "yq", "xh"),
                on(v, wet_v, 2.0),
                {
                    "long_name": "Sea Water Y Velocity",
                    "units": "m s-1",
                    "cell_methods": "z_l:mean yq:point xh:mean time: mean",
                    **common,
                },
            ),
        },
        coords={
            **axis,
            "zl": (
                "zl",
                np.array([2.5, 10.0]),
                {
                    "long_name": "Layer pseudo-depth, -z*",
                    "units": "meter",
                    "axis": "Z",
                    "positive": "down",
                },
            ),
            "time": (
                "time",
                days,
                {
                    "long_name": "time",
                    "units": "days since 0001-01-01 00:00:00",
                    "calendar": "noleap",
                    "axis": "T",
                    "bounds": "time_bnds",
                },
            ),
        },
        attrs={
            "filename": "ocean_month.nc",
            "title": "OM4p25",
            "grid_type": "regular",
            "grid_tile": "N/A",
        },
    )

    def geo(name, dims, points, which, where):
        std = "latitude" if which == "lat" else "longitude"
        unit = "degrees_north" if which == "lat" else "degrees_east"
        return name, (
            dims,
            points[0] if which == "lat" else points[1],
            {
                "long_name": f"{std.capitalize()} of {where} points",
                "units": unit,
                "cell_methods": "time: point",
            },
        )

    static = xr.Dataset(
        dict(
            [
                geo("geolat", ("yh", "xh"), h, "lat", "tracer (T)"),
                geo("geolon", ("yh", "xh"), h, "lon", "tracer (T)"),
                geo("geolat_u", ("yh", "xq"), u, "lat", "U"),
                geo("geolon_u", ("yh", "xq"), u, "lon", "U"),
                geo("geolat_v", ("yq", "xh"), v, "lat", "V"),
                geo("geolon_v", ("yq", "xh"), v, "lon", "V"),
                geo("geolat_c", ("yq", "xq"), c, "lat", "corner (Bu)"),
                geo("geolon_c", ("yq", "xq"), c, "lon", "corner (Bu)"),
            ]
        )
        | {
            "wet": (
                ("yh", "xh"),
                wet,
                {
                    "long_name": "0 if land, 1 if ocean at tracer points",
                    "units": "none",
                    "cell_methods": "time: point",
                },
            ),
            "wet_u": (
                ("yh", "xq"),
                wet_u,
                {"long_name": "0 if land, 1 if ocean at zonal velocity points", "units": "none"},
            ),
            "wet_v": (
                ("yq", "xh"),
                wet_v,
                {
                    "long_name": "0 if land, 1 if ocean at meridional velocity points",
                    "units": "none",
                },
            ),
            "wet_c": (
                ("yq", "xq"),
                wet_c,
                {"long_name": "0 if land, 1 if ocean at corner (Bu) points", "units": "none"},
            ),
            "areacello": (
                ("yh", "xh"),
                np.full((ny, nx), 1.0e9),
                {"long_name": "Ocean Grid-Cell Area", "units": "m2", "standard_name": "cell_area"},
            ),
            "deptho": (("yh", "xh"), 4000.0 * wet, {"long_name": "Sea Floor Depth", "units": "m"}),
        },
        coords=axis,
        attrs={"filename": "ocean_static.nc", "grid_type": "regular"},
    )
    return Layout(
        {
            "data": ("ocean_month.nc", month, "NETCDF3_64BIT"),
            "grid": ("ocean_static.nc", static, "NETCDF3_64BIT"),
        }
    )


LAYOUTS: dict[str, Callable[..., Layout]] = {
    "cmip6": cmip6,
    "era5_cds": era5_cds,
    "era5_packed": era5_packed,
    "era5_arco": era5_arco,
    "wrf": wrf,
    "roms": roms,
    "nemo": nemo,
    "mom6": mom6,
}


def _no_default_fill(ds: xr.Dataset) -> dict:
    """No ``_FillValue`` where the raw dataset has none (xarray would add NaN to floats)."""
    return {
        name: {"_FillValue": None}
        for name, var in ds.variables.items()
        if "_FillValue" not in var.attrs and var.dtype.kind == "f"
    }


def write(name: str, directory: str | Path, **options) -> dict[str, Path]:
    """Write layout ``name`` into ``directory`` as the model writes it; its paths by role.

    ``options`` go to the builder (``moving=True`` for ``wrf``, ``packed_float32=True`` for
    ``era5_packed``).
    """
    layout = LAYOUTS[name](**options)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for role, (filename, raw, how) in layout.files.items():
        path = directory / filename
        encoding = _no_default_fill(raw) | layout.encoding.get(role, {})
        if how == "zarr":
            clean = {k: v for k, v in encoding.items() if v != {"_FillValue": None}}
            # The ARCO stores are zarr v2 with consolidated metadata.
            raw.to_zarr(path, mode="w", zarr_format=2, consolidated=True, encoding=clean)
        else:
            raw.to_netcdf(path, format=how, encoding=encoding)
        paths[role] = path
    return paths


def open_layout(name: str, directory: str | Path, *, chunks=None, **options) -> dict:
    """Write layout ``name`` and open each file with xarray as a user would (``chunks``
    as for ``xarray.open_dataset``); the opened datasets by role, and ``"paths"``."""
    paths = write(name, directory, **options)
    opened: dict = {"paths": paths}
    for role, path in paths.items():
        engine = "zarr" if path.suffix == ".zarr" else None
        opened[role] = xr.open_dataset(path, engine=engine, chunks=chunks)
    return opened
