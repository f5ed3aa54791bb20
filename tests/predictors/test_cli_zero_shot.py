"""`nas predictor evaluate --shots 0` is the zero-shot (datasheet) evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas._cli.main import main

NB201 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def test_zero_shot_needs_a_catalog_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'z.sqlite'}"
    csv = tmp_path / "m.csv"
    csv.write_text(f"space,arch,device,latency_ms\nnasbench201,{NB201},board,3.5\n")
    with pytest.raises(SystemExit) as exc:
        main(["--db", db, "hwdb", "import", "csv", str(csv)])
    assert exc.value.code == 0
    capsys.readouterr()
    argv = ["--db", db, "predictor", "evaluate", "--space", "nasbench201", "--device", "board",
            "--shots", "0", "--seeds", "1"]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--catalog" in err[0]


def test_negative_shots_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["predictor", "evaluate", "--space", "nasbench201", "--device", "x", "--shots", "-1"])
    assert exc.value.code == 2
