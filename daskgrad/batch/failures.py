"""How a failed run says what happened: one line, and whether the store can be resumed."""

from __future__ import annotations

import errno

from daskgrad.batch.writer import SchedulerLost, TileDeaths

__all__ = ["RunError", "cause", "explain"]


class RunError(RuntimeError):
    """A failure while running; the output is not marked complete.

    ``resumable`` is False when this run wrote nothing worth resuming: the cluster never
    started, or the output store could not even be created (it then holds no block and no
    fingerprint, so ``resume`` cannot take it; delete it and run again).
    """

    def __init__(self, message: str, *, resumable: bool = True) -> None:
        super().__init__(message)
        self.resumable = resumable


def cause(err: BaseException) -> str:
    """``err`` as a short clause (a full disk said so).

    Examples
    --------
    >>> cause(ValueError("bad")), cause(OSError(28, "No space left on device"))
    ('ValueError: bad', 'the disk is full ([Errno 28] No space left on device)')
    """
    name = type(err).__name__
    text = str(err) or name
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"the disk is full ({text})"
    return f"{name}: {text}" if name not in text else text


def explain(err: BaseException) -> str:
    """The one line a run prints for a failure while running."""
    name = type(err).__name__
    text = str(err) or name
    if isinstance(err, (TileDeaths, SchedulerLost)):  # our own lines say it all
        return text
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return f"the output disk is full ({text}); free space, then resume"
    if name == "KilledWorker":
        return (
            f"workers died while running the same task more often than cluster.allowed_failures "
            f"allows ({text}); raise cluster.allowed_failures or give workers more memory "
            "(cluster.memory_limit)"
        )
    return f"{name}: {text}" if name not in text else text
