"""A rich progress bar that is a no-op when disabled, and the cooperative stop of long fits.

Every long loop of the package (meta-training episodes, tracing, fitting source devices)
advances a :func:`progress_bar`, shown or not; each advance also asks the thread's
:func:`stop_when` callback whether to stop, so a server can stop a fit whose client left.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from predictors._errors import TrainingBusy, TrainingCancelled

__all__ = ["WaitLine", "check_stop", "progress_bar", "stop_when"]

_local = threading.local()


@contextmanager
def stop_when(should_stop: Callable[[], bool]) -> Iterator[None]:
    """Within the block, long fits in this thread raise :class:`TrainingCancelled` at their
    next step once ``should_stop()`` is true (scopes nest; the innermost callback is asked)."""
    previous = getattr(_local, "should_stop", None)
    _local.should_stop = should_stop
    try:
        yield
    finally:
        _local.should_stop = previous


def check_stop() -> None:
    """Raise :class:`TrainingCancelled` if this thread's :func:`stop_when` callback says so."""
    should_stop = getattr(_local, "should_stop", None)
    if should_stop is not None and should_stop():
        raise TrainingCancelled("stopped on request before it finished")


class WaitLine:
    """Threads waiting for locks that may be held for minutes (a meta-training): at most
    ``limit`` wait at once, and each asks its :func:`stop_when` callback every quarter
    second, so waiting requests can neither hold every server thread nor outlive their
    client."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting = 0
        self._lock = threading.Lock()

    def acquire(self, lock: threading.Lock, what: str) -> None:
        """Take ``lock``: at once when it is free, else in line.

        Raises:
            TrainingBusy: when ``limit`` threads already wait (``what``: what they wait for).
            TrainingCancelled: when this thread's :func:`stop_when` callback says so.
        """
        if lock.acquire(blocking=False):
            return
        with self._lock:
            if self.waiting >= self.limit:
                raise TrainingBusy(
                    f"{self.waiting} requests already wait for {what}; try again in a minute"
                )
            self.waiting += 1
        try:
            while not lock.acquire(timeout=0.25):
                check_stop()
        finally:
            with self._lock:
                self.waiting -= 1


@contextmanager
def progress_bar(enabled: bool, description: str, total: int) -> Iterator[Callable[..., None]]:
    """Yield an ``advance(step=1)`` callable driving a rich progress bar on stderr (or
    nothing), so standard output stays clean for ``--json``; every advance first calls
    :func:`check_stop`."""
    if not enabled:

        def silent(step: int = 1) -> None:
            check_stop()

        yield silent
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(step: int = 1) -> None:
            check_stop()
            bar.advance(task, step)

        yield advance


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op threads (small nets run fastest on one thread,
    especially on a shared machine); ``None`` leaves the setting alone."""
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)
