"""Exceptions of the :mod:`search_spaces` package."""

from __future__ import annotations

__all__ = ["InvalidArchError", "SearchSpaceError", "UnknownSpaceError"]


class SearchSpaceError(Exception):
    """Root of every error raised by :mod:`search_spaces`."""


class UnknownSpaceError(SearchSpaceError, KeyError):
    """A search-space name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown search space"


class InvalidArchError(SearchSpaceError, ValueError):
    """An architecture string or config that is not part of a space.

    The message always names the offending token or field.
    """
