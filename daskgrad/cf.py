"""CF metadata of a derivative: UDUNITS units, ``standard_name``, ``long_name`` and ``history``.

Pure functions on attribute mappings (no xarray objects): the accessor calls
:func:`derivative_attrs` once per output field.

Units are an exact algebra of unit factors, not a unit database: a UDUNITS product string
(``kg m-2 s-1``, ``m.s^-1``, ``W/(m2 sr)``, ``1e-3``) is parsed into a numeric scale and a product
of symbols with integer exponents; the derivative's unit is the variable's product divided by
the coordinate's, identical symbols cancelled (``m s-1`` / ``m`` -> ``s-1``). Symbols are never
converted into one another (``km`` and ``m`` do not cancel), except a few spellings of the same
unit (``metre``, ``meters`` -> ``m``; ``seconds`` -> ``s``; ...), so the result is exact.

Decisions (each one tested in ``tests/test_cf.py``):

* A variable without a ``units`` attribute (or with ``""``) gives no ``units``: CF reads a
  missing unit as dimensionless, but in practice it is more often unknown, and ``m-1`` would
  then be a wrong claim. A dimensionless variable says so with ``units: "1"`` (-> ``m-1``).
* A coordinate without ``units``, and a dim with no coordinate (``coord_attrs=None``: steps of
  one index), give **no** ``units``: the spacing's unit is unknown, and a plausible but wrong
  unit is worse than none.
* The origin of a unit does not survive differentiation: ``degC`` and ``K @ 273.15`` give ``K``,
  ``degF`` gives ``degR``, and ``days since 2000-01-01`` gives ``day``.
* Spherical geometry (``kind`` ``"east"``/``"north"``/``"x"``/``"y"`` with ``spherical=True``):
  the distance is in metres whatever the coordinate's degrees say.
* Along time (``kind="time"``), the coordinate's unit is ``datetime_unit`` in UDUNITS spelling
  (``s``, ``min``, ``h``, ``day``, ``week``, ``ms``, ...).
* A string the parser cannot read (a logarithmic unit, stray characters) falls back to
  ``(<var units>)/(<coord units>)``: valid UDUNITS syntax, not simplified, that pint reads
  whenever it reads both parts.

``standard_name`` follows CF's transformations (see :func:`derivative_standard_name`):
``derivative_of_X_wrt_Y``, ``eastward_``/``northward_``/``x_``/``y_derivative_of_X``
(``component_derivative_of_X``) and ``tendency_of_X``. ``history`` gets one line per output,
``<ISO UTC time> daskgrad <version>: <what>``, appended to the input's history (newest last).

Examples
--------
>>> derivative_units("m s-1", "m")
's-1'
>>> attrs = derivative_attrs(
...     {"units": "K", "standard_name": "sea_water_temperature"},
...     {"units": "m", "standard_name": "depth"},
...     var="T", dim="z", now=datetime(2026, 12, 1, tzinfo=timezone.utc),
... )
>>> attrs["units"], attrs["standard_name"]
('K m-1', 'derivative_of_sea_water_temperature_wrt_depth')
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal, get_args

from daskgrad.coords import check_datetime_unit, coordinate_units

__all__ = [
    "DerivativeKind",
    "UnitParseError",
    "Units",
    "append_history",
    "derivative_attrs",
    "derivative_standard_name",
    "derivative_units",
    "history_line",
    "parse_units",
]

#: What a derivative is taken along: a coordinate (``"plain"``), time (``"time"``), the
#: eastward/northward directions (spherical longitude/latitude dims, or the geographic
#: components of a curvilinear grid), or the x/y axes of a curvilinear grid per metre
#: (``components="grid"``).
DerivativeKind = Literal["plain", "time", "east", "north", "x", "y"]
_KINDS: tuple[str, ...] = get_args(DerivativeKind)

# Spellings of one unit that should cancel each other; the key is the symbol written out.
_ALIASES = {
    **dict.fromkeys(("meter", "meters", "metre", "metres"), "m"),
    **dict.fromkeys(("second", "seconds", "sec", "secs"), "s"),
    **dict.fromkeys(("minute", "minutes"), "min"),
    **dict.fromkeys(("hour", "hours", "hr", "hrs"), "h"),
    **dict.fromkeys(("days", "d"), "day"),
    **dict.fromkeys(("weeks",), "week"),
    **dict.fromkeys(("kelvin",), "K"),
    **dict.fromkeys(("kilogram", "kilograms"), "kg"),
    **dict.fromkeys(("pascal", "pascals"), "Pa"),
    # An offset temperature's differences are in the unit without the offset.
    **dict.fromkeys(
        ("degC", "deg_C", "degreeC", "degree_C", "degrees_C", "degree_Celsius",
         "degrees_Celsius", "celsius", "Celsius", "°C", "℃"),
        "K",
    ),
    **dict.fromkeys(
        ("degF", "deg_F", "degreeF", "degree_F", "degrees_F", "degree_Fahrenheit",
         "degrees_Fahrenheit", "fahrenheit", "Fahrenheit", "°F", "℉"),
        "degR",
    ),
}  # fmt: skip

# UDUNITS shift operators: "K @ 273.15", "days since 2000-01-01", "hours from ...".
_SHIFT = re.compile(r"\s*(?:@|\b(?:after|from|since|ref)\b)", re.IGNORECASE)
# UDUNITS logarithmic units, "lg(re 1 mW)": not a product of powers.
_LOG_REF = re.compile(r"\b(?:log|lg|ln|lb)\s*\(\s*re\b")
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<raise>(?:\^|\*\*)\s*(?P<power>[+-]?\d+))
  | (?P<sup>[⁺⁻]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+)
  | (?P<number>[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<symbol>(?:[^\W\d⁰¹²³⁴⁵⁶⁷⁸⁹]|[°%'"])(?:[^\W\d⁰¹²³⁴⁵⁶⁷⁸⁹]|[°'"])*)
  | (?P<mul>[*.·])
  | (?P<div>/)
  | (?P<open>\()
  | (?P<close>\))
    """,
    re.VERBOSE,
)
# An integer right after a unit, a number or ")" (no space) is its exponent: "m2", "s-1".
_EXPONENT = re.compile(r"[+-]?\d+")


class UnitParseError(ValueError):
    """A units string outside the UDUNITS product syntax that :func:`parse_units` reads."""


@dataclass(frozen=True)
class Units:
    """A unit as ``scale * product(symbol ** exponent)``; exponents never zero, order kept."""

    scale: Fraction = Fraction(1)
    factors: tuple[tuple[str, int], ...] = field(default=())

    def __mul__(self, other: Units) -> Units:
        powers = dict(self.factors)
        for symbol, exp in other.factors:
            powers[symbol] = powers.get(symbol, 0) + exp
        factors = tuple((s, e) for s, e in powers.items() if e != 0)
        return Units(self.scale * other.scale, factors)

    def __pow__(self, exp: int) -> Units:
        if exp == 0:
            return Units()
        scale = self.scale**exp
        return Units(Fraction(scale), tuple((s, e * exp) for s, e in self.factors))

    def __truediv__(self, other: Units) -> Units:
        return self * other**-1

    def __str__(self) -> str:
        parts = [f"{s}{e}" if e != 1 else s for s, e in self.factors]
        if self.scale != 1 or not parts:
            parts.insert(0, _number_text(self.scale))
        return " ".join(parts)


def _number_text(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:  # a finite decimal: written exactly
        text = format(Decimal(x.numerator) / Decimal(x.denominator), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return repr(float(x))


def _tokens(text: str) -> list[tuple[str, str, bool]]:
    """(kind, text, attached) triples; ``attached``: no space before and after a unit/number."""
    out: list[tuple[str, str, bool]] = []
    pos = 0
    spaced = True
    while pos < len(text):
        after_unit = not spaced and bool(out) and out[-1][0] in ("symbol", "number", "close")
        m = _EXPONENT.match(text, pos) if after_unit else None
        if m is not None:
            out.append(("int", m.group(0), True))
            pos = m.end()
            continue
        m = _TOKEN.match(text, pos)
        if m is None:
            raise UnitParseError(f"unexpected {text[pos]!r} at position {pos} in {text!r}")
        kind = m.lastgroup or ""
        pos = m.end()
        if kind == "ws":
            spaced = True
            continue
        value = m.group("power") if kind == "raise" else m.group(0)
        attached = not spaced and bool(out) and out[-1][0] in ("symbol", "number", "close")
        if kind == "symbol" and value in ("per", "PER"):
            kind = "div"
        out.append((kind, value, attached))
        spaced = False
    return out


class _Parser:
    """product := power ((mul)? power | div power)*; power := basic (exponent)?;
    basic := symbol | number | '(' product ')'."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def _peek(self) -> tuple[str, str, bool] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def parse(self) -> Units:
        if not self.toks:
            return Units()
        result = self._product()
        if self._peek() is not None:
            raise UnitParseError(f"unexpected {self._peek()[1]!r} in {self.text!r}")  # type: ignore[index]
        return result

    def _product(self) -> Units:
        result = self._power()
        while (tok := self._peek()) is not None and tok[0] != "close":
            if tok[0] == "div":
                self.i += 1
                result = result / self._power()
                continue
            if tok[0] == "mul":
                self.i += 1
            result = result * self._power()
        return result

    def _power(self) -> Units:
        base = self._basic()
        tok = self._peek()
        if tok is not None and (tok[0] == "raise" or (tok[0] in ("int", "sup") and tok[2])):
            self.i += 1
            return base ** int(tok[1].translate(_SUPERSCRIPTS))
        return base

    def _basic(self) -> Units:
        tok = self._peek()
        if tok is None:
            raise UnitParseError(f"{self.text!r} ends where a unit is expected")
        self.i += 1
        kind, value, _ = tok
        if kind == "symbol":
            return Units(Fraction(1), ((_ALIASES.get(value, value), 1),))
        if kind == "number":
            return Units(Fraction(value))
        if kind == "open":
            inner = self._product()
            if self._peek() is None or self._peek()[0] != "close":  # type: ignore[index]
                raise UnitParseError(f"unbalanced '(' in {self.text!r}")
            self.i += 1
            return inner
        raise UnitParseError(f"unexpected {value!r} in {self.text!r}")


def parse_units(text: Any) -> Units:
    """Parse a UDUNITS product string; a shift (``@``, ``since``, ...) and its origin are dropped.

    Raises
    ------
    UnitParseError
        For anything outside the product syntax (logarithmic units, stray characters).

    Examples
    --------
    >>> str(parse_units("kg.m**-2/s")), str(parse_units("days since 2000-01-01"))
    ('kg m-2 s-1', 'day')
    >>> str(parse_units("1e-3 degC"))
    '0.001 K'
    """
    text = str(text)
    if _LOG_REF.search(text):
        raise UnitParseError(f"{text!r} is a logarithmic unit, not a product of powers")
    text = _SHIFT.split(text, maxsplit=1)[0].strip()
    result = _Parser(text).parse()
    if result.scale == 0:
        raise UnitParseError(f"{text!r} has a zero scale factor")
    return result


def derivative_units(var_units: Any, coord_units: Any) -> str | None:
    """UDUNITS units of ``d var / d coord``, simplified; ``None`` when either is unknown.

    Parameters
    ----------
    var_units
        The variable's ``units`` attribute; ``None`` or ``""`` is unknown (``"1"`` is
        dimensionless).
    coord_units
        The units of the coordinate's numbers (``None``: unknown).

    Examples
    --------
    >>> derivative_units("kg m-2 s-1", "s"), derivative_units("1", "m"), derivative_units("K", None)
    ('kg m-2 s-2', 'm-1', None)
    >>> derivative_units(None, "m") is None
    True
    >>> derivative_units("lg(re 1 mW)", "m")
    '(lg(re 1 mW))/(m)'
    """
    if coord_units is None or var_units is None or str(var_units).strip() == "":
        return None
    var_text = str(var_units)
    try:
        return str(parse_units(var_text) / parse_units(coord_units))
    except UnitParseError:
        return f"({var_text})/({coord_units})"


_NAME = re.compile(r"[A-Za-z0-9_]+")


def derivative_standard_name(
    var_name: Any, coord_name: Any, *, kind: DerivativeKind = "plain"
) -> str | None:
    """The CF ``standard_name`` of a derivative, by CF's transformation rules.

    ``tendency_of_X`` along time (also a coordinate whose standard_name is ``time``),
    ``eastward_``/``northward_``/``x_``/``y_derivative_of_X`` along those directions (CF's
    ``component_derivative_of_X``), else ``derivative_of_X_wrt_Y`` with ``Y`` the coordinate's
    standard_name. ``None`` when ``X`` (or ``Y`` for the wrt form) is missing or is not a plain
    standard name (one with a modifier such as ``"air_temperature standard_error"``).

    Examples
    --------
    >>> derivative_standard_name("air_temperature", "longitude", kind="east")
    'eastward_derivative_of_air_temperature'
    >>> derivative_standard_name("air_temperature", None, kind="time")
    'tendency_of_air_temperature'
    >>> derivative_standard_name("air_temperature", None) is None
    True
    """
    if not isinstance(var_name, str) or not _NAME.fullmatch(var_name):
        return None
    if kind == "time" or coord_name == "time":
        return f"tendency_of_{var_name}"
    if kind in ("east", "north"):
        return f"{kind}ward_derivative_of_{var_name}"
    if kind in ("x", "y"):
        return f"{kind}_derivative_of_{var_name}"
    if not isinstance(coord_name, str) or not _NAME.fullmatch(coord_name):
        return None
    return f"derivative_of_{var_name}_wrt_{coord_name}"


def history_line(what: str, *, now: datetime | None = None) -> str:
    """One ``history`` line: ISO UTC timestamp, ``daskgrad <version>``, what was computed.

    Examples
    --------
    >>> line = history_line("gradient of T along x", now=datetime(2026, 12, 1, 20, 5, tzinfo=timezone.utc))
    >>> line.startswith("2026-12-01T20:05:00Z daskgrad "), line.endswith(": gradient of T along x")
    (True, True)
    """
    from daskgrad import __version__  # here: daskgrad imports this module while it loads

    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{when.strftime('%Y-%m-%dT%H:%M:%SZ')} daskgrad {__version__}: {' '.join(what.split())}"


def append_history(previous: Any, line: str) -> str:
    """``previous`` history with ``line`` added last, newline-separated (as NCO and CDO do).

    Examples
    --------
    >>> append_history("2020-01-01T00:00:00Z ncks in.nc out.nc\\n", "now: daskgrad")
    '2020-01-01T00:00:00Z ncks in.nc out.nc\\nnow: daskgrad'
    >>> append_history(None, "now: daskgrad")
    'now: daskgrad'
    """
    if previous is None or str(previous).strip() == "":
        return line
    return f"{str(previous).rstrip()}\n{line}"


def derivative_attrs(
    var_attrs: Mapping[str, Any],
    coord_attrs: Mapping[str, Any] | None,
    *,
    var: Hashable,
    dim: Hashable,
    kind: DerivativeKind = "plain",
    datetime_unit: str | None = None,
    spherical: bool = False,
    edge_order: int = 1,
    now: datetime | None = None,
) -> dict[str, str]:
    """The CF attributes of the output ``d var / d dim``.

    Parameters
    ----------
    var_attrs
        The input variable's attributes (``units``, ``standard_name``, ``history`` are read).
    coord_attrs
        The attributes of the dim's coordinate; ``None`` when the dim has none (index steps).
    var, dim
        The input variable's name and the dim, for ``long_name`` and ``history``.
    kind
        See :data:`DerivativeKind`: ``"plain"`` (per coordinate unit), ``"time"`` (per
        ``datetime_unit``), ``"east"``/``"north"`` (spherical lon/lat, or geographic components)
        and ``"x"``/``"y"`` (a curvilinear grid's axes).
    datetime_unit
        numpy's time unit of the spacing (``"s"``, ``"h"``, ...); required for ``kind="time"``,
        ignored otherwise.
    spherical
        Distances on the sphere, in metres: the unit of ``east``/``north``/``x``/``y``
        derivatives is per metre whatever the coordinate says; other kinds ignore it.
    edge_order
        Recorded in the ``history`` line.
    now
        The timestamp of the ``history`` line (default: now); pass one for all outputs of a run.

    Returns
    -------
    dict
        ``long_name`` and ``history`` always; ``units`` and ``standard_name`` when known.

    Raises
    ------
    ValueError
        For a ``kind`` outside :data:`DerivativeKind`, or ``kind="time"`` without a valid
        ``datetime_unit``.

    Examples
    --------
    >>> a = derivative_attrs({"units": "K", "standard_name": "air_temperature"}, None, var="t2m",
    ...                      dim="time", kind="time", datetime_unit="h")
    >>> a["units"], a["standard_name"], a["long_name"]
    ('K h-1', 'tendency_of_air_temperature', 'gradient of t2m along time')
    >>> derivative_attrs({"units": "K"}, {"units": "degrees_north"}, var="t2m", dim="lat",
    ...                  kind="north", spherical=True)["units"]
    'K m-1'
    """
    if kind not in _KINDS:
        raise ValueError(f"kind: got {kind!r}; allowed: {', '.join(map(repr, _KINDS))}")
    coord = coord_attrs or {}
    if kind == "time":
        if datetime_unit is None:
            raise ValueError(
                "datetime_unit: got None; kind='time' needs numpy's time unit, e.g. 's'"
            )
        coord_units = coordinate_units(None, "datetime", check_datetime_unit(datetime_unit))
    elif spherical and kind != "plain":
        coord_units = "m"
    elif coord_attrs is None or coord.get("units") in (None, ""):
        coord_units = None
    else:
        coord_units = str(coord["units"])

    attrs = {"long_name": f"gradient of {var} along {dim}"}
    units = derivative_units(var_attrs.get("units"), coord_units)
    if units is not None:
        attrs["units"] = units
    name = derivative_standard_name(
        var_attrs.get("standard_name"), coord.get("standard_name"), kind=kind
    )
    if name is not None:
        attrs["standard_name"] = name
    what = f"gradient of {var} along {dim} (edge_order={edge_order}"
    what += (
        ", per metre on the sphere)" if spherical and kind != "plain" and kind != "time" else ")"
    )
    attrs["history"] = append_history(var_attrs.get("history"), history_line(what, now=now))
    return attrs
