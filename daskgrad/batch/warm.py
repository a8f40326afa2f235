"""Imports a worker needs before it runs block tasks, done once per worker.

Two threads of a fresh worker importing zarr at once (a task, and the unpickling of the next
one) can meet it half-initialized (``ImportError: ... partially initialized module``): a worker
that joins a run late would fail its first tasks. :class:`WarmImports` is registered with the
run's client, so every worker, also one that joins later, imports them first. A module of its
own: importing distributed costs the driver's ``kind: threads`` runs memory they do not need.

Examples
--------
>>> warm_imports()
>>> WarmImports.name
'daskgrad-warm-imports'
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

__all__ = ["WarmImports", "warm_imports"]


def warm_imports() -> None:
    """Import what a block task needs. Done once per worker before it runs tasks: two threads
    of a fresh worker importing zarr at once (a task, and the unpickling of the next one) can
    meet it half-initialized (``ImportError: ... partially initialized module``)."""
    import numcodecs  # noqa: F401  (the codecs a chunk write loads)
    import xarray  # noqa: F401
    import zarr  # noqa: F401

    import daskgrad.batch.faces
    import daskgrad.batch.store
    import daskgrad.blocks  # noqa: F401


class WarmImports(WorkerPlugin):
    """A distributed worker plugin: :func:`warm_imports` on every worker, also those that join
    later (``client.register_plugin(WarmImports())``)."""

    name = "daskgrad-warm-imports"

    def setup(self, worker: Any) -> None:
        warm_imports()
