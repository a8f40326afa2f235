"""The config's error type and the helpers that render values in its messages.

Examples
--------
>>> print(ConfigError("run.yaml", "gradient.edge_order", 6, "edge_order must be 1 or 2; got 3"))
run.yaml:6: gradient.edge_order: edge_order must be 1 or 2; got 3
>>> print(ConfigError("--set", "output.mode", None, "got 'append'"))
--set output.mode: got 'append'
"""

from __future__ import annotations

import reprlib
import typing
from typing import Any

from pydantic_core import PydanticCustomError

__all__ = ["ConfigError"]


def _one_line(text: str) -> str:
    """Escape every character that could break a one-line message (newlines, tabs, U+2028...)."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


class ConfigError(Exception):
    """A config that cannot be used, located as precisely as possible.

    Parameters
    ----------
    source : str
        The config file name as the user gave it, ``"--set"`` for an override, or ``"<string>"``.
    key : str or None
        The dotted key, e.g. ``"gradient.edge_order"``; None when the problem is not about one key.
    line : int or None
        1-based line in ``source``; None when unknown (always None for ``--set``).
    reason : str
        What is wrong: names the value received and what is allowed.

    Notes
    -----
    ``str(err)`` is always exactly one line, ``source:line: key: reason`` with the missing parts
    left out (``--set key: reason`` for overrides), so a command line tool can print it as is
    and exit 2. Characters that could break the line (newlines, tabs, U+2028) are escaped.
    """

    def __init__(self, source: str, key: str | None, line: int | None, reason: str) -> None:
        self.source = str(source)
        self.key = key
        self.line = line
        self.reason = reason
        super().__init__(self.source, key, line, reason)

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        if self.key:
            # "--set gradient.edge_order: ..." reads as the command line the user typed.
            where += (" " if self.source == "--set" else ": ") + self.key
        return _one_line(f"{where}: {self.reason}")

    def __repr__(self) -> str:
        return (
            f"ConfigError(source={self.source!r}, key={self.key!r}, line={self.line!r}, "
            f"reason={self.reason!r})"
        )


_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlevel = 2
_repr.maxlist = _repr.maxdict = 4


def _show(value: Any) -> str:
    """A short YAML-flavoured rendering of a value for messages (bounded for any input)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _repr.repr(value)


def _describe(value: Any) -> str:
    """Like :func:`_show`, but says what kind of value it is where that is the surprise."""
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if value is None:
        return "null (an empty value)"
    if isinstance(value, list):
        return f"a list {_show(value)}"
    if isinstance(value, dict):
        return f"a mapping {_show(value)}"
    return _show(value)


def _fail(reason: str, field: str | None = None) -> typing.NoReturn:
    """Raise a validation error whose message pydantic passes through unchanged.

    ``field`` names the key the problem is about when the check runs on a whole model (a
    cross-field rule); the error is then reported at ``<model key>.<field>``.
    """
    ctx: dict[str, Any] = {"reason": reason}
    if field is not None:
        ctx["field"] = field
    raise PydanticCustomError("daskgrad", "{reason}", ctx)
