"""The batch layer: ``daskgrad run config.yaml`` and ``ds.grad.to_zarr``'s bounded writer.

- :mod:`~daskgrad.batch.config` (a package): the YAML schema, loader, overrides and errors;
  :mod:`~daskgrad.batch.preflight`: the config's file-system checks;
- :mod:`~daskgrad.batch.runner`: one run from plan to the complete mark;
  :mod:`~daskgrad.batch.inputs`, :mod:`~daskgrad.batch.paths`,
  :mod:`~daskgrad.batch.provenance`: the input, the one rule for paths, the input's digest;
- :mod:`~daskgrad.batch.store`, :mod:`~daskgrad.batch.shards`,
  :mod:`~daskgrad.batch.encoding`, :mod:`~daskgrad.batch.lease`: the output store's rules,
  whole-shard writes, codecs, one run per store;
- :mod:`~daskgrad.batch.tiles`, :mod:`~daskgrad.batch.budget`,
  :mod:`~daskgrad.batch.schedule`, :mod:`~daskgrad.batch.writer`,
  :mod:`~daskgrad.batch.stream`: bounded memory, tile by tile;
- :mod:`~daskgrad.batch.cluster`, :mod:`~daskgrad.batch.jobqueue`,
  :mod:`~daskgrad.batch._malloc`: where it runs;
- :mod:`~daskgrad.batch.cli`, :mod:`~daskgrad.batch.demo`, :mod:`~daskgrad.batch.plot`: the
  ``daskgrad`` command, its demo and its pictures.

Examples
--------
>>> from daskgrad.batch.config import load_config_text
>>> load_config_text("input: {path: a.zarr}\\noutput: {path: b.zarr}").cluster.kind
'local'
"""
