"""Regression tests of `nas measure`: upload retry, --server validation, workload guard."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import nas._cli.measure as measure_cli
from hwdb import HardwareDB
from tests._cli import run_cli as _run

FAST = ["--rounds", "2", "--repeats", "1", "--warmup", "1", "--threads", "1",
        "--prime", "0", "--prime-seconds", "0"]  # fmt: skip


def test_failed_upload_is_retried_by_a_rerun(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.client
    from api.client import ApiClientError

    sent: list[list[dict[str, Any]]] = []

    def refuse(*_: Any, **__: Any) -> dict[str, Any]:
        raise ApiClientError("cannot reach http://127.0.0.1:1/v1/devices: connection refused")

    def accept(
        server: str, key: str, device: Any, rows: Sequence[dict[str, Any]]
    ) -> dict[str, Any]:
        sent.append(list(rows))
        return {"device": device.name, "received": len(rows), "inserted": len(rows)}

    argv = ["--db", sqlite_url, "measure", "--space", "nasbench201", "--device-name", "d1",
            "--n", "1", "--resolution", "16", "--server", "http://127.0.0.1:1", "--api-key", "K",
            "--json", *FAST]  # fmt: skip
    monkeypatch.setattr(measure_cli, "_check_key", lambda *_: None)  # the server went away later
    monkeypatch.setattr(api.client, "upload_measurements", refuse)
    code, _, err = _run(argv, capsys)
    note, error = err.splitlines()  # the created database holds the stored rows: named, kept
    assert note == f"note: created a new database {sqlite_url.removeprefix('sqlite:///')}"
    assert code == 1 and error.startswith("error: ") and "rerun" in error
    with HardwareDB(sqlite_url) as db:
        assert len(db.measurements(device="d1")) == 1  # stored locally
    monkeypatch.setattr(api.client, "upload_measurements", accept)
    code, out, _ = _run(argv, capsys)
    result = json.loads(out)
    assert code == 0 and result["rows_written"] == 0 and len(result["skipped"]) == 1
    assert len(sent) == 1 and [r["arch"] for r in sent[0]] == result["skipped"]
    assert result["upload"]["received"] == 1


@pytest.mark.parametrize("url", ["notaurl", "ftp://host", "http://", "http://h:notaport"])
def test_bad_server_url_is_refused_before_measuring(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "never.sqlite"
    argv = ["--db", f"sqlite:///{path}", "measure", "--space", "nasbench201", "--device-name",
            "d1", "--n", "1", "--server", url, "--api-key", "K", *FAST]  # fmt: skip
    code, out, err = _run(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and "--server" in err and "measured" not in out
    assert not path.exists()


def test_empty_api_key_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--api-key "$TOKEN"` with TOKEN unset used to measure and silently skip the upload."""
    argv = ["--db", f"sqlite:///{tmp_path / 'x.sqlite'}", "measure", "--space", "nasbench201",
            "--device-name", "d1", "--n", "1", "--server", "http://127.0.0.1:1", "--api-key", "",
            *FAST]  # fmt: skip
    code, _, err = _run(argv, capsys)
    assert code == 2 and "--api-key is empty" in err


@pytest.mark.parametrize(
    ("status", "hint"),
    [(401, "rerun the same command with a valid --api-key"), (422, "not uploaded")],
)
def test_a_rejected_upload_says_the_rows_are_kept_locally(
    status: int,
    hint: str,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key revoked while measuring (or a row the server rejects): the error says where the
    measurements are; rerunning the very same command cannot help, so it does not say so."""
    import api.client
    from api.client import ApiClientError

    def rejected(*_: Any, **__: Any) -> dict[str, Any]:
        raise ApiClientError(f"POST /v1/devices failed with HTTP {status}: no", status=status)

    monkeypatch.setattr(measure_cli, "_check_key", lambda *_: None)
    monkeypatch.setattr(api.client, "upload_measurements", rejected)
    argv = ["--db", sqlite_url, "measure", "--space", "nasbench201", "--device-name", "d2",
            "--n", "1", "--resolution", "16", "--server", "http://127.0.0.1:1", "--api-key", "K",
            *FAST]  # fmt: skip
    code, _, err = _run(argv, capsys)
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(errors) == 1 and f"HTTP {status}" in errors[0]
    assert "stored locally under device 'd2'" in errors[0] and hint in errors[0]
    assert "rerun the same command to upload" not in err


def test_other_resolution_on_existing_device_is_refused(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--db", sqlite_url, "measure", "--space", "nasbench201", "--device-name", "d1",
            "--n", "1", "--json", *FAST]  # fmt: skip
    assert _run([*base, "--resolution", "16"], capsys)[0] == 0
    code, _, err = _run([*base, "--resolution", "24", "--seed", "1"], capsys)
    assert code == 1 and err.count("\n") == 1 and "resolution=16" in err
    assert "under another device name" in err
    with HardwareDB(sqlite_url) as db:
        assert db.measured_workloads(space="nasbench201", device="d1")[0]["resolution"] == 16
        assert len(db.measured_workloads(space="nasbench201", device="d1")) == 1
    assert _run([*base, "--resolution", "16", "--seed", "1"], capsys)[0] == 0  # same: fine
