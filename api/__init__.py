"""REST API (FastAPI) over the same functions as the ``nas`` CLI."""

from __future__ import annotations

__all__: list[str] = []
