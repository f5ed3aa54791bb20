"""Regression tests of the README walk-through QA (session 25) over ``nas predictor``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictors import NoSourceDevicesError, source_devices

SPACE = "nasbench201"


def _run(args: list[str]) -> int:
    from nas._cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def _with_sparse(table: pd.DataFrame, name: str = "my-board", rows: int = 2) -> pd.DataFrame:
    """``table`` plus a device measured on its first ``rows`` archs only."""
    out = table.copy()
    col = pd.Series(np.nan, index=out.index)
    col.iloc[:rows] = 1.0
    out[name] = col
    out.attrs = dict(table.attrs)
    return out


# ------------------------------------------------------------------ H1: sparse source devices


def test_source_devices_skip_a_sparse_device(nb201_table: pd.DataFrame) -> None:
    """A device with two rows is no meta-training source, as in `train`/`adapt`/`predict`;
    it used to be one, and meta-training then failed naming it."""
    table = _with_sparse(nb201_table)
    train, valid = source_devices(table, SPACE, "1080ti_1")  # not HELP's: every other device
    assert train == ["silver_4114", "pixel3", "titanx_1", "gold_6226"] and valid == []
    train, valid = source_devices(table, SPACE, "gold_6226")  # HELP's test device: its lists
    assert (train, valid) == (["1080ti_1", "silver_4114", "pixel3"], ["titanx_1"])


def test_source_devices_refuse_when_only_sparse_devices_remain(
    nb201_table: pd.DataFrame,
) -> None:
    table = _with_sparse(nb201_table[["1080ti_1"]].copy())
    table.attrs = dict(nb201_table.attrs)
    with pytest.raises(NoSourceDevicesError, match="no other device with enough measurements"):
        source_devices(table, SPACE, "1080ti_1")


@pytest.fixture
def sparse_db_url(nb201_db_url: str, tmp_path: Path) -> str:
    """A copy of the four-device database plus ``my-board`` with two imported rows."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn

    path = tmp_path / "sparse.sqlite"
    shutil.copyfile(nb201_db_url.removeprefix("sqlite:///"), path)
    url = f"sqlite:///{path}"
    with HardwareDB(url) as db:
        archs = db.latency_table(SPACE, devices=["pixel3"]).index[:2]
        db.upsert_device(DeviceSpec(name="my-board", provenance="imported"))
        db.add_measurements(
            [MeasurementIn(device="my-board", space=SPACE, arch=a, median=5.0) for a in archs]
        )
    return url


def test_evaluate_ignores_another_sparse_device(
    sparse_db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """H1 end to end (1080ti_1 is a HELP training device, so every other device is a source),
    and the text prints the MAPE in percent while --json keeps the fraction (Low 2)."""
    args = ["--db", sparse_db_url, "predictor", "evaluate", "--space", SPACE, "--device",
            "1080ti_1", "--predictor", "flops", "--seeds", "1"]  # fmt: skip
    assert _run([*args, "--json"]) == 0, capsys.readouterr().err
    mape = json.loads(capsys.readouterr().out)["mape"]
    assert 0 < mape < 1  # a fraction, as documented
    assert _run(args) == 0
    out = capsys.readouterr().out
    assert f"MAPE {100 * mape:.1f}%" in out, out
    assert not re.search(r"MAPE 0\.\d{3},", out)


# ------------------------------------------------------------------ Low 5: --device help


@pytest.mark.parametrize("command", ["adapt", "predict", "evaluate"])
def test_device_help_says_patterns_are_matched(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert _run(["predictor", command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Device name in the database" not in text
    assert "pattern" in text and "nas search --device" in text and "family" in text
    assert ("no measured match" in text) == (command == "predict")  # only predict: zero-shot
