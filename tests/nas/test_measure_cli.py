"""`nas measure` command line: real runs, JSON output, resume, bad input."""

from __future__ import annotations

import json

import pytest

from hwdb import HardwareDB
from tests._cli import run_cli as _run

FAST = ["--rounds", "2", "--repeats", "1", "--warmup", "1", "--threads", "1", "--resolution", "16",
        "--prime", "2", "--prime-seconds", "0"]  # fmt: skip


def test_measure_json_and_resume(sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--db", sqlite_url, "measure", "--space", "nasbench201", "--device-name", "t1",
            "--n", "2", "--json", *FAST]  # fmt: skip
    code, out, _ = _run(argv, capsys)
    assert code == 0
    first = json.loads(out)
    assert first["rows_written"] == 2 and len(first["measured"]) == 2
    assert first["protocol"] == "interleaved-rr2x1-w1-rh-an@r16"
    code, out, _ = _run(argv, capsys)
    second = json.loads(out)
    assert code == 0 and second["rows_written"] == 0 and len(second["skipped"]) == 2
    code, out, _ = _run([*argv, "--force"], capsys)
    assert code == 0 and json.loads(out)["rows_written"] == 2
    with HardwareDB(sqlite_url) as db:
        assert len(db.measurements(space="nasbench201", device="t1")) == 2
    text = [a for a in argv if a != "--json"]
    code, _, err = _run(text, capsys)  # QA: rerunning --n measured nothing without a word
    assert code == 0 and "note: --n draws the same sample for the same --seed" in err
    code, _, err = _run([*text, "--seed", "1"], capsys)
    assert code == 0 and "note: --n draws" not in err


def test_retest_prints_agreement(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["measure", "--space", "nasbench201", "--retest", "--n", "3", "--json", *FAST]
    code, out, _ = _run(argv, capsys)
    result = json.loads(out)
    assert code == 0 and set(result) == {"spearman", "mape", "n"} and result["n"] == 3


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--space", "nope", "--device-name", "x", "--n", "2"], 2, "unknown search space"),
        (["--space", "nasbench201", "--device-name", "x", "--n", "0"], 2, "--n"),
        (["--space", "nasbench201", "--device-name", "x", "--n", "2", "--precision", "fp8"], 2,
         "--precision"),
        (["--space", "nasbench201", "--device-name", "x", "--n", "2", "--runtime", "tvm"], 2,
         "--runtime"),
        (["--space", "nasbench201", "--n", "2"], 2, "--device-name"),
        (["--space", "nasbench201", "--device-name", "x"], 2, "exactly one"),
        (["--space", "nasbench201", "--device-name", "x", "--n", "2", "--reference-set"], 2,
         "exactly one"),
        (["--space", "nasbench201", "--device-name", "x", "--n", "2", "--server", "http://h"], 2,
         "go together"),
        (["--space", "nasbench201", "--device-name", "x", "--archs", "/nonexistent/archs.txt"], 2,
         "--archs '/nonexistent/archs.txt'"),
        (["--space", "nasbench201", "--device-name", "x", "--n", "2", "--precision", "bf16",
          "--runtime", "onnxruntime"], 2, "--precision bf16 needs --runtime torch"),
        (["--space", "nemotron_flash", "--device-name", "x", "--n", "2", "--runtime",
          "onnxruntime"], 2, "--runtime onnxruntime cannot run nemotron_flash"),
        (["--space", "nasbench201", "--retest", "--n", "1"], 2, "--retest"),
        (["--space", "mnasnet", "--device-name", "x", "--n", "2", "--prompt-len", "7"], 2,
         "--prompt-len does not apply to mnasnet"),
        (["--space", "mnasnet", "--device-name", "x", "--n", "2", "--prime-seconds", "inf"], 2,
         "--prime-seconds"),
    ],
)  # fmt: skip
def test_bad_input_one_line_on_stderr(
    args: list[str], code: int, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, err = _run(["measure", *args], capsys)
    assert rc == code
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and needle in lines[0]
    assert "Traceback" not in err and out == ""
