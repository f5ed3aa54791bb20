"""`nas search --choices NAME=V1,V2`: search a subset of a space's grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas._cli.main import main


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def test_choices_confine_the_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "search", "--space", "nasbench201"]
    base += ["--device", "jetson", "--accuracy", "proxy:params", "--trials", "12"]
    args = [*base, "--population", "6", "--seed", "0", "-o", str(tmp_path / "out"), "--json"]
    args += ["--choices", "edge_0_1=nor_conv_1x1,skip_connect", "--choices", "edge_2_3=none"]
    assert _run(args) == 0
    front = json.loads(capsys.readouterr().out)
    assert front
    for entry in front:
        ops = [t.split("~")[0] for t in entry["arch"].replace("+", "").split("|") if t]
        assert ops[0] in ("nor_conv_1x1", "skip_connect") and ops[5] == "none"
    assert _run([*base, "--choices", "edge_0_1"]) == 2
    assert "NAME=V1,V2" in capsys.readouterr().err
    assert _run([*base, "--choices", "edge_9_9=none"]) == 2
    assert "--choices: space 'nasbench201' has no parameter 'edge_9_9'" in capsys.readouterr().err
