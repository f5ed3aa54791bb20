"""Regression tests of the README walk-through QA (session 25) over ``nas device``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwdb import HardwareDB
from tests._cli import run_cli as _run

# ------------------------------------------------------------------ M3: --runtime names


@pytest.mark.parametrize("runtime", ["foo", "torhc", "tensorflw", "tensorrtt"])
def test_add_refuses_an_unknown_runtime(
    runtime: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo used to be priced as a fused graph (about 2x off), silently."""
    file = tmp_path / "d.sqlite"
    argv = ["--db", f"sqlite:///{file}", "device", "add", "bad", "--catalog", "jetson-nano",
            "--runtime", runtime]  # fmt: skip
    code, out, err = _run(argv, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: --runtime must be one of ") and err.count("\n") == 1
    assert all(name in err for name in ("torch", "tensorflow", "tensorrt", "unknown"))
    assert f"got {runtime!r}" in err
    assert not file.exists()  # nothing was written


def test_add_accepts_every_known_runtime_in_any_case(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from predictors.zeroshot import KNOWN_RUNTIMES

    assert {"torch", "tensorflow", "tensorrt", "tflite", "onnxruntime", "unknown"} <= set(
        KNOWN_RUNTIMES
    )
    db = f"sqlite:///{tmp_path / 'd.sqlite'}"
    for i, runtime in enumerate([*KNOWN_RUNTIMES, "TensorRT", " tflite "]):
        argv = ["--db", db, "device", "add", f"d{i}", "--catalog", "jetson", "--runtime",
                runtime, "--json"]  # fmt: skip
        code, out, err = _run(argv, capsys)
        assert code == 0, err
        assert json.loads(out)["runtime"] == runtime.strip().lower()


# ------------------------------------------------------------------ Low 1: unknown catalog entry


def test_unknown_catalog_entry_is_a_usage_error_without_the_empty_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "n1.sqlite"
    argv = ["--db", f"sqlite:///{file}", "device", "add", "x", "--catalog", "nope"]
    code, _, err = _run(argv, capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: --catalog: unknown catalog device 'nope' (candidates: ")
    assert "jetson-nano" in err and "is empty" not in err and "hwdb init" not in err
    assert not file.exists()


def test_onboard_unknown_catalog_entry_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--db", f"sqlite:///{tmp_path / 'o.sqlite'}", "device", "onboard", "x", "--space",
            "nasbench201", "--catalog", "nope"]  # fmt: skip
    code, _, err = _run(argv, capsys)
    assert code == 2 and err.startswith("error: --catalog: unknown catalog device 'nope'")
    assert "is empty" not in err


# ------------------------------------------------------------------ Low 2: --target-mape


@pytest.mark.parametrize("value", ["5", "1", "1.0", "10"])
def test_target_mape_is_a_fraction(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "t.sqlite"
    argv = ["--db", f"sqlite:///{file}", "device", "onboard", "x", "--space", "nasbench201",
            "--target-mape", value]  # fmt: skip
    code, _, err = _run(argv, capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: --target-mape is a fraction") and "0.05 for 5%" in err
    assert not file.exists()


def test_target_mape_below_one_passes_the_option_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--db", f"sqlite:///{tmp_path / 't.sqlite'}", "device", "onboard", "x", "--space",
            "nasbench201", "--target-mape", "0.05"]  # fmt: skip
    code, _, err = _run(argv, capsys)
    assert code == 1 and "--target-mape" not in err  # fails later: the database is empty


# ------------------------------------------------------------------ Low 12: onboard NAME


def test_onboard_names_its_positional_argument_for_another_configuration(
    sqlite_url: str,
) -> None:
    """The message named `nas measure`'s --device-name; onboard takes NAME positionally."""
    from hwdb import DeviceSpec
    from nas import NasError
    from nas._cli.device import _measure_fn
    from nas.measure import MeasureConfig

    with HardwareDB(sqlite_url) as db:
        db.upsert_device(DeviceSpec(name="qa-onb", threads=1, source="elsewhere"))
        measure = _measure_fn(db, "nasbench201", "qa-onb", MeasureConfig(threads=2))
        with pytest.raises(NasError) as info:
            measure(["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    msg = str(info.value)
    assert msg.startswith("device 'qa-onb' already exists with threads=1")
    assert "--device-name" not in msg and "under another device name" in msg
