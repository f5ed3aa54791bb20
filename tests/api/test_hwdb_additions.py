"""The hwdb methods the API added: API keys (hashed), count_measurements, ping."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from hwdb import DuplicateError, HardwareDB, NotFoundError
from hwdb._apikeys import hash_token
from tests.api._helpers import SPACE, TARGET


def test_api_keys_are_stored_hashed_and_revocable(sqlite_url: str) -> None:
    with HardwareDB(sqlite_url) as db:
        key, token = db.create_api_key("host-a")
        assert token.startswith("nas_") and len(token) > 40 and key.active
        with pytest.raises(DuplicateError):
            db.create_api_key("host-a")
        with pytest.raises(ValueError, match="`name`"):
            db.create_api_key("bad name!")
        assert db.verify_api_key(token) == key
        assert db.verify_api_key(token + "x") is None
        assert db.verify_api_key("") is None
        revoked = db.revoke_api_key("host-a")
        assert not revoked.active and db.verify_api_key(token) is None
        assert db.revoke_api_key("host-a").revoked_at == revoked.revoked_at
        with pytest.raises(NotFoundError):
            db.revoke_api_key("nobody")
        assert [k.name for k in db.list_api_keys()] == ["host-a"]
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT key_hash FROM api_key")).scalar_one()
    engine.dispose()
    assert stored == hash_token(token) and token not in stored


def test_count_measurements_and_ping(db: HardwareDB) -> None:
    db.ping()
    total = db.count_measurements()
    assert total == len(db.measurements(limit=10_000))
    per_device = db.count_measurements(space=SPACE, device=TARGET, metric="latency_ms")
    assert per_device * 5 == total
    assert db.count_measurements(device=TARGET, distinct_archs=True) == len(
        db.latency_table(SPACE)[TARGET].dropna()
    )
    assert db.count_measurements(space="fbnet") == 0
