"""Hardware-aware neural architecture search: NSGA-II search, measurement and the ``nas`` CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nas._errors import CLIUsageError, NasError

if TYPE_CHECKING:
    from nas.search import (  # noqa: F401
        DeviceMatch,
        DeviceResolutionError,
        SearchError,
        SearchResult,
        SearchWarning,
        StudyMismatchError,
        export_model,
        load_exported,
        make_accuracy_objective,
        resolve_devices,
        run_search,
    )

__version__ = "0.1.0"

# Re-exported lazily so that `import nas` (the CLI entry point) stays free of optuna/torch.
_SEARCH_EXPORTS = (
    "DeviceMatch",
    "DeviceResolutionError",
    "SearchError",
    "SearchResult",
    "SearchWarning",
    "StudyMismatchError",
    "export_model",
    "load_exported",
    "make_accuracy_objective",
    "resolve_devices",
    "run_search",
)

__all__ = ["CLIUsageError", "NasError", "__version__", *_SEARCH_EXPORTS]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    if name in _SEARCH_EXPORTS:
        import nas.search

        return getattr(nas.search, name)
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
