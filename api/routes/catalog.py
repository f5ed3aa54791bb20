"""``GET /v1/catalog``: the datasheet catalog of devices that can be predicted zero-shot."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ReadAccess
from api.schemas import CatalogPublic

__all__ = ["router"]

router = APIRouter(prefix="/catalog", tags=["catalog"])


@router.get("", response_model=CatalogPublic)
def read_catalog(_access: ReadAccess) -> CatalogPublic:
    """Every catalog entry. A device created with ``attributes.catalog`` set to an entry's
    name is predicted (and searched) zero-shot from its datasheet until it has measurements.
    """
    from hwdb.catalog import load_catalog

    data = load_catalog()
    return CatalogPublic(data=data, count=len(data))
