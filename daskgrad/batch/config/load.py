"""Reading a config file: size and encoding checks, YAML, overrides, validation.

Examples
--------
>>> load_config("/nonexistent/run.yaml")
Traceback (most recent call last):
...
daskgrad.batch.config.errors.ConfigError: /nonexistent/run.yaml: no such file
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence

from pydantic import ValidationError

from daskgrad.batch.config.errors import ConfigError, _describe
from daskgrad.batch.config.overrides import apply_override
from daskgrad.batch.config.schema import RunConfig
from daskgrad.batch.config.validation import from_validation
from daskgrad.batch.config.yaml12 import load_yaml

__all__ = ["MAX_CONFIG_BYTES", "load_config", "load_config_text"]

#: Config files larger than this are refused before parsing.
MAX_CONFIG_BYTES = 1 << 20


def load_config_text(
    text: str, source: str = "<string>", overrides: Sequence[str] = ()
) -> RunConfig:
    """Parse and validate a config given as text.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str
        Name used in error messages (normally the file name).
    overrides : sequence of str
        ``KEY=VALUE`` items as given to ``--set``; ``VALUE`` is read as YAML.

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        For anything wrong, with a one-line message.

    Examples
    --------
    >>> cfg = load_config_text("input: {path: in.zarr}\\noutput: {path: out.zarr}",
    ...                        overrides=["gradient.edge_order=2"])
    >>> cfg.gradient.edge_order, cfg.output.mode
    (2, 'error')
    """
    if isinstance(overrides, str):
        overrides = [overrides]
    data, node = load_yaml(text, source)
    if data is None:
        raise ConfigError(
            source, None, None, "the config is empty; it needs at least input.path and output.path"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            source,
            None,
            None if node is None else node.start_mark.line + 1,
            f"the top level must be a mapping of sections (input, gradient, output, cluster), got {_describe(data)}",
        )
    overridden = [apply_override(data, item) for item in overrides]
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise from_validation(exc, source, node, overridden) from None


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> RunConfig:
    """Read, parse and validate a config file; refuse anything suspicious before parsing.

    Parameters
    ----------
    path : str or path-like
        The YAML file. Errors name it as given.
    overrides : sequence of str
        ``KEY=VALUE`` items from ``--set``, applied in order after reading the file.

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        A missing, unreadable, non-regular, binary, non-UTF-8 or too large (> 1 MiB) file, or
        any problem :func:`load_config_text` reports.
    """
    source = os.fspath(path)
    try:
        info = os.stat(source)
    except FileNotFoundError:
        raise ConfigError(source, None, None, "no such file") from None
    except OSError as err:
        raise ConfigError(source, None, None, f"cannot read: {err.strerror or err}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(source, None, None, "is a directory, not a config file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(source, None, None, "is not a regular file")
    if info.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(
            source,
            None,
            None,
            f"is {info.st_size} bytes; a config is at most {MAX_CONFIG_BYTES} (1 MiB)",
        )
    try:
        with open(source, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(source, None, None, f"cannot read: {err.strerror or err}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(source, None, None, f"is larger than {MAX_CONFIG_BYTES} bytes (1 MiB)")
    if b"\x00" in raw:
        raise ConfigError(source, None, None, "looks like a binary file, not YAML text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(
            source, None, line, f"is not UTF-8 text (byte {raw[err.start]:#04x})"
        ) from None
    return load_config_text(text, source, overrides)
