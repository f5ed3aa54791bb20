"""API keys of the REST service: random tokens, stored only as their SHA-256 hash.

A token is ``nas_`` followed by 32 random bytes (``secrets.token_urlsafe``), so a plain SHA-256
is enough (no salt or slow hash is needed for 256 bits of entropy); the hash is looked up by
its unique index and compared again with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from hwdb._errors import DuplicateError, NotFoundError
from hwdb._models import ApiKeyModel, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "TOKEN_PREFIX",
    "ApiKey",
    "check_name",
    "create_key",
    "hash_token",
    "list_keys",
    "revoke_key",
    "verify",
]

TOKEN_PREFIX = "nas_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$")


@dataclass(frozen=True)
class ApiKey:
    """A stored API key (never the token itself).

    Attributes:
        id: Row id.
        name: Unique, human-chosen name (e.g. the client's host).
        created_at: When it was created (UTC).
        revoked_at: When it was revoked, or ``None`` while active.
    """

    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        """Whether the key is not revoked."""
        return self.revoked_at is None


def hash_token(token: str) -> str:
    """Hex SHA-256 of ``token`` (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _key(row: ApiKeyModel) -> ApiKey:
    return ApiKey(id=row.id, name=row.name, created_at=row.created_at, revoked_at=row.revoked_at)


def check_name(name: object) -> str:
    """Validate an API-key name.

    Raises:
        ValueError: naming ``name``.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            "`name` must be 1-200 characters of letters, digits and . _ @ + -, "
            f"starting with a letter or digit, got {name!r}."
        )
    return name


def create_key(session: Session, name: str) -> tuple[ApiKey, str]:
    """Insert a new key called ``name``; returns it with its token (shown only once)."""
    exists = session.execute(select(ApiKeyModel.id).where(ApiKeyModel.name == name)).first()
    if exists is not None:
        raise DuplicateError(f"an API key named {name!r} already exists")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiKeyModel(name=name, key_hash=hash_token(token), created_at=utcnow(), revoked_at=None)
    session.add(row)
    session.flush()
    return _key(row), token


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, sorted by name."""
    rows = session.execute(select(ApiKeyModel).order_by(ApiKeyModel.name)).scalars()
    return [_key(r) for r in rows]


def revoke_key(session: Session, name: str) -> ApiKey:
    """Mark the key ``name`` revoked (revoking twice keeps the first time)."""
    row = session.execute(select(ApiKeyModel).where(ApiKeyModel.name == name)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"API key {name!r} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return _key(row)


def verify(session: Session, token: str) -> ApiKey | None:
    """The active key whose token is ``token``, else ``None``."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    row = session.execute(
        select(ApiKeyModel).where(ApiKeyModel.key_hash == digest)
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_hash.encode(), digest.encode()):
        return None  # pragma: no cover - the lookup already matched
    return _key(row)
