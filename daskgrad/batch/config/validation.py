"""Pydantic's validation errors rewritten for a YAML user: the key, its line, what is allowed.

Examples
--------
>>> from pydantic import ValidationError
>>> from daskgrad.batch.config.yaml12 import load_yaml
>>> data, node = load_yaml("input: {path: a.zarr}\\noutput: {path: b.zarr, mode: append}\\n")
>>> try:
...     RunConfig.model_validate(data)
... except ValidationError as exc:
...     print(from_validation(exc, "run.yaml", node, []))
run.yaml:2: output.mode: Input should be 'error', 'overwrite' or 'resume', got 'append'
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from daskgrad.batch.config.errors import ConfigError, _describe, _show
from daskgrad.batch.config.schema import RunConfig
from daskgrad.batch.config.yaml12 import dotted

__all__ = ["from_validation"]


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _unwrap_model(arg)
            if found is not None:
                return found
    return None


def _model_at(loc: Sequence[Any]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = RunConfig
    for part in loc:
        if model is None or part not in model.model_fields:
            return None
        model = _unwrap_model(model.model_fields[part].annotation)
    return model


def _sections_with(name: str) -> list[str]:
    """The dotted sections that have a key called ``name`` ("the top level" for the root)."""
    found = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for field, info in model.model_fields.items():
            where = f"{prefix}.{field}" if prefix else field
            if field == name:
                found.append(prefix or "the top level")
            sub = _unwrap_model(info.annotation)
            if sub is not None:
                walk(sub, where)

    walk(RunConfig, "")
    return found


def _reason(err: Mapping[str, Any]) -> str:
    """Rewrite one pydantic error for a YAML user: what came, what is allowed."""
    kind, loc, value = err["type"], err["loc"], err.get("input")
    if kind == "daskgrad":
        return err["ctx"]["reason"]
    if kind == "extra_forbidden":
        name = str(loc[-1])
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields) if model is not None else []
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            return f"unknown key (did you mean {close[0]!r}?)"
        elsewhere = [s for s in _sections_with(name) if s != dotted(loc[:-1])]
        if elsewhere:
            return f"unknown key here; {name!r} belongs under {elsewhere[0]!r}"
        return f"unknown key (allowed: {', '.join(allowed)})" if allowed else "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in _TYPE_WORDS:
        want = _TYPE_WORDS[kind]
        hint = ""
        if isinstance(value, str) and kind in ("int_type", "float_type"):
            try:
                float(value)
                hint = " (remove the quotes)"
            except ValueError:
                pass
        elif isinstance(value, str) and kind == "bool_type":
            hint = " (only true and false are booleans)"
        elif kind == "string_type" and isinstance(value, (int, float, bool)):
            hint = " (put it in quotes)"
        return f"expected {want}, got {_describe(value)}{hint}"
    if kind == "literal_error":
        return f"{err['msg']}, got {_show(value)}"
    if kind == "greater_than":
        return f"must be greater than {err['ctx']['gt']:g}, got {_show(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {err['ctx']['ge']:g}, got {_show(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {_show(value)}"
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return f"{msg}, got {_show(value)}"


def _line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """The line of the deepest node found along ``loc`` (a key's own line for mapping keys)."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def from_validation(
    exc: ValidationError,
    source: str,
    node: yaml.Node | None,
    overridden: Sequence[tuple[str, ...]],
) -> ConfigError:
    errors = exc.errors()
    # A misspelled key also makes the real one "missing"; the misspelling is the better news.
    err = next((e for e in errors if e["type"] != "missing"), errors[0])
    loc = tuple(p for p in err["loc"] if p != "[key]")
    if err["type"] == "daskgrad" and "field" in (err.get("ctx") or {}):
        loc = (*loc, err["ctx"]["field"])
    key = dotted(loc) or None
    reason = _reason(err)
    for path in overridden:
        if loc[: len(path)] == path:
            return ConfigError("--set", key, None, reason)
    return ConfigError(source, key, _line_of(node, loc), reason)
