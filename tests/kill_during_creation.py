"""Run the store-creation step of a real config and SIGKILL this process at its k-th file event.

    python tests/kill_during_creation.py CONFIG K

``plan`` runs first (it only reads); then an audit hook counts every directory made, every
``.partial`` temporary opened and every rename (zarr's LocalStore writes a file as a temporary,
then renames it) while :func:`daskgrad.batch.runner.prepare_store` creates the output, and at the K-th
one the process SIGKILLs itself: a real kill at a known point of the real creation code, leaving
exactly what a kill there leaves. If creation ends first, it prints the number of events.
"""

from __future__ import annotations

import os
import signal
import sys

from daskgrad.batch.config import load_config
from daskgrad.batch.runner import plan, prepare_store


def main(config: str, k: int) -> None:
    p = plan(load_config(config))
    events = 0

    def hook(event: str, args: tuple) -> None:
        nonlocal events
        if event in ("os.mkdir", "os.rename") or (
            event == "open" and str(args[0]).endswith(".partial")
        ):
            events += 1
            if events == k:
                os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    prepare_store(p)
    print(events)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
