"""Fixtures of the API tests: a seeded SQLite database per test, a TestClient and an API key."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.config import Settings
from api.deps import get_db
from api.main import create_app
from hwdb import HardwareDB
from tests.api._helpers import SPACE, TARGET, seed_help_subset


@pytest.fixture(scope="session")
def seeded_db_file(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A SQLite file with a HELP slice and the meta-trained predictor for TARGET (built once)."""
    from predictors import get_adapted_predictor

    path = tmp_path_factory.mktemp("seed") / "hwdb.sqlite"
    with HardwareDB(f"sqlite:///{path}") as db:
        seed_help_subset(db, shared_data)
        get_adapted_predictor(db, space=SPACE, device=TARGET)  # stores the meta-trained model
    return path


@pytest.fixture
def db(seeded_db_file: Path, tmp_path: Path) -> Iterator[HardwareDB]:
    """A private copy of the seeded database."""
    path = tmp_path / "api.sqlite"
    shutil.copyfile(seeded_db_file, path)
    database = HardwareDB(f"sqlite:///{path}")
    yield database
    database.close()


@pytest.fixture
def api_key(db: HardwareDB) -> str:
    """A fresh API key's token."""
    return db.create_api_key("tests")[1]


@pytest.fixture
def settings() -> Settings:
    """Default settings (tests replace fields with dataclasses.replace)."""
    return Settings()


def make_app(db: HardwareDB, settings: Settings) -> FastAPI:
    """The app serving ``db`` (through the get_db dependency override)."""
    app = create_app(settings)
    app.dependency_overrides[get_db] = lambda: db
    return app


@pytest.fixture
def app(db: HardwareDB, settings: Settings) -> FastAPI:
    """The app over the test database."""
    return make_app(db, settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A TestClient (lifespan on)."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    """Headers carrying the API key."""
    return {"X-API-Key": api_key}
