"""``GET /v1/spaces`` and ``GET /v1/spaces/{space}``."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter

from api.deps import DbDep, ReadAccess
from api.errors import field_errors
from api.schemas import ErrorPublic, SpacePublic, SpacesPublic, SpaceSummaryPublic

__all__ = ["router"]

router = APIRouter(prefix="/spaces", tags=["spaces"])


@lru_cache(maxsize=32)
def _static(name: str) -> dict[str, Any]:
    from search_spaces import get_space

    space = get_space(name)
    return {
        "name": space.name,
        "description": space.description,
        "parameters": {k: list(v) for k, v in space.search_parameters().items()},
        "reference_archs": {k: space.to_string(a) for k, a in space.reference_archs().items()},
        "hardware_embedding_archs": [space.to_string(a) for a in space.hardware_embedding_archs()],
        "default_workload": space.workload_dict(),
        "encoding_length": space.encoding_length,
    }


def _counts(stats: dict[str, Any], name: str) -> dict[str, int]:
    row = stats.get("spaces", {}).get(name, {})
    return {
        "n_architectures": int(row.get("architectures", 0)),
        "n_devices": int(row.get("devices", 0)),
        "n_measurements": int(row.get("measurements", 0)),
    }


@router.get("", response_model=SpacesPublic)
def read_spaces(db: DbDep, _access: ReadAccess) -> SpacesPublic:
    """The registered search spaces with their database counts."""
    from search_spaces import get_space, list_spaces

    stats = db.stats()
    data = [
        SpaceSummaryPublic(
            name=name, description=get_space(name).description, **_counts(stats, name)
        )
        for name in list_spaces()
    ]
    return SpacesPublic(data=data, count=len(data))


@router.get("/{space}", response_model=SpacePublic, responses={404: {"model": ErrorPublic}})
def read_space(space: str, db: DbDep, _access: ReadAccess) -> SpacePublic:
    """One space: parameters, reference and hardware-embedding architectures, counts."""
    from search_spaces import list_spaces

    with field_errors("path", "space"):
        if space not in list_spaces():
            from search_spaces import UnknownSpaceError

            raise UnknownSpaceError(
                f"unknown search space {space!r} (known: {', '.join(list_spaces())})"
            )
        static = _static(space)
    return SpacePublic.model_validate({**static, **_counts(db.stats(), space)})
