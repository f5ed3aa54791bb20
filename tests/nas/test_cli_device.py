"""`nas device ...` through the real entry point: exit codes, JSON, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwdb import HardwareDB
from nas._cli.main import main
from tests._cli import run_cli as _run


def test_catalog_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["device", "catalog", "--json"], capsys)
    assert code == 0
    entries = json.loads(out)
    assert {"jetson-nano", "jetson-orin-nano", "h100-sxm"} <= {e["name"] for e in entries}
    assert all(e["citations"] for e in entries)
    code, out, _ = _run(["device", "catalog"], capsys)
    assert code == 0 and "jetson-orin-nano" in out


def test_tables_keep_their_width_when_stdout_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # rich would lay a pipe or log out for 80 columns and fold every long cell
    monkeypatch.delenv("COLUMNS", raising=False)
    _, out, _ = _run(["device", "catalog"], capsys)
    rows = [line for line in out.splitlines() if "jetson-nano " in line]
    assert len(rows) == 1 and "NVIDIA Jetson Nano 4GB" in rows[0] and len(rows[0]) > 80
    monkeypatch.setenv("COLUMNS", "80")  # asked for: kept
    _, out, _ = _run(["device", "catalog"], capsys)
    assert max(len(line) for line in out.splitlines()) <= 80


def test_add_from_catalog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'd.sqlite'}"
    argv = ["--db", db, "device", "add", "nano1", "--catalog", "Jetson Nano", "--precision",
            "fp16", "--batch", "4", "--json"]  # fmt: skip
    code, out, _ = _run(argv, capsys)
    assert code == 0
    assert json.loads(out) == {"name": "nano1", "catalog": "jetson-nano", "precision": "fp16",
                               "batch_size": 4, "family": "jetson",
                               "runtime": "unknown"}  # fmt: skip
    with HardwareDB(db) as h:
        dev = h.get_device("nano1")
    assert dev.provenance == "catalog" and "DA-09366-001" in dev.source
    code, out, _ = _run(["--db", db, "device", "add", "orin", "--catalog", "jetson"], capsys)
    assert code == 0 and "jetson-orin-nano" in out
    assert "runtime unknown: priced as the mean of the eager and pruned estimates" in " ".join(
        out.split()
    )
    argv = ["--db", db, "device", "add", "tf", "--catalog", "jetson", "--runtime", "tensorflow"]
    code, out, _ = _run(argv, capsys)
    assert code == 0 and "runtime tensorflow: priced as the pruned graph, unfused" in " ".join(
        out.split()
    )
    argv = ["--db", db, "device", "add", "h1", "--catalog", "h100", "--runtime", "TORCH", "--json"]
    code, out, _ = _run(argv, capsys)
    assert code == 0 and json.loads(out)["runtime"] == "torch"
    # review: tf32 is a precision of hwdb and the API, priced at the entry's fp32 figure
    argv = ["--db", db, "device", "add", "a1", "--catalog", "a100-sxm", "--precision", "tf32"]
    code, out, _ = _run([*argv, "--json"], capsys)
    assert code == 0 and json.loads(out)["precision"] == "tf32"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["device", "add", "x", "--catalog", "no-such-board"], 2, "unknown catalog device"),
        (["device", "add", "x", "--catalog", "jetson", "--precision", "fp8"], 2, "--precision"),
        (["device", "add", "x", "--catalog", "jetson", "--batch", "0"], 2, "--batch"),
        (["device", "add", "x", "--catalog", "jetson", "--runtime", "tensor rt"], 2, "--runtime"),
        (["device", "add", "x"], 2, "--catalog"),
        (["device", "onboard", "x", "--space", "nasbench201", "--k", "-1"], 2, "--k"),
        (["device", "onboard", "x", "--space", "nope"], 2, "unknown search space"),
        (["device", "onboard", "x", "--space", "nasbench201"], 1, "not in the database"),
        # as nas measure, and before the predictor loads (which fails on this database)
        (
            ["device", "onboard", "x", "--space", "nasbench201", "--runtime", "onnxruntime"]
            + ["--precision", "fp16"],
            2,
            "--precision fp16 needs --runtime torch",
        ),
        (
            ["device", "onboard", "x", "--space", "nasbench201", "--runtime", "tvm"],
            2,
            "--runtime must be one of torch, onnxruntime, got 'tvm'",
        ),
    ],
)
def test_errors_are_one_line(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = _run(argv, capsys)
    assert rc == code
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_warnings_print_as_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    from nas._cli import device

    def noisy(as_json: bool) -> None:
        warnings.warn("the catalog is old\nsecond line", UserWarning, stacklevel=1)

    monkeypatch.setattr(device, "_catalog", noisy)
    with pytest.raises(SystemExit) as exc:
        main(["device", "catalog"])
    assert exc.value.code == 0
    assert capsys.readouterr().err.strip() == "warning: the catalog is old"


def test_add_never_rewrites_an_existing_device(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hwdb import DeviceSpec, MeasurementIn

    db = f"sqlite:///{tmp_path / 'd.sqlite'}"
    spec = DeviceSpec(
        name="pi", family="cpu", hardware="Raspberry Pi 4 (imported)", provenance="imported",
        source="HELP", attributes={"dataset": "HELP"},
    )  # fmt: skip
    arch = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    with HardwareDB(db) as h:
        h.upsert_device(spec)
        h.add_measurements([MeasurementIn(device="pi", space="nasbench201", arch=arch, median=3.0)])
    code, _, err = _run(["--db", db, "device", "add", "pi", "--catalog", "raspberry-pi-4"], capsys)
    assert code == 1 and "already exists with 1 measurements (imported)" in err
    with HardwareDB(db) as h:
        kept = h.get_device("pi")
    assert (kept.hardware, kept.provenance, kept.attributes) == (
        "Raspberry Pi 4 (imported)", "imported", {"dataset": "HELP"}
    )  # fmt: skip
    add = ["--db", db, "device", "add", "jet", "--catalog", "jetson-nano", "--json"]
    assert _run(add, capsys)[0] == 0
    assert _run(add, capsys)[0] == 0  # the same registration again: unchanged
    other = ["--db", db, "device", "add", "jet", "--catalog", "h100-sxm"]
    code, _, err = _run(other, capsys)
    assert code == 1 and "catalog entry 'jetson-nano'" in err and "--replace" in err
    code, out, _ = _run([*other, "--replace", "--json"], capsys)
    assert code == 0 and json.loads(out)["catalog"] == "h100-sxm"
