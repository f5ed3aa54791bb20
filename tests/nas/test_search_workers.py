"""Several workers on one RDB study: ``trials`` is a total, never overshot by a generation."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tests.nas.test_search import DEVICE, _setup, build_db


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('workers') / 'hwdb.sqlite'}"
    build_db(url, shared_data, n_measured=40)
    return url


def _search(db_url: str, storage: str, trials: int, **kwargs: Any) -> Any:
    from nas.search import run_search

    acc, models = _setup(db_url)
    return run_search(
        space="nasbench201", devices=[DEVICE], accuracy=acc, latency_models=models,
        trials=trials, population=10, seed=0, storage=storage, study_name="s", **kwargs,
    )  # fmt: skip


def _states(storage: str) -> dict[TrialState, int]:
    """Trials per state, without the ``PRUNED`` ones (revisits replaced by novel children)."""
    study = optuna.load_study(study_name="s", storage=storage)
    out: dict[TrialState, int] = {}
    for t in study.get_trials(deepcopy=False):
        if t.state != TrialState.PRUNED:
            out[t.state] = out.get(t.state, 0) + 1
    return out


def _study_left_by_a_dead_worker(db_url: str, tmp_path: Path) -> tuple[str, list[optuna.Trial]]:
    """A study of 20 finished trials plus 10 that a worker asked and never told."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    _search(db_url, storage, 20)
    return storage, _other_worker_claims(storage, 10)[1]


def _other_worker_claims(storage: str, n: int) -> tuple[optuna.Study, list[optuna.Trial]]:
    """``n`` trials asked (``RUNNING``) by another worker of the study."""
    study = optuna.load_study(study_name="s", storage=storage)
    return study, [study.ask() for _ in range(n)]


def test_a_worker_leaves_the_trials_others_hold_and_waits_for_them(
    db_url: str, tmp_path: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    _search(db_url, storage, 30)
    other, held = _other_worker_claims(storage, 10)

    def finish() -> None:
        for trial in held:
            other.tell(trial, state=TrialState.FAIL)

    timer = threading.Timer(1.5, finish)
    timer.start()
    try:
        res = _search(db_url, storage, 40)
    finally:
        timer.join()
    assert res.n_new_trials == 0  # the last 10 were the other worker's
    assert _states(storage) == {TrialState.COMPLETE: 30, TrialState.FAIL: 10}


def test_trials_of_a_dead_worker_are_taken_over(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.search._runner as runner

    storage, _ = _study_left_by_a_dead_worker(db_url, tmp_path)
    monkeypatch.setattr(runner, "_STALE_AFTER_S", 0.0)
    res = _search(db_url, storage, 30)
    assert res.n_new_trials == 10
    assert _states(storage) == {TrialState.COMPLETE: 30, TrialState.RUNNING: 10}


def test_trials_of_an_exited_process_on_this_host_are_taken_over_at_once(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import socket
    import subprocess
    import sys

    import nas.search._runner as runner

    storage, held = _study_left_by_a_dead_worker(db_url, tmp_path)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    for trial in held:  # asked by a process that has exited since
        trial.set_user_attr("worker", f"{socket.gethostname()}:{gone.stdout.strip()}")

    def no_wait() -> None:
        raise AssertionError("waited for the trials of an exited process")

    monkeypatch.setattr(runner, "_pause", no_wait)  # the 60 s rule alone would wait here
    res = _search(db_url, storage, 30)
    assert res.n_new_trials == 10
    assert _states(storage) == {TrialState.COMPLETE: 30}  # the exited one's: retired
    study = optuna.load_study(study_name="s", storage=storage)
    retired = [study.trials[t.number] for t in held]
    assert all(t.state == TrialState.PRUNED and t.user_attrs["interrupted"] for t in retired)
    mine = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert {t.user_attrs["worker"] for t in mine} == {f"{socket.gethostname()}:{os.getpid()}"}


def test_workers_asking_at_once_keep_the_earliest_claims(tmp_path: Path) -> None:
    from nas.search._runner import _drop_surplus

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage)
    for _ in range(5):
        study.tell(study.ask(), 1.0)
    _, theirs = _other_worker_claims(storage, 3)
    mine = [study.ask() for _ in range(4)]
    kept = _drop_surplus(study, mine, 10, 60.0)
    assert [t.number for t in kept] == [t.number for t in mine[:2]]
    dropped = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    assert [t.number for t in dropped] == [t.number for t in mine[2:]]
    assert all(t.user_attrs["surplus"] for t in dropped)
    assert all(t.state == TrialState.RUNNING for t in _other_worker_claims(storage, 0)[0].trials
               if t.number in {x.number for x in theirs})  # fmt: skip


def test_a_single_writer_storage_needs_no_claims(db_url: str, tmp_path: Path) -> None:
    journal = str(tmp_path / "study.journal")
    res = _search(db_url, journal, 25)
    assert res.n_trials == 25 and res.n_new_trials == 25


def test_a_replaced_child_keeps_its_budget_slot_claimed() -> None:
    """A child swapped for another architecture used to be told PRUNED before its replacement
    was asked; in between, another worker of a shared study saw a free slot and took it
    (CI: 81 complete trials of 80). The replacement must be running before the child is told."""
    import types

    from nas.search import _runner
    from search_spaces import get_space

    sp = get_space("nasbench201")
    study = optuna.create_study(directions=["maximize", "minimize"])
    child = study.ask()
    arch = sp.to_string(sp.sample(child))
    params = {
        **child.params,
        "edge_0_1": "nor_conv_3x3" if child.params["edge_0_1"] != "nor_conv_3x3" else "none",
    }
    running_at_tell: list[int] = []
    tell = study.tell

    def counting_tell(trial: Any, *args: Any, **kwargs: Any) -> Any:
        running_at_tell.append(len(study.get_trials(states=(TrialState.RUNNING,))))
        return tell(trial, *args, **kwargs)

    study.tell = counting_tell  # type: ignore[method-assign]
    cfg = types.SimpleNamespace(worker=None, space=sp)
    asked = [child]
    new, new_arch = _runner._swap(cfg, study, child, arch, params, "revisit", asked)  # type: ignore[arg-type]
    assert running_at_tell == [2]  # the child and its replacement
    assert new.params == params and new_arch != arch and asked == [child, new]
    assert study.trials[child.number].state == TrialState.PRUNED


def test_children_another_worker_scored_while_this_one_asked_are_not_evaluated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """QA (session 29): two workers on one PostgreSQL study evaluated 17 of 600 archs twice.
    A worker read the others' scores before asking its batch, and asking 50 trials takes
    seconds on an RDB, in which another worker scored some of the same children. The scores
    are read again once the batch is asked: such a child is a revisit (replaced by a novel
    one), never evaluated again."""
    import numpy as np
    import pandas as pd

    from nas.search import MeasuredLatencyModel, TableAccuracy, _runner
    from search_spaces import get_space

    sp = get_space("nasbench201")
    scratch = optuna.create_study().ask()  # the parameters of one arch, to enqueue
    first = sp.to_string(sp.sample(scratch))
    others = (sp.to_string(sp.random(i)) for i in range(40))
    archs = list(dict.fromkeys([first, *others]))
    acc = TableAccuracy(pd.Series(np.linspace(50, 90, len(archs)), index=archs), name="t")
    model = MeasuredLatencyModel(sp, "d", {a: 1.0 + i for i, a in enumerate(archs)})
    cfg = _runner._check_args(sp, ["d"], acc, [model], 10, 2, None, 0.0)
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.enqueue_trial(scratch.params)
    cache: dict[str, Any] = {}
    scored_elsewhere = _runner._Evaluation(60.0, {"d": 1.0}, {"d": 0.0})
    evaluated: list[str] = []
    real = _runner._evaluate
    monkeypatch.setattr(_runner, "_evaluate", lambda c, a: (evaluated.extend(a), real(c, a))[1])
    _runner._generation(cfg, study, 1, cache, {}, np.random.default_rng(0),
                        refresh=lambda: cache.setdefault(archs[0], scored_elsewhere))  # fmt: skip
    assert archs[0] not in evaluated and len(evaluated) == 1
    assert cache[archs[0]] is scored_elsewhere
