"""`nas measure --server URL --api-key KEY` posts its rows to a live server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.config import Settings
from hwdb import HardwareDB
from nas._cli.main import main
from tests.api._helpers import live_server
from tests.api.conftest import make_app


def test_measured_upload_appears_in_get(
    db: HardwareDB,
    api_key: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import httpx

    monkeypatch.setenv("NAS_DATABASE_URL", f"sqlite:///{tmp_path / 'local.sqlite'}")
    with live_server(make_app(db, Settings())) as url:
        argv = [
            "measure", "--space", "nasbench201", "--device-name", "edge-box-t1", "--n", "2",
            "--threads", "1", "--rounds", "2", "--prime", "0", "--server", url,
            "--api-key", api_key, "--json",
        ]  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        out = json.loads(capsys.readouterr().out)
        assert out["upload"]["inserted"] == 2
        listed = httpx.get(f"{url}/v1/devices/edge-box-t1/measurements").json()
    assert {row["arch"] for row in listed["data"]} == set(out["measured"])


def test_server_without_key_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["measure", "--space", "nasbench201", "--device-name", "x", "--n", "1",
              "--server", "http://127.0.0.1:9"])  # fmt: skip
    assert exc.value.code == 2
    assert "--api-key" in capsys.readouterr().err
