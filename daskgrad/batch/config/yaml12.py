"""A YAML 1.2 core-schema loader for config files, built on PyYAML's ``SafeLoader``.

Only ``true``/``false`` are booleans (``off``, ``no`` and ``yes`` stay strings), ``2:00:00`` is a
string and not a sexagesimal number, ``010`` is 10, ``6.371e6`` and ``1e3`` are floats. Python
tags, any other non-core tag, aliases, duplicate keys and non-string keys are refused, and
nesting deeper than :data:`MAX_DEPTH` too.

Examples
--------
>>> load_yaml("a: off\\nb: 010\\nc: 2:00:00\\nd: 1e3\\n")[0]
{'a': 'off', 'b': 10, 'c': '2:00:00', 'd': 1000.0}
"""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from typing import Any

import yaml

from daskgrad.batch.config.errors import ConfigError, _show

__all__ = ["MAX_DEPTH", "YAML12SafeLoader", "dotted", "load_yaml"]

#: Deepest nesting the loader accepts (the schema needs 4).
MAX_DEPTH = 32


_TAG = "tag:yaml.org,2002:"
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$"
)


class YAML12SafeLoader(yaml.SafeLoader):
    """PyYAML's ``SafeLoader`` reading the YAML 1.2 core schema, and stricter.

    - Plain scalars resolve as in YAML 1.2 core: ``null``/``~``/empty, ``true``/``false`` (any
      case form of those two only), decimal/``0o``/``0x`` integers, floats with optional exponent,
      ``.inf``/``.nan``. Everything else is a string: ``off``, ``yes``, ``2:00:00``, ``2024-01-01``,
      ``1_000``. ``010`` is 10.
    - Only the core tags are built (str, int, float, bool, null, seq, map); any other tag
      (``!!python/...``, ``!!binary``, ``!!timestamp``, ``!custom``) is refused, so nothing from a
      tag is ever constructed or run. Aliases (``*name``) are refused; anchors are harmless.
    - Mapping keys must be strings and must not repeat; nesting is limited to ``MAX_DEPTH``.

    Problems are raised as :class:`ConfigError` with ``source``, dotted ``key`` and ``line``.
    ``yaml.load(text, Loader=YAML12SafeLoader)`` works; :func:`load_yaml` also returns the node
    tree used to find line numbers.
    """

    yaml_implicit_resolvers: typing.ClassVar[dict] = {}
    source = "<string>"
    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise ConfigError(
                self.source,
                None,
                event.start_mark.line + 1,
                f"aliases (*{event.anchor}) are not supported; write the value out",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(
                    self.source, None, mark.line + 1, f"nested more than {MAX_DEPTH} levels deep"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: yaml.Node) -> Any:
        return self._build(node, ())

    def _build(self, node: yaml.Node, path: tuple[str | int, ...]) -> Any:
        """Turn a node into plain Python data (the only constructor this loader has)."""
        line = node.start_mark.line + 1
        key = dotted(path) or None

        def refuse(reason: str) -> typing.NoReturn:
            raise ConfigError(self.source, key, line, reason)

        tag = node.tag
        if isinstance(node, yaml.MappingNode):
            if tag != _TAG + "map":
                refuse(_tag_refused(tag))
            data: dict[str, Any] = {}
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _TAG + "str":
                    if isinstance(key_node, yaml.ScalarNode):
                        what = f"key {_show(key_node.value)} is read as {key_node.tag.rsplit(':', 1)[-1]}"
                    else:
                        what = "a list or mapping used as a key"
                    raise ConfigError(
                        self.source, key, key_line, f"{what}; keys must be strings (quote it)"
                    )
                name = key_node.value
                if name in first_line:
                    raise ConfigError(
                        self.source,
                        dotted((*path, name)),
                        key_line,
                        f"duplicate key {_show(name)} (lines {first_line[name]} and {key_line})",
                    )
                first_line[name] = key_line
                data[name] = self._build(value_node, (*path, name))
            return data
        if isinstance(node, yaml.SequenceNode):
            if tag != _TAG + "seq":
                refuse(_tag_refused(tag))
            return [self._build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = node.value
        if tag == _TAG + "str":
            return value
        if tag == _TAG + "null":
            if value not in ("", "~", "null", "Null", "NULL"):
                refuse(f"{_show(value)} is not null")
            return None
        if tag == _TAG + "bool":
            if value not in ("true", "True", "TRUE", "false", "False", "FALSE"):
                refuse(f"{_show(value)} is not a boolean (only true and false are)")
            return value.lower() == "true"
        if tag == _TAG + "int":
            if not _INT.match(value):
                refuse(f"{_show(value)} is not an integer")
            try:
                return int(value, 0) if value[:2] in ("0o", "0x") else int(value, 10)
            except ValueError:  # more digits than Python converts (sys.int_info)
                refuse(f"integer {_show(value)} is too long")
        if tag == _TAG + "float":
            if not _FLOAT.match(value):
                refuse(f"{_show(value)} is not a number")
            low = value.lower()
            if low.endswith(".nan"):
                return float("nan")
            if low.endswith(".inf"):
                return float("-inf") if low.startswith("-") else float("inf")
            return float(value)
        refuse(_tag_refused(tag))


YAML12SafeLoader.add_implicit_resolver(
    _TAG + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
YAML12SafeLoader.add_implicit_resolver(
    _TAG + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
YAML12SafeLoader.add_implicit_resolver(_TAG + "int", _INT, list("-+0123456789"))
YAML12SafeLoader.add_implicit_resolver(_TAG + "float", _FLOAT, list("-+.0123456789"))


def _tag_refused(tag: str) -> str:
    shown = "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
    return f"tag {shown} is not allowed; only plain YAML values are (nothing was run)"


def dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = str(part)
            if len(text) > 60:
                text = text[:57] + "..."
            out += ("." if out else "") + text
    return out


def load_yaml(text: str, source: str = "<string>") -> tuple[Any, yaml.Node | None]:
    """Parse one YAML document with :class:`YAML12SafeLoader`.

    Parameters
    ----------
    text : str
        The document.
    source : str
        Name used in errors.

    Returns
    -------
    data, node
        The plain Python data (None for an empty document) and the node tree it came from.

    Raises
    ------
    ConfigError
        Invalid YAML, a refused tag or alias, a duplicate or non-string key, too deep nesting.
    """
    loader = None
    try:
        loader = YAML12SafeLoader(text)  # checks the characters already
        loader.source = source
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except ConfigError:
        raise
    except yaml.reader.ReaderError as err:
        line = text[: err.position].count("\n") + 1
        raise ConfigError(
            source, None, line, f"invalid YAML: character {err.character:#06x} is not allowed"
        ) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        what = " ".join(p for p in (err.context, err.problem) if p) or "cannot parse"
        raise ConfigError(
            source, None, None if mark is None else mark.line + 1, f"invalid YAML: {what}"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(source, None, None, f"invalid YAML: {err}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, node
