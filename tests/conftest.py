"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The public data folder: ``NAS_SHARED_DATA`` or ``../shared/data`` beside the repo."""
    return Path(os.environ.get("NAS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared public data; fails (never skips) in CI when missing."""
    path = shared_data_dir()
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared data not found at {path} (set NAS_SHARED_DATA)")
        pytest.skip(f"shared data not found at {path} (set NAS_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a real PostgreSQL server (``NAS_TEST_POSTGRES_URL``); required in CI."""
    url = os.environ.get("NAS_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("NAS_TEST_POSTGRES_URL is not set in CI")
        pytest.skip("NAS_TEST_POSTGRES_URL not set")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite database file URL."""
    yield f"sqlite:///{tmp_path / 'hwdb.sqlite'}"


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Tests run single-threaded: tiny forward passes are faster and CI has 2 cores."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trace_store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store of traced operator tables per test run, shared by the xdist workers (their
    base temp folders are siblings), never the user's own."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "trace-store"


@pytest.fixture(scope="session", autouse=True)
def _isolated_trace_store(trace_store_dir: Path) -> Iterator[None]:
    """Never touch the user's trace store from tests. Session-scoped, so it is in place before
    module-scoped fixtures run (some of them meta-train predictors, which trace)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAS_TRACE_CACHE", str(trace_store_dir))
        yield


@pytest.fixture(autouse=True)
def _no_db_option_left() -> Iterator[None]:
    """A test that runs the CLI's app without ``nas._cli.main.main`` (which resets it) must
    not leave its ``--db`` to the next test's suggested commands."""
    yield
    from nas._cli._common import set_db_option

    set_db_option(None)


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's real database from tests."""
    monkeypatch.setenv("NAS_DATABASE_URL", f"sqlite:///{tmp_path / 'default-hwdb.sqlite'}")
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "nas-home"))
    # the user data folder (the service's searches of a PostgreSQL database live there)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run every test that touches the one PostgreSQL test database on one xdist worker.

    Those tests reset the database's schema, so two of them must never overlap; under
    ``pytest -n N --dist loadgroup`` they share the group ``postgres`` (without xdist the
    marker does nothing).
    """
    for item in items:
        if item.get_closest_marker("postgres") or "postgres_url" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(pytest.mark.xdist_group("postgres"))
