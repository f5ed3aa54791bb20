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


def test_predict_a_catalog_device_zero_shot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`nas predictor predict` serves a catalog device with no measurements from its datasheet
    (as `nas search` does) and says so: `source` in JSON, a note on stderr otherwise."""
    import json

    from hwdb import HardwareDB

    db = f"sqlite:///{tmp_path / 'z.sqlite'}"
    HardwareDB(db).close()  # an empty database
    with pytest.raises(SystemExit) as exc:
        main(["--db", db, "device", "add", "orin", "--catalog", "jetson-orin-nano"])
    assert exc.value.code == 0
    capsys.readouterr()
    predict = ["--db", db, "predictor", "predict", "--space", "nasbench201", "--device", "orin",
               "--arch", NB201]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main([*predict, "--json"])
    assert exc.value.code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "zero-shot (datasheet)" and out["n_measurements"] == 0
    assert out["predictions"][0]["arch"] == NB201 and out["predictions"][0]["mean_ms"] > 0
    with pytest.raises(SystemExit) as exc:
        main(predict)
    assert exc.value.code == 0
    captured = capsys.readouterr()
    assert "zero-shot" in captured.err and f"`nas --db {db} device onboard orin" in captured.err
    assert NB201 in captured.out


def test_predict_resolves_devices_and_reference_names_as_search_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--device jetson` names no device but a catalog alias, as `nas search --device jetson`
    resolves it; the match is printed. `--arch mnasnet-a1` is a reference-model name, as
    `nas spaces show` and `nas export` take it."""
    import json

    from hwdb import HardwareDB
    from search_spaces import get_space

    db = f"sqlite:///{tmp_path / 'z.sqlite'}"
    HardwareDB(db).close()  # an empty database
    argv = ["--db", db, "predictor", "predict", "--space", "mnasnet", "--device", "jetson",
            "--arch", "MnasNet-A1", "--json"]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    sp = get_space("mnasnet")
    assert out["predictions"][0]["arch"] == sp.to_string(sp.reference_archs()["mnasnet-a1"])
    assert out["source"] == "zero-shot (datasheet)" and out["predictions"][0]["mean_ms"] > 0
    assert "'jetson' -> jetson-orin-nano" in captured.err
