"""Exceptions of the :mod:`nas` package."""

from __future__ import annotations

__all__ = ["CLIUsageError", "NasError"]


class NasError(Exception):
    """Root of every error raised by :mod:`nas` (search, measurement, export)."""


class CLIUsageError(NasError):
    """A command-line usage error (exit code 2)."""
