"""Searches survive a restart (``<search_out_dir>/<id>/job.json``), and a cancelled search keeps
the front of the trials it finished."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import platformdirs
import pytest
from fastapi.testclient import TestClient
from pydantic_core import to_jsonable_python

from api._searches import SearchJob, SearchManager
from api.config import Settings
from api.schemas import SearchCreate
from hwdb import HardwareDB
from tests.api._helpers import SPACE, TARGET
from tests.api._helpers import wait_for_search as _wait
from tests.api.conftest import make_app

#: A search's record in its folder.
RECORD = "job.json"


def _search(**extra: Any) -> dict[str, Any]:
    return {"space": SPACE, "devices": [TARGET], "accuracy": "proxy:params", "seed": 3, **extra}


class _Held:
    """Wraps the accuracy objectives the API builds: the ``hold_at``-th batch it scores is
    scored, then held until the search is cancelled (the server's cancel or its shutdown),
    so that a search is stopped after a known number of finished generations."""

    def __init__(self, hold_at: int) -> None:
        self.hold_at, self.calls, self.held = hold_at, 0, threading.Event()

    def wrap(self, real: Any, should_stop: Any) -> Any:
        held = self

        class Objective:
            name = real.name

            def evaluate(self, archs: list[str]) -> Any:
                values = real.evaluate(archs)  # before the cancel: the real one checks it too
                held.calls += 1
                if held.calls == held.hold_at:
                    held.held.set()
                    deadline = time.monotonic() + 120
                    while not should_stop() and time.monotonic() < deadline:
                        time.sleep(0.01)
                return values

        return Objective()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Held]:
    import nas.search

    real = nas.search.make_accuracy_objective
    spy = _Held(hold_at=3)

    def make(spec: str, **kwargs: Any) -> Any:
        return spy.wrap(real(spec, **kwargs), kwargs["should_stop"])

    monkeypatch.setattr(nas.search, "make_accuracy_objective", make)
    yield spy


def test_each_database_gets_its_own_search_folder(tmp_path: Path) -> None:
    """Searches used to live in memory only; now one folder per database (review: a shared
    default folder let one service read and cancel another database's searches)."""
    from api.config import search_dir

    # tests/conftest.py points NAS_DATABASE_URL at tmp_path/default-hwdb.sqlite
    assert search_dir(None, None) == str(tmp_path / "default-hwdb.sqlite.searches")
    assert search_dir(None, f"sqlite:///{tmp_path / 'a.sqlite'}") == str(
        tmp_path / "a.sqlite.searches"
    )
    pg = [search_dir(None, f"postgresql://u:p@db.example/{name}") for name in ("one", "two")]
    users = Path(platformdirs.user_data_dir("nas")) / "searches"
    assert pg[0] != pg[1] and all(Path(d).parent == users for d in pg)  # type: ignore[arg-type]
    assert "p@" not in pg[0] and "db.example-one-" in pg[0]  # type: ignore[operator]
    # where the database is, never its credentials: a rotated password keeps the folder
    secret = search_dir(None, "postgresql://u:s3cret@db.example:5432/one?sslpassword=TOP")
    assert secret == search_dir(None, "postgresql://u:new@db.example:5432/one")
    assert "s3cret" not in str(secret) and "TOP" not in str(secret)
    assert search_dir(None, "sqlite://") is None  # in memory: nothing outlives the process
    assert search_dir("off", None) is None and search_dir(" OFF ", None) is None
    assert search_dir(str(tmp_path / "mine"), None) == str(tmp_path / "mine")
    assert Settings.from_env({"NAS_API_SEARCH_OUT_DIR": ""}).search_out_dir is None


def test_two_services_never_share_a_search_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Review: a second service on the folder read the first one's searches and rewrote its
    running ones as cancelled. Now the folder is locked: the second keeps its searches in
    memory and says so; once the first is gone, the folder is usable again."""
    sid = _record(tmp_path, created=datetime(2024, 5, 1, tzinfo=UTC), status="running")
    first = SearchManager(out_dir=str(tmp_path))
    try:
        with caplog.at_level(logging.WARNING, logger="api.searches"):
            second = SearchManager(out_dir=str(tmp_path))
        assert second.out_dir is None and second.recent(limit=5)[1] == 0
        assert any("another running service" in r.getMessage() for r in caplog.records)
        second.shutdown()
    finally:
        first.shutdown()
    third = SearchManager(out_dir=str(tmp_path))
    try:
        assert third.out_dir == str(tmp_path) and third.get(sid) is not None
    finally:
        third.shutdown()


def test_a_record_with_a_naive_time_is_read_as_utc(tmp_path: Path) -> None:
    """Review: a hand-edited record with a naive timestamp stopped the service from starting."""
    sid = _record(tmp_path, created=datetime(2024, 5, 1, tzinfo=UTC), status="running")
    path = tmp_path / sid / RECORD
    path.write_text(path.read_text().replace("+00:00", "").replace("Z", ""))
    older = _record(tmp_path, created=datetime(2024, 4, 1, tzinfo=UTC))
    manager = SearchManager(out_dir=str(tmp_path))
    try:
        job = manager.get(sid)
        assert job is not None and job.status == "cancelled"
        assert job.created_at.tzinfo is not None
        assert [j.id for j in manager.recent(limit=5)[0]] == [sid, older]
    finally:
        manager.shutdown()


def test_a_finished_search_survives_a_restart(
    db: HardwareDB, auth: dict[str, str], tmp_path: Path
) -> None:
    settings = Settings()
    with TestClient(make_app(db, settings)) as first:
        sid = first.post("/v1/searches", json=_search(trials=12, population=4), headers=auth)
        sid = sid.json()["id"]
        assert _wait(first, sid)["status"] == "completed"
        before = first.get(f"/v1/searches/{sid}", headers=auth).json()
        listed = first.get("/v1/searches", headers=auth).json()
        folder = Path(str(first.app.state.services.searches.out_dir))  # type: ignore[attr-defined]
    assert folder.name.endswith(".sqlite.searches")  # the (default) database's own folder
    record = folder / sid / RECORD
    assert json.loads(record.read_text())["status"] == "completed"
    assert before["front"] and all(p["objective"] == "proxy:params" for p in before["front"])

    with TestClient(make_app(db, settings)) as second:  # a restarted server
        after = second.get(f"/v1/searches/{sid}", headers=auth)
        assert after.status_code == 200, after.text
        assert after.json() == before  # front, contenders, hypervolume, warnings, times
        assert after.json()["owner"] == "tests"
        assert second.get(f"/v1/searches/{sid}").json()["owner"] is None  # anonymous reader
        assert second.get("/v1/searches", headers=auth).json() == listed
        assert second.get("/v1/searches").json()["data"][0]["owner"] is None
        other = {"X-API-Key": db.create_api_key("someone-else")[1]}
        assert second.delete(f"/v1/searches/{sid}", headers=other).status_code == 403
        mine = second.delete(f"/v1/searches/{sid}", headers=auth)
        assert mine.status_code == 200 and mine.json()["status"] == "completed"


def test_a_cancelled_search_keeps_the_front_of_its_finished_trials(
    client: TestClient, auth: dict[str, str], held: _Held
) -> None:
    """A cancelled search used to report ``front`` ``null`` whatever it had finished."""
    created = client.post("/v1/searches", json=_search(trials=200, population=10), headers=auth)
    sid = created.json()["id"]
    assert held.held.wait(120)  # its third generation is scored
    assert client.delete(f"/v1/searches/{sid}", headers=auth).status_code == 200
    done = _wait(client, sid)
    assert done["status"] == "cancelled" and done["error"] is None
    assert 0 < done["n_trials"] < 200 and done["progress"]["done"] == done["n_trials"]
    assert done["front"] and done["front_size"] == len(done["front"])
    assert all(p["objective"] == "proxy:params" for p in done["front"] + done["contenders"])
    assert done["hypervolume"] is not None and 0 < done["hypervolume"] <= 1
    out = Path(str(client.app.state.services.searches.out_dir)) / sid  # type: ignore[attr-defined]
    pareto = json.loads((out / "pareto.json").read_text())  # as the CLI leaves it on Ctrl-C
    assert [p["arch"] for p in pareto] == [p["arch"] for p in done["front"]]


def test_searches_the_server_did_not_finish_read_cancelled_after_a_restart(
    db: HardwareDB, auth: dict[str, str], held: _Held
) -> None:
    """A search running when the server died reads ``cancelled`` with an error saying why; one
    a clean shutdown cancelled keeps its partial front across the restart."""
    settings = Settings()
    with TestClient(make_app(db, settings)) as first:
        created = first.post("/v1/searches", json=_search(trials=200, population=10), headers=auth)
        sid = created.json()["id"]
        assert held.held.wait(120)
        folder = first.app.state.services.searches.out_dir  # type: ignore[attr-defined]
        record = Path(str(folder)) / sid / RECORD
        assert json.loads(record.read_text())["status"] == "running"
        # the first server dies (its folder lock goes with the process); another starts
        first.app.state.services.searches.release_folder()  # type: ignore[attr-defined]
        with TestClient(make_app(db, settings)) as crashed:
            body = crashed.get(f"/v1/searches/{sid}", headers=auth).json()
            assert body["status"] == "cancelled" and body["front"] is None
            assert "server stopped before the search finished" in body["error"]
            assert "it was running" in body["error"]
            assert body["finished_at"] is not None and body["owner"] == "tests"
            assert body["progress"]["total"] == 200 and body["request"]["population"] == 10
            assert crashed.get("/v1/searches", params={"status": "running"}).json()["count"] == 0
            assert json.loads(record.read_text())["status"] == "cancelled"
    # the first server shut down cleanly: it cancelled the search and kept its partial front
    with TestClient(make_app(db, settings)) as restarted:
        body = restarted.get(f"/v1/searches/{sid}").json()
        assert body["status"] == "cancelled" and body["owner"] is None
        assert body["error"].startswith("the server stopped before the search finished")
        assert body["front"] and 0 < body["n_trials"] < 200


def _record(folder: Path, *, created: datetime, status: str = "completed") -> str:
    """Write a record of a finished (or ``status``) search under ``folder`` as a server does."""
    job = SearchJob(
        id=f"{int(created.timestamp()):032x}",
        request=SearchCreate.model_validate(_search(trials=4, population=2)),
        created_at=created,
        owner="tests",
        status=status,
        done=4,
    )
    if status not in ("queued", "running"):
        job.finished_at = created + timedelta(seconds=1)
        job.stored = {"n_trials": 4, "front_size": 0, "front": [], "contenders": []}
    path = folder / job.id / RECORD
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(to_jsonable_python(job.public())))
    return job.id


def test_unreadable_records_are_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    good = _record(tmp_path, created=t0)
    garbage = tmp_path / ("a" * 32) / RECORD
    garbage.parent.mkdir()
    garbage.write_text('{"id": "aaaa", "status": ')  # torn
    moved = _record(tmp_path, created=t0 + timedelta(hours=1))
    (tmp_path / moved).rename(tmp_path / ("b" * 32))  # a record in another search's folder
    bad = _record(tmp_path, created=t0 + timedelta(hours=2))
    text = (tmp_path / bad / RECORD).read_text().replace('"completed"', '"exploded"')
    (tmp_path / bad / RECORD).write_text(text)
    (tmp_path / ("c" * 32)).mkdir()  # no record: ignored
    (tmp_path / "notes").mkdir()  # not a search folder: ignored
    with caplog.at_level(logging.WARNING, logger="api.searches"):
        manager = SearchManager(out_dir=str(tmp_path))
    try:
        jobs, total = manager.recent(limit=10)
        assert [j.id for j in jobs] == [good] and total == 1
        skipped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(skipped) == 3, skipped
        assert all("skipping the unreadable search record" in m for m in skipped)
    finally:
        manager.shutdown()


def test_keep_forgets_the_oldest_records(tmp_path: Path) -> None:
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    interrupted = _record(tmp_path, created=t0, status="queued")
    ids = [_record(tmp_path, created=t0 + timedelta(hours=h)) for h in (1, 2, 3)]
    manager = SearchManager(out_dir=str(tmp_path), keep=2)
    try:
        jobs, total = manager.recent(limit=10)
        assert [j.id for j in jobs] == ids[:0:-1] and total == 2
        for forgotten in (interrupted, ids[0]):
            assert manager.get(forgotten) is None
            assert not (tmp_path / forgotten).exists()  # record, study and outputs
    finally:
        manager.shutdown()
    again = SearchManager(out_dir=str(tmp_path), keep=5)
    try:
        assert again.recent(limit=10)[1] == 2
    finally:
        again.shutdown()


def test_an_interrupted_record_is_rewritten_as_cancelled(tmp_path: Path) -> None:
    created = datetime(2024, 5, 1, tzinfo=UTC)
    sid = _record(tmp_path, created=created, status="running")
    manager = SearchManager(out_dir=str(tmp_path))
    try:
        job = manager.get(sid)
        assert job is not None and job.status == "cancelled" and job.owner == "tests"
        assert job.error is not None and "it was running" in job.error
        assert job.finished_at is not None and job.finished_at >= created
        stored = json.loads((tmp_path / sid / RECORD).read_text())
        assert stored["status"] == "cancelled" and stored["error"] == job.error
        assert manager.active() == 0
    finally:
        manager.shutdown()
