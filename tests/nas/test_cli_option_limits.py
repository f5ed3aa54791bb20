"""Option values past what the database or the service can hold are usage errors, refused
before anything is written (QA sweep, session 31: each used to end in a traceback, a stored
device that every `GET /v1/devices` then failed on, or a write before the refusal)."""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path

import pytest

from hwdb import DEVICE_BATCH_MAX, DEVICE_THREADS_MAX, DeviceSpec, HardwareDB
from search_spaces import WORKLOAD_LIMITS
from tests._cli import error_line, run_cli

HUGE = "99999999999999999999"  # past a 64-bit integer


def test_device_limits_are_the_workloads_and_the_columns() -> None:
    assert DEVICE_BATCH_MAX == WORKLOAD_LIMITS["batch_size"][1]
    for bad, field in (({"batch_size": DEVICE_BATCH_MAX + 1}, "batch_size"),
                       ({"threads": DEVICE_THREADS_MAX + 1}, "threads"),
                       ({"name": "lab/pi4"}, "name")):  # fmt: skip
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
        ("measure --space nasbench201 --device-name a/b --n 1", "--device-name must not contain"),
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
