"""Resume after SIGKILL, multi-worker PostgreSQL, CLI exit codes, hypervolume."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.nas.test_search import DEVICE, build_db

_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from hwdb import HardwareDB
    from search_spaces import get_space
    from nas.search import MeasuredLatencyModel, TableAccuracy, run_search

    url, out, storage, kill_after, trials = sys.argv[1:6]
    sp = get_space("nasbench201")
    with HardwareDB(url) as db:
        acc = TableAccuracy.from_db(db, space="nasbench201", dataset="cifar10")
        models = {"DEV": MeasuredLatencyModel.from_db(db, space=sp, device="DEV")}

    def progress(done, total):
        if int(kill_after) and done >= int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)

    res = run_search(space=sp, devices=list(models), accuracy=acc, latency_models=models,
                     trials=int(trials), population=20, seed=0, out_dir=out,
                     storage=None if storage == "-" else storage, study_name="s", progress=progress)
    print(res.n_trials, res.n_new_trials)
    """
).replace("DEV", DEVICE)


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('resume') / 'hwdb.sqlite'}"
    build_db(url, shared_data, n_measured=40)
    return url


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_sigkill_mid_search_then_rerun_resumes(db_url: str, tmp_path: Path) -> None:
    killed = _run(db_url, str(tmp_path), "-", "60", "200")
    assert killed.returncode == -signal.SIGKILL
    journal = (tmp_path / "study.journal").read_bytes()
    assert journal.endswith(b"\n")
    done = _run(db_url, str(tmp_path), "-", "0", "200")
    assert done.returncode == 0, done.stderr
    n_trials, n_new = map(int, done.stdout.split())
    assert n_trials == 200 and 0 < n_new <= 140  # >= 3 generations survived the kill
    import optuna

    study = optuna.load_study(
        study_name="s",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.journal"))
        ),
    )
    done_trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    states = {t.state for t in study.trials}  # revisits replaced by duplicate elimination
    assert len(done_trials) == 200
    assert states <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    assert len({t.user_attrs["arch"] for t in done_trials}) == 200


def test_second_writer_on_a_journal_fails_fast(tmp_path: Path) -> None:
    from nas.search import BatchedJournalFileBackend, SearchError

    first = BatchedJournalFileBackend(tmp_path / "j.journal")
    try:
        with pytest.raises(SearchError, match="postgresql"):
            BatchedJournalFileBackend(tmp_path / "j.journal")
    finally:
        first.close()


def test_torn_journal_tail_is_cut(tmp_path: Path) -> None:
    from nas.search import BatchedJournalFileBackend

    path = tmp_path / "j.journal"
    path.write_bytes(b'{"op_code":0}\n{"op_co')
    backend = BatchedJournalFileBackend(path)
    assert list(backend.read_logs(0)) == [{"op_code": 0}]
    backend.append_logs([{"op_code": 1}])
    backend.close()
    assert path.read_bytes() == b'{"op_code":0}\n{"op_code":1}\n'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"SQLite format 3\x00\x10\x00\x01\x01\x00@  \n\x00\x00", "not a study journal"),
        (b"device,arch,median\ncpu,a,1.0\n", "not a study journal"),
        (b"SQLite format 3\x00 no newline", "not a study journal"),
        (b'{"op_code":0}\n{"not": "a record"}\n{"op_code":1}\n', "bad line after byte 14"),
    ],
)
def test_storage_that_is_not_a_journal_is_refused_untouched(
    tmp_path: Path, content: bytes, message: str
) -> None:
    # e.g. `--storage study.sqlite` without the sqlite:/// prefix: the file must survive
    from nas.search import SearchError, open_storage

    path = tmp_path / "study.sqlite"
    path.write_bytes(content)
    with pytest.raises(SearchError, match=message):
        open_storage(str(path), out_dir=None)
    assert path.read_bytes() == content


def test_storage_folder_and_unknown_scheme_are_refused(tmp_path: Path) -> None:
    from nas.search import SearchError, open_storage

    with pytest.raises(SearchError, match="is a folder"):
        open_storage(str(tmp_path), out_dir=None)
    with pytest.raises(SearchError, match="unknown URL scheme 'bogus'"):
        open_storage("bogus://x", out_dir=None)
    assert not (tmp_path / "bogus:").exists()


@pytest.mark.postgres
def test_two_workers_share_a_postgres_study(db_url: str, tmp_path: Path, postgres_url: str) -> None:
    import optuna

    # unique per run: a run killed mid-test leaves its study behind, and pids are reused
    name = f"s-{uuid.uuid4().hex[:12]}"
    script = _SCRIPT.replace('study_name="s"', f'study_name="{name}"')
    try:
        _two_workers(script, db_url, tmp_path, postgres_url, name)
    finally:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=postgres_url)


def _two_workers(script: str, db_url: str, tmp_path: Path, postgres_url: str, name: str) -> None:
    import optuna

    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                script,
                db_url,
                str(tmp_path / f"w{i}"),
                postgres_url,
                "0",
                "80",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    news = [int(o[0].split()[1]) for o in outs]
    assert all(n > 0 for n in news)  # both workers contributed
    study = optuna.load_study(study_name=name, storage=postgres_url)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 80 and sum(news) == len(done)  # a total, not overshot by a generation


def test_cli_exit_codes(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nas._cli.main import main

    def code(*argv: str) -> int:
        with pytest.raises(SystemExit) as exc:
            main(list(argv))
        return int(exc.value.code or 0)

    assert code("search", "--space", "nasbench201") == 2  # --device missing
    assert code("--db", db_url, "search", "--device", "nonexistent", "--space", "nasbench201") == 1
    args = ("--db", db_url, "search", "--device", "jetson", "--space", "nasbench201")
    assert code(*args, "--latency-budget", "1", "--latency-budget", "2") == 2
    assert code(*args, "--accuracy", "notamodule") == 2  # not table, proxy or MODULE:FUNC
    assert code(*args, "--local-search", "1.5") == 2
    assert (
        code("export", "x", "--space", "nasbench201", "-o", str(tmp_path / "m"), "--format", "tf")
        == 2
    )


def test_hypervolume_known_values() -> None:
    from nas.search import hypervolume, normalized_hypervolume

    assert hypervolume([[1, 2], [2, 1]], [3, 3]) == pytest.approx(3.0)
    assert hypervolume([[0, 0, 1], [1, 1, 0]], [2, 2, 2]) == pytest.approx(5.0)
    assert hypervolume(np.empty((0, 2)), [1, 1]) == 0.0
    assert hypervolume([[5, 5]], [1, 1]) == 0.0
    rng = np.random.default_rng(0)
    pts, samples = rng.random((15, 3)), rng.random((100_000, 3))
    dominated = np.zeros(len(samples), dtype=bool)
    for p in pts:
        dominated |= np.all(samples >= p, axis=1)
    assert hypervolume(pts, [1, 1, 1]) == pytest.approx(dominated.mean(), abs=0.01)
    front = [[0.0, 10.0], [10.0, 0.0]]
    assert normalized_hypervolume(front, ideal=[0, 0], nadir=[10, 10]) == pytest.approx(
        1.1**2 - 1.0
    )
    with pytest.raises(ValueError, match="`nadir`"):
        normalized_hypervolume(front, ideal=[0, 0], nadir=[0, 10])
    with pytest.raises(ValueError, match="`points`"):
        hypervolume([[math_nan := float("nan"), 1.0]], [2, 2])  # noqa: F841


def test_json_output_matches_file(db_url: str, tmp_path: Path) -> None:
    from nas.search import front_table, run_search
    from tests.nas.test_search import _setup

    acc, models = _setup(db_url)
    res = run_search(
        space="nasbench201",
        devices=[DEVICE],
        accuracy=acc,
        latency_models=models,
        trials=40,
        population=20,
        seed=3,
        out_dir=tmp_path,
    )
    assert json.loads((tmp_path / "pareto.json").read_text()) == json.loads(json.dumps(res.front))
    assert front_table(res).row_count == len(res.front)


@pytest.mark.parametrize("space", ["mnasnet", "fbnet", "nemotron_flash", "nasbench201"])
def test_long_arch_strings_wrap_only_after_separators(space: str) -> None:
    from nas.search._pareto import wrap_arch
    from search_spaces import get_space

    sp = get_space(space)
    for seed in range(5):
        arch = sp.to_string(sp.random(np.random.default_rng(seed)))
        lines = wrap_arch(arch, width=40).split("\n")
        assert "".join(lines) == arch
        assert all(line[-1] in "-+" for line in lines[:-1])
        assert all(len(a) + len(b) > 40 for a, b in zip(lines, lines[1:], strict=False))


def test_only_the_worker_that_creates_a_study_gets_it_to_set_up(tmp_path: Path) -> None:
    """Review: two workers starting at once both wrote a new study's settings (one failed on
    PostgreSQL's unique key); a study that exists, or that another worker created between the
    lookup and the create, is not handed out as new."""
    import optuna
    from optuna.study import StudyDirection

    from nas.search._runner import _create_new_study

    storage = optuna.storages.InMemoryStorage()
    directions = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    first = _create_new_study(storage, "s", directions)
    assert first is not None and first.study_name == "s"
    assert _create_new_study(storage, "s", directions) is None  # found by name
    lookup = storage.get_study_id_from_name

    def created_meanwhile(name: str) -> int:
        if name == "t":
            raise KeyError(name)  # not there yet when looked up ...
        return lookup(name)

    storage.create_new_study(directions, "t")  # ... and created by another worker since
    storage.get_study_id_from_name = created_meanwhile  # type: ignore[method-assign]
    assert _create_new_study(storage, "t", directions) is None  # DuplicatedStudyError
    assert _create_new_study(None, "u", directions) is not None  # in memory: always new
