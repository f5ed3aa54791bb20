"""Accuracy objectives that build real models: short training and the memory guard."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from search_spaces import get_space


def _tiny_lm() -> tuple[object, list[str]]:
    """Two small samples of the smoke space: 1.6M / 2.3M parameters in 15 / 16 layers (Mamba2,
    DeltaNet, full attention, FFNs). Seeds 0 and 1 draw 17M / 6M in 36 / 48 layers, which
    train 4x slower."""
    sp = get_space("nemotron_flash").smoke_variant()  # type: ignore[attr-defined]
    return sp, [sp.to_string(sp.random(i)) for i in (49, 23)]


def test_short_train_scores_held_out_text() -> None:
    from nas.search import ShortTrainAccuracy

    sp, archs = _tiny_lm()
    obj = ShortTrainAccuracy(sp, steps=30, seq_len=16, batch_size=4, lr=3e-3)  # type: ignore[arg-type]
    first = obj.evaluate(archs)
    assert first.shape == (2,) and np.all((first > 0) & (first <= 100))
    np.testing.assert_array_equal(obj.evaluate(archs), first)  # seeded batches and init
    untrained = ShortTrainAccuracy(sp, steps=1, seq_len=16, batch_size=4)  # type: ignore[arg-type]
    assert first.mean() > untrained.evaluate(archs).mean()  # 30 steps learn the characters


@pytest.fixture
def little_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend 100 MB are free: a 256-wide tiny LM (~2M parameters) still fits at 8 B/param,
    a full-width random nemotron_flash model (~1B parameters) fits at no rate."""
    monkeypatch.setattr("nas.search._memory.available_memory_bytes", lambda device="cpu": 10**8)


def test_archs_too_large_for_memory_are_skipped_not_built(little_memory: None) -> None:
    from nas.search import ProxyAccuracy, ShortTrainAccuracy

    full = get_space("nemotron_flash")
    huge = full.to_string(full.random(0))

    def never_build(arch: str) -> object:
        raise AssertionError(f"built {arch}")

    short = ShortTrainAccuracy(full, steps=1, build=never_build)
    with pytest.warns(UserWarning, match=r"short-train:1: skipping .* needs ~\d+\.\d GB"):
        assert math.isnan(short.evaluate([huge])[0])
    proxy = ProxyAccuracy(full, "synflow")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert np.isnan(proxy.evaluate([huge, huge])).all()
    assert len(seen) == 1 and proxy.memory.skipped == 2  # one warning per objective


def test_small_archs_still_evaluate_under_the_guard(little_memory: None) -> None:
    from nas.search import ProxyAccuracy

    sp = get_space("nasbench201")
    arch = sp.to_string(sp.random(3))
    assert ProxyAccuracy(sp, "params").memory.fits(arch)
    assert np.isfinite(ProxyAccuracy(sp, "snip", batch_size=4, resolution=8).evaluate([arch]))


def test_available_memory_is_known_here() -> None:
    from nas.search._memory import MemoryGuard, available_memory_bytes

    free = available_memory_bytes()
    assert free is not None and free > 0
    with pytest.raises(ValueError, match="bytes_per_param"):
        MemoryGuard(get_space("nasbench201"), bytes_per_param=0, what="x")


def test_user_function_is_found_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from nas.search import SearchError, make_accuracy_objective

    folder = tmp_path
    (folder / "myacc_here.py").write_text(
        "def score(model, arch):\n    return float(sum(p.numel() for p in model.parameters()))\n"
    )
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(folder))])
    sp = get_space("nasbench201")
    arch = sp.to_string(sp.random(0))
    obj = make_accuracy_objective("myacc_here:score", space=sp)
    assert obj.evaluate([arch])[0] == sum(p.numel() for p in sp.build(sp.random(0)).parameters())
    with pytest.raises(SearchError, match="no_such_module"):
        make_accuracy_objective("no_such_module:score", space=sp)
    # a module that fails while importing is one error, not the user's traceback
    (folder / "broken_syntax.py").write_text("def score(model, arch)\n    return 1.0\n")
    (folder / "raises_on_import.py").write_text("raise RuntimeError('no GPU here')\n")
    with pytest.raises(SearchError, match=r"SyntaxError: .*broken_syntax\.py, line 1"):
        make_accuracy_objective("broken_syntax:score", space=sp)
    with pytest.raises(SearchError, match="RuntimeError: no GPU here"):
        make_accuracy_objective("raises_on_import:score", space=sp)


def test_cli_counts_failed_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from nas._cli.main import main

    (tmp_path / "pool_free.py").write_text(
        "import math\n\ndef score(model, arch):\n    return math.nan if 'pool' in arch else 1.0\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    args = ["--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "search", "--space", "nasbench201"]
    args += ["--device", "jetson", "--accuracy", "pool_free:score", "--trials", "12"]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--population", "6", "--seed", "0", "-o", str(tmp_path / "out")])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    failed = int(out.split(" failed")[0].rsplit(" ", 1)[1])
    assert out.count("12 trials (12 new, ") == 1 and 0 < failed < 12


@pytest.mark.parametrize("threads", [1, 2, None])
def test_objectives_pin_torch_threads_while_scoring(
    monkeypatch: pytest.MonkeyPatch, threads: int | None
) -> None:
    """Proxies and short training score under ``threads`` intra-op threads (1 by default:
    on a shared 2-core machine two threads made SynFlow 15x slower) and restore the
    caller's setting; ``None`` leaves it alone."""
    import torch

    from nas.search import ProxyAccuracy, ShortTrainAccuracy, make_accuracy_objective

    seen: list[int] = []
    monkeypatch.setattr(
        ProxyAccuracy, "_score", lambda self, a: seen.append(torch.get_num_threads()) or 0.0
    )
    monkeypatch.setattr(
        ShortTrainAccuracy,
        "_train_one",
        lambda self, a, d: seen.append(torch.get_num_threads()) or 0.0,
    )
    nb201 = get_space("nasbench201")
    arch = nb201.to_string(nb201.random(0))
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        proxy = make_accuracy_objective("proxy:params", space=nb201, threads=threads)
        lm, lm_archs = _tiny_lm()
        short = make_accuracy_objective("short-train", space=lm, threads=threads)  # type: ignore[arg-type]
        proxy.evaluate([arch])
        short.evaluate(lm_archs[:1])
        assert seen == [3 if threads is None else threads] * 2
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="`threads`"):
        make_accuracy_objective("proxy", space=nb201, threads=0)


def test_short_train_says_once_what_one_architecture_costs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At the space's widths one architecture trains for minutes on a CPU (25 min for a
    55M-parameter sample on this VM's core), while a search reports progress per
    generation: the first slow training is reported once, with its parameters (QA, session
    31: a search looked stuck for 12 minutes)."""
    import nas.search._objectives as objectives
    from nas.search import ShortTrainAccuracy

    sp, archs = _tiny_lm()
    obj = ShortTrainAccuracy(sp, steps=1, seq_len=16, batch_size=4)  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # quick trainings say nothing
        obj.evaluate(archs[:1])
    monkeypatch.setattr(objectives, "_SLOW_TRAIN_S", 0.0)
    with pytest.warns(RuntimeWarning) as seen:
        obj.evaluate(archs)
        obj.evaluate(archs)
    notes = [str(w.message) for w in seen if "to train one architecture" in str(w.message)]
    assert len(notes) == 1, notes
    assert notes[0].startswith("short-train:1: ") and "M parameters on cpu" in notes[0]
    assert "--accuracy proxy" in notes[0]
