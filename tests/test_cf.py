"""CF metadata of derivatives: the unit algebra, standard names, history, and real readers.

Every output unit string is read by cf-xarray's pint registry through pint-xarray
(``ds.pint.quantify()``) and by MetPy's ``.metpy.units``, and the parsed unit equals
``var_units / coord_units`` as pint computes it independently (same dimensionality, factor 1).
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import xarray as xr

import daskgrad
from daskgrad.cf import (
    UnitParseError,
    append_history,
    derivative_attrs,
    derivative_standard_name,
    derivative_units,
    parse_units,
)

pint = pytest.importorskip("pint", reason="pint is needed to read the units back")
cf_units = pytest.importorskip("cf_xarray.units", reason="cf-xarray's pint registry reads UDUNITS")
pytest.importorskip("pint_xarray", reason="pint-xarray's ds.pint.quantify() is the reader tested")
metpy_units = pytest.importorskip(
    "metpy.units", reason="MetPy's .metpy accessor is a reader tested"
)
import metpy.xarray  # noqa: E402, F401  (registers .metpy)

UREG = cf_units.units
NOW = datetime(2026, 12, 1, 20, 0, 0, tzinfo=timezone.utc)

# (var units, coord attrs, keywords, expected units, pint reference of var / coord or None).
# The reference is written independently of the parser: pint divides the two units itself.
CASES = [
    ("K", {"units": "m"}, {}, "K m-1", None),
    ("m s-1", {"units": "m"}, {}, "s-1", None),
    ("kg m-2 s-1", {"units": "s"}, {}, "kg m-2 s-2", None),
    ("1", {"units": "m"}, {}, "m-1", None),
    ("m2 s-1", {"units": "m"}, {}, "m s-1", None),
    ("W m-2", {"units": "m"}, {}, "W m-3", None),
    ("W/(m2 sr)", {"units": "m"}, {}, "W m-3 sr-1", None),
    ("m.s^-1", {"units": "m"}, {}, "s-1", None),
    ("kg m**-2/s", {"units": "s"}, {}, "kg m-2 s-2", None),
    ("meters", {"units": "m"}, {}, "1", None),
    ("m s-1", {"units": "hPa"}, {}, "m s-1 hPa-1", None),
    ("Pa", {"units": "hPa"}, {}, "Pa hPa-1", None),
    ("%", {"units": "m"}, {}, "% m-1", None),
    ("psu", {"units": "m"}, {}, "psu m-1", None),
    ("µm", {"units": "s"}, {}, "µm s-1", None),
    ("degC", {"units": "m"}, {}, "K m-1", "delta_degC / m"),
    ("degF", {"units": "km"}, {}, "degR km-1", "delta_degF / km"),
    ("K", {"units": "hours since 2000-01-01 00:00"}, {}, "K h-1", "K / hour"),
    ("K", {"units": "degrees_east"}, {}, "K degrees_east-1", None),
    # spherical geometry: degrees become metres
    ("K", {"units": "degrees_north"}, {"kind": "north", "spherical": True}, "K m-1", "K / m"),
    ("m s-1", {"units": "degrees_east"}, {"kind": "east", "spherical": True}, "s-1", "m / s / m"),
    ("K", {"units": "degrees_north"}, {"kind": "x", "spherical": True}, "K m-1", "K / m"),
    ("K", None, {"kind": "east", "spherical": True}, "K m-1", "K / m"),
    # along time: the datetime_unit in UDUNITS spelling
    *[
        ("K", None, {"kind": "time", "datetime_unit": du}, f"K {sym}-1", f"K / {sym}")
        for du, sym in [
            ("W", "week"), ("D", "day"), ("h", "h"), ("m", "min"), ("s", "s"),
            ("ms", "ms"), ("us", "us"), ("ns", "ns"), ("ps", "ps"), ("fs", "fs"), ("as", "as"),
        ]
    ],
    ("kg m-2 s-1", {"units": "days since 1970-01-01"}, {"kind": "time", "datetime_unit": "s"},
     "kg m-2 s-2", "kg / m**2 / s**2"),
]  # fmt: skip


def _ids(case):
    var, coord, kw, _, _ = case
    return (
        f"{var}|{(coord or {}).get('units')}|{kw.get('kind', 'plain')}{kw.get('datetime_unit', '')}"
    )


def _reference(var, coord, ref):
    if ref is not None:
        return UREG.Quantity(1, ref) if ref != "1 / m" else 1 / UREG.Quantity(1, "m")
    return UREG.Quantity(1, UREG.Unit(var)) / UREG.Quantity(1, UREG.Unit(coord["units"]))


def _attrs(var, coord, kw):
    var_attrs = {} if var is None else {"units": var}
    return derivative_attrs(var_attrs, coord, var="v", dim="d", now=NOW, **kw)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_units_string(case):
    var, coord, kw, expected, _ = case
    assert _attrs(var, coord, kw)["units"] == expected


def _readable_by_pint(units: str | None) -> bool:
    try:
        UREG.Unit(units)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_pint_xarray_reads_units(case):
    var, coord, kw, _, ref = case
    out = _attrs(var, coord, kw)["units"]
    ds = xr.Dataset({"g": ("x", np.ones(2), {"units": out})})
    q = ds.pint.quantify(unit_registry=UREG)["g"].data
    reference = _reference(var, coord, ref)
    assert q.units.dimensionality == reference.units.dimensionality
    assert (UREG.Quantity(1, q.units) / reference).to("dimensionless").magnitude == pytest.approx(
        1, rel=1e-12
    )


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_metpy_reads_units(case):
    var, coord, kw, _, ref = case
    out = _attrs(var, coord, kw)["units"]
    mu = metpy_units.units
    try:  # MetPy's own registry lacks some units (psu); then the input is unreadable too
        if var not in (None, ""):
            mu.Unit(var.replace("degC", "delta_degC").replace("degF", "delta_degF"))
    except pint.UndefinedUnitError:
        with pytest.raises(pint.UndefinedUnitError):
            _ = xr.DataArray(np.ones(2), dims="x", attrs={"units": out}).metpy.units
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        units = xr.DataArray(np.ones(2), dims="x", attrs={"units": out}).metpy.units
    reference = _reference(var, coord, ref)
    ratio = mu.Quantity(1, units) / mu.Quantity(1, str(reference.units)) * reference.magnitude
    assert ratio.to("dimensionless").magnitude == pytest.approx(1, rel=1e-12)


@pytest.mark.parametrize(
    ("var", "coord", "expected"),
    [
        ("1e-3", "m", "0.001 m-1"),  # numeric scale factors stay exact
        ("1e-3 kg kg-1", "s", "0.001 s-1"),
        ("10 m", "m", "10"),
        ("0.5 K", "0.25 m", "2 K m-1"),
        ("K", "3 s", "0.3333333333333333 K s-1"),  # not a finite decimal: a float's digits
        ("m2.s-2", "m", "m s-2"),
        ("m²", "m", "m"),
        ("m⁻¹", "s", "m-1 s-1"),
        ("m per s", "s", "m s-2"),
        ("kg/(m2 s)", "(m s)-1", "kg m-1"),
        ("K @ 273.15", "m", "K m-1"),
        ("m", "m", "1"),
        ("km", "m", "km m-1"),  # no conversion: only spellings of one unit cancel
    ],
)
def test_unit_algebra(var, coord, expected):
    assert derivative_units(var, coord) == expected


@pytest.mark.parametrize("text", ["lg(re 1 mW)", "K)", "(K", "m ^", "K $", "0 m"])
def test_unparseable_units_fall_back(text):
    with pytest.raises(UnitParseError):
        parse_units(text)
    assert derivative_units(text, "m") == f"({text})/(m)"
    assert derivative_units("K", text) == f"(K)/({text})"


def test_fallback_is_read_by_pint():
    # "(var)/(coord)" is UDUNITS syntax; pint reads it when it knows both parts.
    assert derivative_units("K", "lg(re 1 mW)") == "(K)/(lg(re 1 mW))"
    assert UREG.Unit("(K)/(m s-1)") == UREG.Unit("K s / m")


def test_unknown_coordinate_units_give_no_units():
    assert "units" not in derivative_attrs({"units": "K"}, None, var="T", dim="i", now=NOW)
    assert "units" not in derivative_attrs(
        {"units": "K"}, {"long_name": "x"}, var="T", dim="x", now=NOW
    )
    assert "units" not in derivative_attrs({"units": "K"}, {"units": ""}, var="T", dim="x", now=NOW)
    # ... but a time derivative needs no coordinate attributes
    a = derivative_attrs(
        {"units": "K"}, None, var="T", dim="t", kind="time", datetime_unit="h", now=NOW
    )
    assert a["units"] == "K h-1"


def test_spherical_ignored_for_plain_and_time():
    # The accessor may pass spherical=True for every field of a spherical call: a pressure
    # level or the time dim keeps its own unit.
    a = derivative_attrs(
        {"units": "K"}, {"units": "hPa"}, var="T", dim="level", spherical=True, now=NOW
    )
    assert a["units"] == "K hPa-1"
    a = derivative_attrs({"units": "K"}, None, var="T", dim="time", kind="time", datetime_unit="s",
                         spherical=True, now=NOW)  # fmt: skip
    assert a["units"] == "K s-1"


# -- standard_name ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var_sn", "coord_sn", "kind", "expected"),
    [
        (
            "sea_water_temperature",
            "depth",
            "plain",
            "derivative_of_sea_water_temperature_wrt_depth",
        ),
        (
            "air_temperature",
            "air_pressure",
            "plain",
            "derivative_of_air_temperature_wrt_air_pressure",
        ),
        ("air_temperature", "longitude", "east", "eastward_derivative_of_air_temperature"),
        ("air_temperature", "latitude", "north", "northward_derivative_of_air_temperature"),
        ("air_temperature", None, "east", "eastward_derivative_of_air_temperature"),
        ("eastward_wind", "grid_latitude", "x", "x_derivative_of_eastward_wind"),
        ("eastward_wind", None, "y", "y_derivative_of_eastward_wind"),
        ("air_temperature", None, "time", "tendency_of_air_temperature"),
        ("air_temperature", "time", "plain", "tendency_of_air_temperature"),  # numeric time
        ("air_temperature", "latitude", "plain", "derivative_of_air_temperature_wrt_latitude"),
        ("air_temperature", None, "plain", None),  # wrt needs the coordinate's name
        (None, "depth", "plain", None),
        (None, None, "time", None),
        ("air_temperature standard_error", "depth", "plain", None),  # a modifier: not X
        ("air_temperature", "not a name", "plain", None),
    ],
)
def test_standard_name(var_sn, coord_sn, kind, expected):
    assert derivative_standard_name(var_sn, coord_sn, kind=kind) == expected
    var_attrs = {} if var_sn is None else {"standard_name": var_sn, "units": "K"}
    coord = {"units": "m"} if coord_sn is None else {"standard_name": coord_sn, "units": "m"}
    attrs = derivative_attrs(var_attrs, coord, var="T", dim="d", kind=kind, datetime_unit="s",
                             spherical=kind != "plain", now=NOW)  # fmt: skip
    assert attrs.get("standard_name") == expected


# -- long_name and history ---------------------------------------------------------------------


def test_long_name_as_before():
    attrs = derivative_attrs({"units": "K"}, {"units": "m"}, var="T", dim="x", now=NOW)
    assert attrs["long_name"] == "gradient of T along x"


def test_history_line_and_append():
    attrs = derivative_attrs(
        {"units": "K"}, {"units": "m"}, var="T", dim="x", edge_order=2, now=NOW
    )
    assert attrs["history"] == (
        f"2026-12-01T20:00:00Z daskgrad {daskgrad.__version__}: gradient of T along x (edge_order=2)"
    )
    old = "Mon Jan  1 00:00:00 2024: ncks -O in.nc out.nc\nTue Jan  2 00:00:00 2024: cdo mul"
    later = NOW + timedelta(hours=1)
    attrs = derivative_attrs({"units": "K", "history": old + "\n"}, {"units": "m"}, var="T", dim="x",
                             now=later)  # fmt: skip
    lines = attrs["history"].split("\n")
    assert lines[:2] == old.split("\n")  # kept, in order
    assert lines[2].startswith("2026-12-01T21:00:00Z daskgrad ")  # newest last
    assert len(lines) == 3
    assert append_history("", "x") == "x"


def test_history_now_is_utc():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    line = derivative_attrs({}, {"units": "m"}, var="T", dim="x")["history"]
    stamp = datetime.strptime(line.split(" ")[0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= stamp <= datetime.now(timezone.utc)
    # a local-time ``now`` is written in UTC
    local = datetime(2026, 12, 1, 22, 0, tzinfo=timezone(timedelta(hours=2)))
    assert derivative_attrs({}, None, var="T", dim="x", now=local)["history"].startswith(
        "2026-12-01T20:00:00Z"
    )


# -- errors -----------------------------------------------------------------------------------


def test_bad_kind():
    with pytest.raises(ValueError, match=re.escape("kind: got 'up'; allowed: 'plain', 'time'")):
        derivative_attrs({}, None, var="T", dim="z", kind="up")  # type: ignore[arg-type]


def test_time_needs_datetime_unit():
    with pytest.raises(ValueError, match=re.escape("datetime_unit: got None; kind='time' needs")):
        derivative_attrs({}, None, var="T", dim="t", kind="time")
    with pytest.raises(ValueError, match="datetime_unit"):
        derivative_attrs({}, None, var="T", dim="t", kind="time", datetime_unit="Y")


# -- the accessor's outputs, as the integrator will wire them ----------------------------------


def _kind(field):
    """The mapping from an accessor field to ``kind`` (the hook the accessor needs)."""
    if field.role is not None:
        return {"lat": "north", "lon": "east"}[field.role]
    return "time" if field.spacing.kind in ("datetime", "cftime") else "plain"


@pytest.mark.parametrize("var_units", [None, ""])
def test_a_variable_without_units_gives_no_units(var_units):
    attrs = {} if var_units is None else {"units": var_units}
    assert "units" not in derivative_attrs(attrs, {"units": "m"}, var="q", dim="x", now=NOW)


def test_demo_outputs_read_by_pint_xarray_and_metpy():
    from daskgrad.batch.demo import make_demo_dataset

    ds = make_demo_dataset(nt=3, nlat=5, nlon=8, nlevel=2)
    kw = {"geometry": "spherical", "periodic": {"lon": 360.0}, "datetime_unit": "h"}
    out = ds.grad.compute(**kw)  # the accessor's own attributes
    got = {v: (out[v].attrs["units"], out[v].attrs["standard_name"]) for v in out.data_vars}
    assert got == {
        "dt2m_dtime": ("K h-1", "tendency_of_air_temperature"),
        "dt2m_dlat": ("K m-1", "northward_derivative_of_air_temperature"),
        "dt2m_dlon": ("K m-1", "eastward_derivative_of_air_temperature"),
        "du_dtime": ("m s-1 h-1", "tendency_of_eastward_wind"),
        "du_dlevel": ("m s-1 hPa-1", "derivative_of_eastward_wind_wrt_air_pressure"),
        "du_dlat": ("s-1", "northward_derivative_of_eastward_wind"),
        "du_dlon": ("s-1", "eastward_derivative_of_eastward_wind"),
    }
    quantified = out.pint.quantify(unit_registry=UREG)
    assert quantified["du_dlat"].data.units == UREG.Unit("1/s")
    assert quantified["dt2m_dtime"].data.units == UREG.Unit("K/hour")
    for v in out.data_vars:
        assert (
            out[v].metpy.units.dimensionality
            == metpy_units.units.Unit(str(quantified[v].data.units)).dimensionality
        )
