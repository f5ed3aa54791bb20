"""`nas export` of a nasbench201 architecture to a torch checkpoint and ONNX."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_export_torch_round_trip_and_onnx(tmp_path: Path) -> None:
    import onnx
    import torch

    from nas.search import export_model, load_exported
    from search_spaces import get_space

    sp = get_space("nasbench201")
    arch = sp.to_string(sp.random(0))
    path = export_model(arch, space="nasbench201", format="torch", path=tmp_path / "m.pt")
    model = load_exported(path)
    (x,) = sp.example_inputs(sp.default_workload())
    assert model(x).shape == (1, 10)
    assert torch.load(path, weights_only=True)["arch"] == arch
    onnx_path = export_model(arch, space="nasbench201", format="onnx", path=tmp_path / "m.onnx")
    onnx.checker.check_model(str(onnx_path))
    with pytest.raises(ValueError, match="`format`"):
        export_model(arch, space="nasbench201", format="tf", path=tmp_path / "m")


def test_export_cli(tmp_path: Path) -> None:
    from nas._cli.main import main
    from search_spaces import get_space

    arch = get_space("nasbench201").to_string(get_space("nasbench201").random(1))
    with pytest.raises(SystemExit) as exc:
        main(["export", arch, "--space", "nasbench201", "-o", str(tmp_path / "m.pt")])
    assert exc.value.code == 0 and (tmp_path / "m.pt").stat().st_size > 0


def test_export_failures_are_one_line_and_leave_no_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A folder as output, and an ONNX export the exporter cannot do (nemotron_flash's
    attention and state-space mixers), end in one error line: no traceback, no graph dump
    on stdout, no partial file."""
    from nas._cli.main import main

    def run(argv: list[str]) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        out, err = capfd.readouterr()
        return int(exc.value.code or 0), out, err

    code, _, err = run(["export", "mnasnet-a1", "-o", str(tmp_path)])
    assert code == 1 and err.strip() == f"error: cannot write {tmp_path}: it is a folder"
    arch = "d128_r3_n128_mt256:a-f-m2-f-d-f-gdn-f"
    target = tmp_path / "lm.onnx"
    code, out, err = run(
        ["export", arch, "--space", "nemotron_flash", "-f", "onnx", "-o", str(target)]
    )
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("error: ONNX export of this nemotron_flash architecture failed")
    assert not target.exists()
