"""Regression tests of the review of `nas measure` (session 23, review F)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer

import nas.measure._runner as runner
from hwdb import DeviceSpec, HardwareDB, MeasurementIn, NotFoundError
from nas import NasError
from nas._cli.measure import Terminated, sigterm_as_interrupt
from nas.measure import (
    MeasureConfig,
    TimingProtocol,
    measure_architectures,
    retest,
    select_architectures,
)
from nas.measure._memory import MemoryPlan
from search_spaces import get_space
from tests.nas.test_measure_qa import _config, _run

SPACE = "nasbench201"
FAST = ["--repeats", "1", "--warmup", "1", "--threads", "1", "--prime", "0",
        "--prime-seconds", "0", "--resolution", "16"]  # fmt: skip


class _Stop(Exception):
    """Stands for Ctrl-C (the cleanup runs on any exception) without ending pytest's run."""


def _stop(*args: object, **kwargs: object) -> None:
    raise _Stop


# ---------------------------------------------------------------- 1: a user's device


def test_a_failed_run_never_deletes_a_device_the_user_registered(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``upsert_device``'s (and ``POST /v1/devices``') provenance is "measured" too: a run
    with other settings must refuse the device, not re-declare it and delete it on failure."""
    sp = get_space(SPACE)
    mine = DeviceSpec(name="pi", family="cpu", hardware="Raspberry Pi 4 (user)",
                      runtime="torch", threads=4, attributes={"owner": "me"})  # fmt: skip
    monkeypatch.setattr(runner, "_time_group", _stop)
    with HardwareDB(sqlite_url) as db:
        db.upsert_device(mine)
        with pytest.raises(NasError, match="already exists with threads=4"):
            measure_architectures(
                db, space=SPACE, device="pi", archs=select_architectures(sp, n=2, seed=0),
                config=_config(threads=1), progress=_stop,
            )  # fmt: skip
        with pytest.raises(_Stop):  # its own settings: measured, then interrupted
            measure_architectures(
                db, space=SPACE, device="pi", archs=select_architectures(sp, n=2, seed=0),
                config=_config(threads=4),
            )  # fmt: skip
        kept = db.get_device("pi")
        assert (kept.hardware, kept.threads, kept.attributes) == (
            "Raspberry Pi 4 (user)", 4, {"owner": "me"}
        )  # fmt: skip


# ---------------------------------------------------------------- 2: the note after Ctrl-C


@pytest.mark.parametrize("second", [["--rounds", "3"], ["--rounds", "2", "--force"]])
def test_ctrl_c_counts_the_rows_this_run_stored_of_archs_stored_before(
    second: list[str],
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Archs already stored under another protocol (or replaced with --force) are rows this
    run stored too: the note must not say that nothing was stored."""
    base = ["--db", sqlite_url, "measure", "--space", SPACE, "--device-name", "ki", "--n", "4",
            "--chunk-size", "2", "--json", *FAST]  # fmt: skip
    assert _run([*base, "--rounds", "2"], capsys)[0] == 0
    real = runner._time_group
    calls: list[int] = []

    def second_group_interrupted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_time_group", second_group_interrupted)
    code, _, err = _run([*base, *second], capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 130 and len(lines) == 1, err
    assert lines[0] == (
        "error: interrupted; the 2 archs of the groups finished so far are stored under device "
        "'ki'; rerun the same command to resume"
    )


# ---------------------------------------------------------------- 3: meta_tokens


def test_a_language_model_device_measured_with_meta_tokens_32_resumes(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows stored when the harness said meta_tokens=32 do not block a rerun, and onboarding
    measures what ``nas measure`` does."""
    from nas._cli.device import onboard_config

    sp = get_space("nemotron_flash")
    cfg = MeasureConfig(threads=1, prime=0, prime_seconds=0.0)
    resolved = cfg.resolve(sp)
    old = {**resolved.workload.to_dict(), "meta_tokens": 32}
    arch = sp.to_string(sp.hardware_embedding_archs()[0])
    timed: list[object] = []

    def stop(*args: object, **kwargs: object) -> None:
        timed.append(1)
        raise _Stop

    monkeypatch.setattr(runner, "_time_group", stop)
    monkeypatch.setattr(runner, "_plan", lambda sp_, texts, *a: MemoryPlan([list(texts)], []))
    with HardwareDB(sqlite_url) as db:
        db.upsert_device(resolved.device_spec("lmdev", hardware=""))
        db.add_measurements([
            MeasurementIn(device="lmdev", space=sp.name, arch=arch, metric=m, median=1.0,
                          n_runs=1, protocol=resolved.protocol, workload=old, source="nas measure")
            for m in resolved.metrics
        ])  # fmt: skip
        with pytest.raises(_Stop):  # it got to timing: not refused
            measure_architectures(
                db, space=sp.name, device="lmdev", archs=[sp.to_string(sp.random(1))],
                config=cfg,
            )  # fmt: skip
        onboard = onboard_config(db, "lmdev", sp)
        assert onboard.workload is not None
        assert onboard.workload.to_dict() == resolved.workload.to_dict()  # not meta_tokens=32
        with pytest.raises(_Stop):  # what onboarding measures: not refused either
            measure_architectures(
                db, space=sp.name, device="lmdev", archs=[sp.to_string(sp.random(1))],
                config=onboard,
            )  # fmt: skip
        assert len(timed) == 2 and db.get_device("lmdev").threads == 1


# ---------------------------------------------------------------- 4: retest plans once


def test_retest_plans_its_groups_once(monkeypatch: pytest.MonkeyPatch) -> None:
    real = runner._plan
    plans: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        plans.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_plan", counted)
    steps: list[tuple[int, int]] = []
    result = retest(
        space=SPACE, archs=select_architectures(get_space(SPACE), n=3, seed=0),
        config=_config(), progress=lambda done, total, _: steps.append((done, total)),
    )  # fmt: skip
    assert result.n == 3 and len(plans) == 1
    assert steps[-1][0] == steps[-1][1]  # the progress total is what was done


def test_measure_pass_times_the_groups_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from nas.measure import measure_pass

    sp = get_space(SPACE)
    archs = select_architectures(sp, n=3, seed=0)
    cfg = _config(protocol=TimingProtocol(rounds=2, repeats=1, warmup=1, anchor=False))
    resolved = cfg.resolve(sp)
    monkeypatch.setattr(runner, "_plan", _stop)  # must not be planned again
    stats = measure_pass(
        sp, archs, resolved, seed=0, tick=lambda _: None, groups=[[archs[2]], archs[:2]]
    )
    assert len(stats) == 3 and all("latency_ms" in s for s in stats)
    with pytest.raises(ValueError, match="exactly once"):
        measure_pass(sp, archs, resolved, seed=0, tick=lambda _: None, groups=[archs[:2]])


# ---------------------------------------------------------------- 5: a second SIGTERM


@pytest.fixture
def _sigterm_restored() -> Iterator[None]:
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.mark.usefixtures("_sigterm_restored")
def test_a_second_sigterm_gets_the_default_action() -> None:
    """Under `nas`'s own SIGTERM handler too (main's), a second SIGTERM during the cleanup
    must not raise into it (a plain KeyboardInterrupt, exit 130) but end the process."""

    def mains(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, mains)
    during: list[object] = []
    with pytest.raises(typer.Exit) as exc, sigterm_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the handler raises as soon as the signal arrives
        except Terminated:
            during.append(signal.getsignal(signal.SIGTERM))
            raise
    assert exc.value.exit_code == 143
    assert during == [signal.SIG_DFL]
    assert signal.getsignal(signal.SIGTERM) is mains  # restored afterwards


# ---------------------------------------------------------------- 6: owned archs


def test_owned_archs_reads_only_the_groups_rows(sqlite_url: str) -> None:
    sp = get_space(SPACE)
    archs = select_architectures(sp, n=3, seed=0)
    with HardwareDB(sqlite_url) as db:
        report = measure_architectures(db, space=SPACE, device="own", archs=archs,
                                       config=_config(chunk_size=3))  # fmt: skip
        run_id = json.loads(json.dumps(db.measurements(device="own")[0]["environment"]))["run_id"]
        cfg = _config(chunk_size=3).resolve(sp)
        assert runner._owned_archs(db, SPACE, "own", cfg, run_id, archs[:1]) == {archs[0]}
        assert runner._owned_archs(db, SPACE, "own", cfg, "other", archs) == set()
        assert report.rows_written == 3


# ---------------------------------------------------------------- 8: the key check


@pytest.mark.parametrize(
    ("status", "needle"),
    [(404, "no nas API at http://127.0.0.1:9"), (500, "could not check --api-key (HTTP 500"),
     (200, "could not check --api-key (HTTP 200")],
)  # fmt: skip
def test_only_the_expected_answer_passes_the_key_check(
    status: int,
    needle: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def post(url: str, **kwargs: object) -> httpx.Response:
        return httpx.Response(status, text="<html>\n<h1>oops</h1>\n</html>",
                              request=httpx.Request("POST", url))  # fmt: skip

    monkeypatch.setattr(httpx, "post", post)
    local = f"sqlite:///{tmp_path / 'local.sqlite'}"
    argv = ["--db", local, "measure", "--space", SPACE, "--device-name", "k", "--n", "1",
            "--json", *FAST, "--server", "http://127.0.0.1:9", "--api-key", "key"]  # fmt: skip
    code, out, err = _run(argv, capsys)
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert needle in err and "nothing was measured" in err and "Traceback" not in err
    if Path(tmp_path / "local.sqlite").exists():
        with HardwareDB(local) as db, pytest.raises(NotFoundError):
            db.get_device("k")


def test_measure_and_hwdb_agree_on_language_model_metrics() -> None:
    """Spelled out twice (measuring does not import the database layer): kept equal here."""
    import hwdb
    from nas.measure._config import LM_METRICS

    assert LM_METRICS == hwdb.LM_METRICS


def test_an_imported_device_that_did_not_record_its_threads_is_refused_with_the_way_out(
    sqlite_url: str,
) -> None:
    """An imported device (LatBench's Jetson Nano) stores threads None: rows measured now
    cannot be told apart from its rows, so `nas measure` refuses them and says what to do
    instead (import its own tool's rows); `device_conflict` gives the same answer unrun."""
    from hwdb import MeasurementIn
    from nas.measure import device_conflict

    sp = get_space(SPACE)
    archs = select_architectures(sp, n=2, seed=0)
    with HardwareDB(sqlite_url) as db:
        db.upsert_device(DeviceSpec(name="nano", runtime="torch", provenance="imported"))
        db.add_measurements([MeasurementIn("nano", SPACE, archs[0], median=3.0)])
        assert device_conflict(db, "nano", _config(threads=1).resolve(sp)) == ["threads=None"]
        with pytest.raises(NasError, match="did not record") as err:
            measure_architectures(db, space=SPACE, device="nano", archs=archs,
                                  config=_config(threads=1))  # fmt: skip
        assert "`nas hwdb import csv`" in str(err.value)
        assert db.count_measurements(device="nano") == 1
        assert device_conflict(db, "new-board", _config(threads=1).resolve(sp)) == []


def test_timings_of_this_cpu_are_not_added_to_a_device_measured_on_another(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """QA (session 29): `nas search --device cpu` suggested measuring the bundled Xeon device,
    and `nas measure` run on an AMD EPYC stored its timings under it without a word. A device
    whose rows record another CPU model now refuses this machine's; rows that record none (an
    import) or this machine's are measured on."""
    from hwdb import MeasurementIn
    from nas.measure import cpu_model

    sp = get_space(SPACE)
    archs = select_architectures(sp, n=3, seed=0)
    other = "Some Other CPU 9999"
    assert cpu_model() != other
    monkeypatch.setattr(runner, "_time_group", _stop)
    with HardwareDB(sqlite_url) as db:
        for name, env in (
            ("xeon-t1", {"device_type": "cpu", "cpu_model": other}),
            ("here-t1", {"device_type": "cpu", "cpu_model": cpu_model()}),
            ("imported", {}),
        ):
            db.upsert_device(DeviceSpec(name=name, runtime="torch", threads=1))
            db.add_measurements([MeasurementIn(name, SPACE, archs[2], median=2.0,
                                               environment=env)])  # fmt: skip
        with pytest.raises(NasError, match=f"measured on '{other}', but this machine's CPU"):
            measure_architectures(db, space=SPACE, device="xeon-t1", archs=archs[:2],
                                  config=_config(threads=1))  # fmt: skip
        for name in ("here-t1", "imported"):  # accepted: measuring starts (then is stopped)
            with pytest.raises(_Stop):
                measure_architectures(db, space=SPACE, device=name, archs=archs[:2],
                                      config=_config(threads=1))  # fmt: skip
