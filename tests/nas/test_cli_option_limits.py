"""Option values past what the database or the service can hold are usage errors, refused
before anything is written (QA sweep, session 31: each used to end in a traceback, a stored
device that every `GET /v1/devices` then failed on, or a write before the refusal)."""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from hwdb import DEVICE_BATCH_MAX, DEVICE_THREADS_MAX, DeviceSpec, HardwareDB
from search_spaces import WORKLOAD_LIMITS
from tests._cli import error_line, run_cli

HUGE = "99999999999999999999"  # past a 64-bit integer


def test_device_limits_are_the_workloads_and_the_columns() -> None:
    assert DEVICE_BATCH_MAX == WORKLOAD_LIMITS["batch_size"][1]
    for bad, field in (({"batch_size": DEVICE_BATCH_MAX + 1}, "batch_size"),
                       ({"threads": DEVICE_THREADS_MAX + 1}, "threads")):  # fmt: skip
        with pytest.raises(ValueError, match=f"`{field}` must"):
            DeviceSpec(**{"name": "d", **bad})  # type: ignore[arg-type]
    DeviceSpec("d", batch_size=DEVICE_BATCH_MAX, threads=DEVICE_THREADS_MAX)


ADD = "device add z --catalog jetson-nano"
ONBOARD = "device onboard b --space nasbench201"
MEASURE = "measure --space nasbench201 --device-name m --n 1"
SEARCH = "search --space nasbench201 --device pixel3"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (f"{ADD} --batch {HUGE}", "--batch must be at most 65,536"),
        (f"{ADD} --batch 70000", "--batch must be at most 65,536"),
        ("device add lab/pi4 --catalog jetson-nano", "NAME must not contain '/'"),
        ("device add '' --catalog jetson-nano", "NAME must not be empty"),
        ("device onboard '' --space nasbench201", "NAME must not be empty"),
        (f"{ONBOARD} --threads {HUGE}", "--threads must be at most"),
        (f"{ONBOARD} --k -1", "--k must be greater than or equal to 0"),
        (f"{MEASURE} --threads {HUGE}", "--threads must be at most"),
        (f"{MEASURE} --batch {HUGE}", "--batch must be at most 65,536"),
        (f"{MEASURE} --space mnasnet --resolution {HUGE}", "--resolution must be at most"),
        ("serve --log-level nope", "--log-level must be one of"),
        ("api-key create ''", "NAME must be"),
        (f"{SEARCH} --budget-z inf", "--budget-z must be a finite"),
        (f"{SEARCH} --accuracy nope", "--accuracy must be"),
    ],
)
def test_out_of_range_options_are_one_usage_line_and_write_nothing(
    command: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    HardwareDB(url).close()  # an empty database: nothing may be added to it
    code, _, err = run_cli(["--db", url, *shlex.split(command)], capsys)
    assert code == 2, err
    assert message in error_line(err)
    assert err.strip().count("\n") == 0, err  # the error alone: no device line before it
    with HardwareDB(url, create=False) as db:
        assert db.list_devices() == [] and db.list_api_keys() == []
    with sqlite3.connect(tmp_path / "db.sqlite") as con:  # no predictor trained and stored
        assert con.execute("select count(*) from predictor_artifact").fetchone() == (0,)


def test_a_db_option_that_is_no_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["--db", "not a url", "hwdb", "stats"], capsys)
    assert code == 2 and "--db / NAS_DATABASE_URL is not a valid database URL" in error_line(err)


def test_only_a_new_device_is_refused_a_slash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No REST route can address a name with '/' (it is decoded before routing), so a new
    device may not take one; a device an older release stored under one can still be written
    to and restored from an export (review, session 31)."""
    from hwdb import MeasurementIn
    from tests.hwdb._helpers import NB201_0

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with HardwareDB(url) as db:
        with pytest.raises(ValueError, match="must not contain '/'"):
            db.upsert_device(DeviceSpec("lab/pi4"))
        with db._engine.begin() as conn:  # as an older release could have stored it
            conn.execute(sqlite_insert_device(), {"n": "lab/old"})
        db.upsert_device(DeviceSpec("lab/old", threads=2))  # stored already: still writable
        db.add_measurements([MeasurementIn("lab/old", "nasbench201", NB201_0, median=1.0)])
        assert db.get_device("lab/old").threads == 2
    new = "measure --space nasbench201 --device-name lab/new --n 1 --prime 0"
    code, _, err = run_cli(["--db", url, *new.split()], capsys)
    assert code == 1 and "must not contain '/'" in error_line(err)
    export = tmp_path / "all.parquet"
    assert run_cli(["--db", url, "hwdb", "export", "--out", str(export)], capsys)[0] == 0
    assert run_cli(["--db", url, "hwdb", "import", "parquet", str(export)], capsys)[0] == 0


def sqlite_insert_device() -> Any:
    from sqlalchemy import text

    return text(
        "INSERT INTO device (name, family, hardware, runtime, precision, batch_size, provenance,"
        " source, attributes, created_at) VALUES (:n, 'cpu', '', 'torch', 'fp32', 1, 'measured',"
        " '', '{}', CURRENT_TIMESTAMP)"
    )
