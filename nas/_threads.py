"""Torch's intra-op thread count, set for the duration of a block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["torch_threads"]


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads (``None``: torch's setting).

    Small networks evaluated one at a time gain little from a second thread, and on a shared
    machine OpenMP threads that wait for a busy core make every operator many times slower,
    so the search's objectives and the measurement runner pin the count.

    Raises:
        ValueError: when ``threads`` is less than 1.
    """
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"`threads` must be greater than or equal to 1, got {threads}.")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)
