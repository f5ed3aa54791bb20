"""``nas predictor`` exit codes and JSON output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def db_url(nb201_db_url: str) -> str:
    return nb201_db_url


def _run(args: list[str]) -> int:
    from nas._cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def test_evaluate_json(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--db", db_url, "predictor", "evaluate", "--space", "nasbench201"]
    rc = _run(
        [*args, "--device", "gold_6226", "--shots", "10", "--seeds", "2"]
        + ["--predictor", "flops", "--json"]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"spearman", "kendall", "mape", "within_10pct", "coverage_90", "per_seed"}
    assert len(out["per_seed"]) == 2 and -1 <= out["spearman"] <= 1
    assert 0 <= out["coverage_90"] <= 1


def test_coverage_reads_the_predictions_as_log_normal() -> None:
    """``coverage_90``: measurements inside ``pred * exp(+-1.645 s)``, the interval whose
    upper end ``--budget-z 1.645`` keeps under a budget."""
    import numpy as np

    from predictors import latency_metrics

    s = 0.5
    pred = np.full(4, 10.0)
    std = pred * np.sqrt(np.expm1(s**2))
    edge = np.exp(1.645 * s)
    true = np.array([10.0 * edge * 0.99, 10.0 / edge * 1.01, 10.0 * edge * 1.01, 10.0])
    out = latency_metrics(pred, true, std)
    assert out["coverage_90"] == 0.75  # only the third lies outside
    assert "coverage_90" not in latency_metrics(pred, true)
    # a prediction <= 0 has no interval: it holds nothing
    zero = latency_metrics(np.array([0.0, 10.0]), np.array([5.0, 10.0]), np.array([1.0, 1.0]))
    assert zero["coverage_90"] == 0.5


ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def test_predict_and_errors(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    arch = ARCH
    base = ["--db", db_url, "predictor", "predict", "--space", "nasbench201"]
    assert _run([*base, "--device", "pixel3", "--arch", arch, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["predictions"][0]["mean_ms"] > 0
    f = tmp_path / "archs.txt"
    f.write_text(arch + "\n" + arch + "\n")
    assert _run([*base, "--device", "pixel3", "--archs", str(f), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == 2
    f.write_text(arch + "\n\n|bogus~0|\n")
    assert _run([*base, "--device", "pixel3", "--archs", str(f)]) == 2  # as nas measure's
    assert capsys.readouterr().err.startswith(f"error: --archs {str(f)!r} line 3: ")
    assert _run([*base, "--device", "pixel3"]) == 2  # neither --arch nor --archs
    capsys.readouterr()
    for missing in (tmp_path / "missing.txt", tmp_path):  # no file; a folder
        assert _run([*base, "--device", "pixel3", "--archs", str(missing)]) == 2
        assert capsys.readouterr().err.startswith(f"error: --archs {str(missing)!r}: ")
    assert _run([*base, "--device", "nope", "--arch", arch]) == 1
    assert " measure --device-name NAME" in capsys.readouterr().err  # after nas --db URL
    assert _run(["--db", db_url, "predictor", "evaluate", "--space", "nasbench201"]) == 2
    evaluate = ["--db", db_url, "predictor", "evaluate", "--space", "nasbench201"]
    assert _run([*evaluate, "--device", "pixel3", "--shots", "100000"]) == 2  # before training
    assert "exceeds the training pool of 'pixel3'" in capsys.readouterr().err
    train = ["--db", db_url, "predictor", "train", "--space", "nasbench201", "--predictor", "flops"]
    assert _run(train) == 0 and "stored flops" in capsys.readouterr().out
    assert _run(train) == 0 and "already stored" in capsys.readouterr().out  # no retraining
    assert (
        _run(["--db", db_url, "predictor", "train", "--space", "nasbench201", "--protocol", "x"])
        == 2
    )


def test_bad_option_values_are_usage_errors(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown --predictor or --catalog and an empty --devices list exit 2 with one line
    naming the option, before any meta-training."""
    space = ["--space", "nasbench201"]
    cases = [
        (["predictor", "train", *space, "--predictor", "nosuch"], "--predictor"),
        (
            ["predictor", "adapt", *space, "--device", "pixel3", "--predictor", "nosuch"],
            "--predictor",
        ),
        (
            [
                "predictor",
                "predict",
                *space,
                "--device",
                "pixel3",
                "--arch",
                ARCH,
                "--predictor",
                "nosuch",
            ],
            "--predictor",
        ),  # fmt: skip
        (
            ["predictor", "evaluate", *space, "--device", "pixel3", "--predictor", "nosuch"],
            "--predictor",
        ),
        (
            [
                "predictor",
                "evaluate",
                *space,
                "--device",
                "pixel3",
                "--shots",
                "0",
                "--catalog",
                "nosuch",
            ],
            "--catalog",
        ),  # fmt: skip
        (["predictor", "train", *space, "--devices", ","], "--devices"),
    ]
    for argv, option in cases:
        assert _run(["--db", db_url, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {option}"), err


def test_adapt_and_evaluate_match_devices_as_search_does(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`adapt` and `evaluate` match --device like `predict` and `nas search` (here a
    substring, `gold` -> gold_6226) and say what it matched."""
    space = ["--space", "nasbench201"]
    assert _run(["--db", db_url, "predictor", "adapt", *space, "--device", "gold",
                 "--predictor", "flops", "--json"]) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert json.loads(captured.out)["device"] == "gold_6226" and "gold_6226" in captured.err
    assert _run(["--db", db_url, "predictor", "evaluate", *space, "--device", "gold",
                 "--predictor", "flops", "--seeds", "1", "--json"]) == 0  # fmt: skip
    assert "gold_6226" in capsys.readouterr().err
