"""The YAML run configuration: schema, safe loader, ``--set`` overrides, errors.

A run is described by one YAML file. :func:`load_config` turns that file into a frozen
:class:`RunConfig` or raises :class:`ConfigError`, whose ``str()`` is one line naming the file,
the line, the dotted key and what is wrong::

    config.yaml:6: gradient.edge_ordr: unknown key (did you mean 'edge_order'?)
    --set gradient.edge_order: edge_order must be 1 or 2; got 3

The parts, one job each:

- :mod:`~daskgrad.batch.config.errors`: :class:`ConfigError` and how values are shown;
- :mod:`~daskgrad.batch.config.schema`: the ``input``, ``gradient`` and ``output`` sections and
  :class:`RunConfig` (the gradient options' rules are :mod:`daskgrad.core.options`');
- :mod:`~daskgrad.batch.config.cluster`: the ``cluster`` section;
- :mod:`~daskgrad.batch.config.yaml12`: the YAML 1.2 core-schema loader;
- :mod:`~daskgrad.batch.config.validation`: pydantic's errors as one-line messages;
- :mod:`~daskgrad.batch.config.overrides`: ``--set KEY=VALUE``;
- :mod:`~daskgrad.batch.config.load`: reading a file.

Nothing here reads input data or writes anything; the file-system checks of a config are
:mod:`daskgrad.batch.preflight`.

Examples
--------
>>> try:
...     load_config_text("input: {path: a.zarr}\\noutput: {path: b.zarr}\\ngradient: {edge_ordr: 2}",
...                      "run.yaml")
... except ConfigError as err:
...     print(err)
run.yaml:3: gradient.edge_ordr: unknown key (did you mean 'edge_order'?)
"""

from daskgrad.batch.config.cluster import (
    CLUSTER_KINDS,
    JOBQUEUE_KINDS,
    ClusterConfig,
    JobqueueConfig,
    TLSConfig,
)
from daskgrad.batch.config.errors import ConfigError
from daskgrad.batch.config.load import MAX_CONFIG_BYTES, load_config, load_config_text
from daskgrad.batch.config.schema import (
    MAX_CHUNK,
    OPTION_KEYS,
    GradientConfig,
    InputConfig,
    OutputConfig,
    RunConfig,
)
from daskgrad.batch.config.yaml12 import YAML12SafeLoader, load_yaml

__all__ = [
    "CLUSTER_KINDS",
    "JOBQUEUE_KINDS",
    "MAX_CHUNK",
    "MAX_CONFIG_BYTES",
    "OPTION_KEYS",
    "ClusterConfig",
    "ConfigError",
    "GradientConfig",
    "InputConfig",
    "JobqueueConfig",
    "OutputConfig",
    "RunConfig",
    "TLSConfig",
    "YAML12SafeLoader",
    "load_config",
    "load_config_text",
    "load_yaml",
]
