"""Regression tests from a README walk-through QA (session 25)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from nas._cli.main import main
from nas.search import MeasuredLatencyModel, StudyMismatchError, TableAccuracy, run_search
from search_spaces import get_space, restrict_space


def _search(out: Path, objective: str, trials: int = 4) -> int:
    sp = get_space("nasbench201")
    archs = [sp.to_string(sp.random(i)) for i in range(8)]
    acc = TableAccuracy(pd.Series([50.0 + i for i in range(8)], index=archs), name=objective)
    model = MeasuredLatencyModel(sp, "d", {a: 1.0 + i for i, a in enumerate(archs)})
    res = run_search(space=sp, devices=["d"], accuracy=acc, latency_models=[model],
                     trials=trials, population=2, seed=0, out_dir=out)  # fmt: skip
    return res.n_trials


def test_a_folder_holding_another_studys_results_is_refused(tmp_path: Path) -> None:
    """Another objective into the same -o used to start a second study there and replace the
    first one's pareto.* and history.json without a word."""
    out = tmp_path / "o"
    assert _search(out, "table:a") == 4
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "study.journal"}
    with pytest.raises(StudyMismatchError, match=r"holds the results of study '.*table:a'"):
        _search(out, "table:b")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "study.journal"} == before
    assert _search(out, "table:a", trials=6) == 6  # the same study resumes


def test_choices_given_as_numbers_in_text_match_the_grid() -> None:
    """`--choices b1_se=0` was refused because the grid prints 0 as 0.0."""
    space = restrict_space("mnasnet", {"b1_se": ["0", "0.25"]})
    assert space.search_parameters()["b1_se"] == [0.0, 0.25]
    with pytest.raises(ValueError, match="'nan' is not a choice"):
        restrict_space("mnasnet", {"b1_se": ["nan"]})


@pytest.mark.parametrize("command", ["upgrade", "init"])
def test_init_and_upgrade_name_a_database_file_they_create(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped --db became a new, empty database without a word."""
    db = tmp_path / "typo.sqlite"
    for expected in ([f"note: created a new database {db}"], []):
        with pytest.raises(SystemExit) as info:
            main(["--db", f"sqlite:///{db}", "hwdb", command])
        err = capsys.readouterr().err
        assert info.value.code in (0, None)
        assert [line for line in err.splitlines() if line.startswith("note: created")] == expected


def test_upload_summary_and_counts_read_as_sentences() -> None:
    """The upload ended with a raw dict; "1 architectures", "1 trials"."""
    from nas._cli._common import count_noun
    from nas._cli.measure import _upload_summary

    got = {"device": "pi4", "received": 2, "inserted": 1, "existing": 1, "requests": 1}
    assert _upload_summary(got) == "2 measurements of pi4 (1 new, 1 already stored) in 1 request"
    assert (count_noun(1, "trial"), count_noun(1200, "trial")) == ("1 trial", "1,200 trials")


def test_following_the_mismatch_advice_works(tmp_path: Path) -> None:
    """QA (session 29): a resume with another setting said "pass another --study name"; doing
    that with the same -o then failed, blaming other devices, space or objective. The advice
    now names the output folder too, and the folder error names the study name as a cause."""
    sp = get_space("nasbench201")
    archs = [sp.to_string(sp.random(i)) for i in range(8)]
    acc = TableAccuracy(pd.Series([50.0 + i for i in range(8)], index=archs), name="t")
    model = MeasuredLatencyModel(sp, "d", {a: 1.0 + i for i, a in enumerate(archs)})
    kw = dict(space=sp, devices=["d"], accuracy=acc, latency_models=[model], trials=4,
              population=2, seed=0, out_dir=tmp_path / "o")  # fmt: skip
    run_search(**kw, budget_ms=5.0)
    with pytest.raises(StudyMismatchError) as exc:
        run_search(**kw, budget_ms=6.0)
    assert "another --study name (study_name) and, if you gave -o" in str(exc.value)
    with pytest.raises(StudyMismatchError, match=r"\(another --study name, or other devices"):
        run_search(**kw, budget_ms=6.0, study_name="b6")
    res = run_search(**{**kw, "out_dir": tmp_path / "o6"}, budget_ms=6.0, study_name="b6")
    assert res.n_trials == 4


def test_a_study_keeps_its_population(tmp_path: Path) -> None:
    """QA (session 29): resuming with another --population was accepted, NSGA-II then bred
    from a mix, and history.json regrouped every trial into generations of the new size.
    It is a study setting now; a study from before it was stored takes the next one given."""
    sp = get_space("nasbench201")
    archs = [sp.to_string(sp.random(i)) for i in range(8)]
    acc = TableAccuracy(pd.Series([50.0 + i for i in range(8)], index=archs), name="table:a")
    model = MeasuredLatencyModel(sp, "d", {a: 1.0 + i for i, a in enumerate(archs)})
    kw = dict(space=sp, devices=["d"], accuracy=acc, latency_models=[model], seed=0)
    run_search(**kw, trials=4, population=2, out_dir=tmp_path / "new")
    with pytest.raises(StudyMismatchError, match=r"--population \(population\) was 2, now 3"):
        run_search(**kw, trials=6, population=3, out_dir=tmp_path / "new")
    run_search(**kw, trials=4, population=2, out_dir=tmp_path / "old")
    journal = tmp_path / "old" / "study.journal"  # as an earlier release wrote it: no population
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(line for line in lines if "nas_population" not in line))
    assert run_search(**kw, trials=6, population=3, out_dir=tmp_path / "old").n_trials == 6
    with pytest.raises(StudyMismatchError, match=r"--population \(population\) was 3, now 2"):
        run_search(**kw, trials=8, population=2, out_dir=tmp_path / "old")


def test_trials_of_a_killed_run_do_not_stay_running(tmp_path: Path) -> None:
    """QA (session 29): a `kill -9` left its generation's trials RUNNING for good, so
    optuna-dashboard showed them running. A resume tells them PRUNED, tagged `interrupted`
    (a journal has one writer at a time, so every RUNNING trial in it is a dead one's)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from optuna.trial import TrialState

    out = tmp_path / "o"
    assert _search(out, "table:a") == 4
    storage = JournalStorage(JournalFileBackend(str(out / "study.journal")))
    (name,) = optuna.get_all_study_names(storage)
    left = optuna.load_study(study_name=name, storage=storage).ask().number  # then "killed"
    assert _search(out, "table:a", trials=6) == 6
    trial = optuna.load_study(study_name=name, storage=storage).trials[left]
    assert trial.state == TrialState.PRUNED and trial.user_attrs["interrupted"] is True
