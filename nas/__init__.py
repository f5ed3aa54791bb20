"""Hardware-aware neural architecture search: NSGA-II search, measurement and the ``nas`` CLI."""

from __future__ import annotations

from nas._errors import CLIUsageError, NasError

__version__ = "0.1.0"

__all__ = ["CLIUsageError", "NasError", "__version__"]
