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


def test_export_cli_says_when_it_replaces_a_file_or_its_suffix_disagrees(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """QA: an existing file was overwritten without a word, and `-f torch -o y.onnx` wrote a
    torch file named .onnx silently."""
    from nas._cli.main import main

    def run(*argv: str) -> tuple[str, str]:
        with pytest.raises(SystemExit) as exc:
            main(["export", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|",
                  "--space", "nasbench201", *argv])  # fmt: skip
        assert exc.value.code == 0
        out, err = capfd.readouterr()
        return out, err

    target = tmp_path / "y.onnx"
    out, err = run("-f", "torch", "-o", str(target))
    assert out.startswith("wrote ") and err.strip() == (
        f"note: writing a torch file to {target}, whose suffix says onnx"
    )
    out, err = run("-o", str(target))  # the suffix's own format: no note
    assert out.startswith("replaced ") and err == ""


def test_export_failures_are_one_line_and_leave_no_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A folder as output, and an ONNX export the exporter cannot do (nemotron_flash's
    attention and state-space mixers), end in one error line: no traceback, no graph dump
    on stdout, no partial file."""
    code, _, err = _run(["export", "mnasnet-a1", "-o", str(tmp_path)], capfd)
    assert code == 1 and err.strip() == f"error: cannot write {tmp_path}: it is a folder"
    arch = "d128_r3_n128_mt256:a-f-m2-f-d-f-gdn-f"
    target = tmp_path / "lm.onnx"
    code, out, err = _run(
        ["export", arch, "--space", "nemotron_flash", "-f", "onnx", "-o", str(target)], capfd
    )
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("error: ONNX export of this nemotron_flash architecture failed")
    assert not target.exists()


def _run(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from nas._cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capfd.readouterr()
    return int(exc.value.code or 0), out, err


def test_a_failed_export_leaves_the_existing_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The exporter writes beside the output and renames: an ONNX export that fails (here
    nemotron_flash, whose format is picked from the .onnx suffix) keeps what was there."""
    target = tmp_path / "keep.onnx"
    target.write_text("precious")
    arch = "d128_r3_n128_mt256:a-f-m2-f-d-f-gdn-f"
    code, _, err = _run(["export", arch, "--space", "nemotron_flash", "-o", str(target)], capfd)
    assert code == 1 and err.startswith("error: ONNX export of this nemotron_flash")
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.onnx"]  # no temporary left


def test_an_interrupted_export_leaves_the_existing_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def interrupted(obj: object, f: object, *args: object, **kwargs: object) -> None:
        Path(str(f)).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    target = tmp_path / "m.pt"
    target.write_text("precious")
    monkeypatch.setattr(torch, "save", interrupted)
    code, _, err = _run(["export", "mnasnet-a1", "-o", str(target)], capfd)
    assert (
        code == 130
        and err.strip() == f"error: interrupted; nothing was written ({target} is as it was)"
    )
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_export_targets_that_are_not_regular_files(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A device or pipe is refused, never replaced by a file (``-o /dev/null`` run as root
    would otherwise remove /dev/null); a symbolic link is written through; a file where a
    folder should be is named."""
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = _run(["export", "mnasnet-a1", "-o", str(fifo)], capfd)
    assert code == 1 and err.strip() == f"error: cannot write {fifo}: it is not a regular file"
    assert fifo.is_fifo()
    link = tmp_path / "link.pt"
    link.symlink_to("real.pt")
    assert _run(["export", "resnet", "--space", "nasbench201", "-o", str(link)],
                capfd)[0] == 0  # fmt: skip
    assert link.is_symlink() and (tmp_path / "real.pt").stat().st_size > 0
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _run(["export", "mnasnet-a1", "-o", str(blocker / "m.pt")], capfd)
    assert (
        code == 1
        and err.strip() == f"error: cannot write {blocker / 'm.pt'}: {blocker} is not a folder"
    )


def test_export_format_from_suffix_seeded_weights_and_name_typos(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import onnx
    import torch

    args = ["--space", "nasbench201"]
    assert _run(["export", "resnet", *args, "-o", str(tmp_path / "m.onnx")], capfd)[0] == 0
    onnx.checker.check_model(str(tmp_path / "m.onnx"))  # an .onnx name is ONNX by default
    assert _run(["export", "resnet", *args, "-f", "ONNX", "-o", str(tmp_path / "x")],
                capfd)[0] == 0  # fmt: skip
    onnx.checker.check_model(str(tmp_path / "x"))
    states = []
    for name in ("a.pt", "b.pt"):
        assert _run(["export", "resnet", *args, "-o", str(tmp_path / name)], capfd)[0] == 0
        states.append(torch.load(tmp_path / name, weights_only=True)["state_dict"])
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    code, _, err = _run(["export", "mnasnet-a2", "-o", str(tmp_path / "t.pt")], capfd)
    assert code == 2 and "did you mean 'mnasnet-a1'?" in err and err.count("\n") == 1


def test_onnx_export_takes_any_batch_and_matches_the_checkpoint(tmp_path: Path) -> None:
    """The ONNX graph has a dynamic batch axis, and with the same seed it holds the
    checkpoint's weights (ONNX Runtime and torch agree on a batch of 3)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from nas.search import export_model, load_exported
    from search_spaces import get_space

    sp = get_space("nasbench201")
    onnx_path = export_model("resnet", space="nasbench201", format="onnx", path=tmp_path / "m.onnx")
    pt_path = export_model("resnet", space="nasbench201", format="torch", path=tmp_path / "m.pt")
    (x,) = sp.example_inputs(sp.default_workload())
    batch = torch.randn(3, *x.shape[1:])
    got = ort.InferenceSession(str(onnx_path)).run(None, {"input": batch.numpy()})[0]
    with torch.no_grad():
        want = load_exported(pt_path)(batch).numpy()
    assert got.shape == (3, 10)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_sigterm_stops_a_command_as_ctrl_c_does(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kill`` (SIGTERM) gets the same cleanup and line as Ctrl-C: here an export stopped
    while writing leaves the existing file."""
    import os
    import signal
    import time

    import torch

    def killed(obj: object, f: object, *args: object, **kwargs: object) -> None:
        Path(str(f)).write_bytes(b"half a checkpoint")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends

    target = tmp_path / "m.pt"
    target.write_text("precious")
    monkeypatch.setattr(torch, "save", killed)
    before = signal.getsignal(signal.SIGTERM)
    code, _, err = _run(["export", "mnasnet-a1", "-o", str(target)], capfd)
    assert code == 143 and err.strip().startswith("error: terminated; nothing was written")
    assert target.read_text() == "precious" and len(list(tmp_path.iterdir())) == 1
    assert signal.getsignal(signal.SIGTERM) is before  # restored after the command
