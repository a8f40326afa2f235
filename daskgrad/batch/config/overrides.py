"""``--set KEY=VALUE`` overrides, applied to the parsed YAML before validation.

Examples
--------
>>> data = {"output": {"path": "b.zarr"}}
>>> apply_override(data, "output.mode=resume"), data
(('output', 'mode'), {'output': {'path': 'b.zarr', 'mode': 'resume'}})
"""

from __future__ import annotations

from typing import Any

from daskgrad.batch.config.errors import ConfigError, _describe, _show
from daskgrad.batch.config.yaml12 import load_yaml

__all__ = ["apply_override"]


def apply_override(data: dict[str, Any], item: str) -> tuple[str, ...]:
    if not isinstance(item, str) or "=" not in item:
        raise ConfigError(
            "--set", None, None, f"expected KEY=VALUE (e.g. output.path=/x), got {_show(item)}"
        )
    dotted, text = item.split("=", 1)
    dotted = dotted.strip()
    path = tuple(dotted.split("."))
    if not dotted or any(not part.strip() for part in path):
        raise ConfigError("--set", None, None, f"bad key {_show(dotted)} in {_show(item)}")
    try:
        value, _ = load_yaml(text, source="--set")
    except ConfigError as err:
        raise ConfigError("--set", dotted, None, err.reason) from None
    target = data
    for i, part in enumerate(path[:-1]):
        child = target.get(part)
        if child is None:
            child = target[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(path[: i + 1])
            raise ConfigError(
                "--set",
                dotted,
                None,
                f"cannot set a key inside {where}, which is {_describe(child)}",
            )
        target = child
    target[path[-1]] = value
    return path
