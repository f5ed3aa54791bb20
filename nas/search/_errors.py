"""Exceptions of :mod:`nas.search` (all subclasses of :class:`nas.NasError`)."""

from __future__ import annotations

from nas._errors import NasError

__all__ = ["DeviceResolutionError", "SearchError", "StudyMismatchError"]


class SearchError(NasError):
    """A search that cannot run (bad objective, empty table, unusable storage, ...)."""


class StudyMismatchError(SearchError):
    """An existing study was created with other settings (space, devices, objective)."""


class DeviceResolutionError(NasError, LookupError):
    """A ``--device`` query that matches no device with data in the space.

    The message names the fix (``nas measure ...`` or ``nas hwdb import ...``).
    """
