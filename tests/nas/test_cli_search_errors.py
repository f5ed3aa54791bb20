"""`nas search` on bad input: usage errors before any model loads, broken user objectives,
budgets nothing meets, missing accuracy tables — one line each, never a traceback."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from nas._cli.main import main


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0)


def _base(tmp_path: Path, *extra: str) -> list[str]:
    args = ["--db", f"sqlite:///{tmp_path / 'db.sqlite'}", "search", "--space", "nasbench201"]
    return [*args, "--device", "jetson", "--trials", "12", "--population", "6", *extra]


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``userfn.py`` in the current directory with several broken accuracy functions."""
    (tmp_path / "userfn.py").write_text(
        "def boom(model, arch):\n    raise RuntimeError('boom from user fn')\n\n"
        "def none(model, arch):\n    return None\n\n"
        "def some(model, arch):\n"
        "    if 'pool' in arch:\n        raise KeyError('no pools')\n    return 1.0\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    return "userfn"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trials", "0"], "--trials"),
        (["--population", "1"], "--population"),
        (["--latency-budget", "-3"], "--latency-budget must be positive"),
        (["--latency-budget", "1", "--latency-budget", "2"], "one per --device"),
        (["--accuracy", "proxy:nosuch"], "--accuracy proxy:NAME must be one of"),
        (["--accuracy", "bogus"], "--accuracy must be table, proxy"),
        (["--space", "nosuch"], "nosuch"),
        (["--budget-z", "-1"], "--budget-z"),
        (["--threads", "0"], "--threads"),
        (["--seed", "-3"], "--seed"),  # numpy's own message came after the models loaded
        (["--device", " "], "--device must be a device name"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert _run([*_base(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(line.startswith(("latency:", "accuracy:")) for line in err.splitlines())


@pytest.mark.parametrize("name", [" flops", "flops ", "\tflops"])
def test_a_predictor_name_with_spaces_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """`--predictor ' flops'` was validated stripped but used as given (a second predictor,
    ``' flops@...'``, was meta-trained and stored); now it is refused as `nas predictor` and
    the API refuse it: exactly a registered name, else a usage error naming --predictor."""
    from predictors import list_predictors

    assert "flops" in list_predictors()
    assert _run([*_base(tmp_path, "--out", str(tmp_path / "out")), "--predictor", name]) == 2
    err = capsys.readouterr().err
    assert f"--predictor must be one of {', '.join(list_predictors())}, got {name!r}" in err
    assert not any(line.startswith(("latency:", "accuracy:")) for line in err.splitlines())


def test_out_that_is_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "afile").write_text("x")
    assert _run([*_base(tmp_path), "-o", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_an_output_path_in_the_way_fails_before_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found after the search, a folder named pareto.png left pareto.json and pareto.csv
    written and the png missing; now nothing runs and nothing is written."""
    out = tmp_path / "out"
    (out / "pareto.png").mkdir(parents=True)
    assert _run([*_base(tmp_path), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "pareto.png exists and is not a file" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["pareto.png"]


@pytest.mark.parametrize(
    ("func", "message"),
    [("boom", "raised RuntimeError: boom from user fn"), ("none", "returned NoneType None")],
)
def test_a_user_function_failing_on_everything_stops_the_search(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str], func: str, message: str
) -> None:
    out = tmp_path / "out"
    assert _run([*_base(tmp_path, "--accuracy", f"{user_module}:{func}"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: accuracy function 'userfn:") and message in last


def test_a_user_function_failing_on_some_archs_fails_those_trials(
    tmp_path: Path, user_module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*_base(tmp_path, "--accuracy", f"{user_module}:some", "--seed", "0")]
    assert _run([*args, "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "raised KeyError" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: accuracy function")
    assert " failed" in captured.out and "Traceback" not in captured.err


def test_a_budget_nothing_meets_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    args = _base(tmp_path, "--accuracy", "proxy:params", "--latency-budget", "1e-6", "--seed", "0")
    assert _run([*args, "-o", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: no architecture met the latency budget (" in err
    assert "applied to the predicted latency) in 12 evaluated trials" in err
    assert "closest to meeting it: " in err
    with (out / "pareto.csv").open() as fh:
        header = next(csv.reader(fh))
    assert [h for h in header if h.startswith("latency")] and "params" in header
    assert (out / "pareto.png").stat().st_size > 0


def test_table_accuracy_without_the_space_names_the_missing_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(_base(tmp_path, "--accuracy", "table")) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: no test_accuracy for dataset 'cifar10' in space 'nasbench201'")


def test_storage_errors_and_results_hide_the_password() -> None:
    from nas.search import SearchError
    from nas.search._storage import _open_rdb

    url = "postgresql+psycopg://nas:s3cret@127.0.0.1:1/nowhere"
    with pytest.raises(SearchError) as exc:
        _open_rdb(url, attempts=1)
    assert "s3cret" not in str(exc.value) and "nas:***@127.0.0.1:1" in str(exc.value)


def test_an_explicit_storage_file_that_does_not_exist_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --storage used to start a new study silently instead of resuming one."""
    from nas._cli.search import _note_new_storage

    journal = tmp_path / "old.journal"
    journal.write_text("")
    quiet = [None, str(journal), "postgresql+psycopg://u:p@h/db", f"sqlite:///{journal}"]
    for storage in quiet:
        _note_new_storage(storage, tmp_path)
        assert capsys.readouterr().err == "", storage
    for storage, file in ((f"sqlite:///{tmp_path}/typo.sqlite", tmp_path / "typo.sqlite"),
                          (str(tmp_path / "typo.journal"), tmp_path / "typo.journal")):  # fmt: skip
        _note_new_storage(storage, tmp_path)
        err = capsys.readouterr().err
        assert err == f"note: --storage {file} does not exist yet: a new study starts there\n"
