"""``api.client.upload_measurements`` against a live server, and ``nas api-key``/``nas serve``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api.client import ApiClientError, upload_measurements
from api.config import Settings
from hwdb import DeviceSpec, HardwareDB, MeasurementIn
from nas._cli.main import app as cli
from search_spaces import get_space
from tests.api._helpers import SPACE, live_server
from tests.api.conftest import make_app


def test_client_upload_appears_in_get(db: HardwareDB, api_key: str) -> None:
    space = get_space(SPACE)
    archs = [space.to_string(space.random(i)) for i in range(7)]
    spec = DeviceSpec(name="laptop-t1", family="cpu", threads=1, hardware="test CPU")
    rows = [
        MeasurementIn("laptop-t1", SPACE, a, median=2.0 + i, protocol="rr", n_runs=30)
        for i, a in enumerate(archs)
    ]
    with live_server(make_app(db, Settings())) as url:
        out = upload_measurements(url, api_key, spec, rows, chunk_size=3)
        assert out == {
            "device": "laptop-t1", "received": 7, "inserted": 7, "existing": 0, "requests": 3,
        }  # fmt: skip
        replay = upload_measurements(url, api_key, spec, rows, chunk_size=3)  # same keys
        assert replay == {**out, "inserted": 0, "existing": 7}  # replayed: nothing new stored
        again = upload_measurements(url, api_key, spec, rows, chunk_size=4)  # new keys
        assert again["inserted"] == 0 and again["existing"] == 7
        got = httpx.get(f"{url}/v1/devices/laptop-t1/measurements").json()
        assert got["count"] == 7 and {r["arch"] for r in got["data"]} == set(archs)
        with pytest.raises(ApiClientError, match="invalid or revoked"):
            upload_measurements(url, "nas_wrong", spec, rows)
        bad = [MeasurementIn("laptop-t1", SPACE, "|nonsense|", median=1.0)]
        with pytest.raises(ApiClientError, match=r"body\.measurements\.0\.arch"):
            upload_measurements(url, api_key, spec, bad)


def test_upload_keeps_the_servers_device_and_refuses_other_settings(
    db: HardwareDB, api_key: str
) -> None:
    """An upload used to replace the server's device record with the measuring machine's: a
    catalog device lost its datasheet entry, and a 2-thread run re-labelled a 1-thread device."""
    space = get_space(SPACE)
    arch = space.to_string(space.random(0))
    db.upsert_device(
        DeviceSpec(
            name="orin3",
            family="jetson",
            runtime="torch",
            provenance="catalog",
            attributes={"catalog": "jetson-orin-nano"},
        )
    )
    db.upsert_device(DeviceSpec(name="cpu1", family="cpu", threads=1))
    local = DeviceSpec(name="orin3", family="cpu", hardware="AMD EPYC", runtime="torch",
                       threads=1, attributes={"device_type": "cpu"})  # fmt: skip
    with live_server(make_app(db, Settings())) as url:
        out = upload_measurements(
            url, api_key, local, [MeasurementIn("orin3", SPACE, arch, median=3.0)]
        )
        assert out["inserted"] == 1
        two = DeviceSpec(name="cpu1", family="cpu", threads=2)
        with pytest.raises(ApiClientError, match="stored with threads 1, not 2") as exc:
            upload_measurements(url, api_key, two, [MeasurementIn("cpu1", SPACE, arch, median=1.0)])
        assert exc.value.status == 409
        four = DeviceSpec(name="orin3", family="cpu", runtime="torch", threads=4)
        with pytest.raises(ApiClientError, match="stored with threads 1, not 4"):  # filled in
            upload_measurements(
                url, api_key, four, [MeasurementIn("orin3", SPACE, arch, median=1.0)]
            )
    kept = db.get_device("orin3")
    assert kept.threads == 1 and kept.runtime == "torch"  # the open setting, from the upload
    assert kept.attributes == {"catalog": "jetson-orin-nano"} and kept.provenance == "catalog"
    assert kept.hardware != "AMD EPYC" and kept.family == "jetson"
    assert db.get_device("cpu1").threads == 1 and db.measurements(device="cpu1") == []


def test_api_key_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'keys.sqlite'}"
    monkeypatch.setenv("NAS_DATABASE_URL", url)
    runner = CliRunner()
    # long enough that a random token never contains it by chance ("ci" did, ~1% of runs)
    name = "ci-deploy-bot"
    missing = runner.invoke(cli, ["api-key", "create", name, "--json"])
    assert missing.exit_code != 0 and not (tmp_path / "keys.sqlite").exists()  # a typo'd --db
    HardwareDB(url).close()  # what `nas hwdb init` creates
    created = runner.invoke(cli, ["api-key", "create", name, "--json"])
    assert created.exit_code == 0, created.output
    token = json.loads(created.output)["token"]
    with HardwareDB(url) as db:
        assert db.verify_api_key(token) is not None
        assert name not in token and token not in str(db.list_api_keys())
    listed = json.loads(runner.invoke(cli, ["api-key", "list", "--json"]).output)
    assert [k["name"] for k in listed] == [name] and listed[0]["active"] is True
    assert runner.invoke(cli, ["api-key", "revoke", name]).exit_code == 0
    with HardwareDB(url) as db:
        assert db.verify_api_key(token) is None
    help_text = runner.invoke(cli, ["serve", "--help"]).output
    assert "127.0.0.1" in help_text and "--port" in help_text
