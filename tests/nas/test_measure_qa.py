"""Regression tests of the QA pass over `nas measure` / `nas device onboard` (session 23)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

import nas.measure._runner as runner
from hwdb import DeviceSpec, HardwareDB, NotFoundError
from nas import NasError
from nas.measure import (
    MeasureConfig,
    TimingProtocol,
    measure_architectures,
    select_architectures,
)
from search_spaces import Workload, get_space
from tests._cli import run_cli as _run

SPACE = "nasbench201"
FAST = ["--rounds", "2", "--repeats", "1", "--warmup", "1", "--threads", "1",
        "--prime", "0", "--prime-seconds", "0", "--resolution", "16"]  # fmt: skip


def _config(**kwargs: Any) -> MeasureConfig:
    base: dict[str, Any] = {
        "threads": 1, "protocol": TimingProtocol(rounds=2, repeats=1, warmup=1),
        "workload": Workload(resolution=16), "chunk_size": 2, "prime": 0, "prime_seconds": 0.0,
    }  # fmt: skip
    return MeasureConfig(**{**base, **kwargs})


def _devices(url: str) -> set[str]:
    with HardwareDB(url) as db:
        return {d.name for d in db.list_devices()}


def _registered(url: str) -> set[str]:
    """Device names in a database another process may be creating (read-only: opening it
    with HardwareDB would run its migrations alongside the other process's)."""
    path = Path(url.removeprefix("sqlite:///"))
    if not path.exists():
        return set()
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)) as con:
            return {str(row[0]) for row in con.execute("SELECT name FROM device")}
    except sqlite3.Error:
        return set()


# ---------------------------------------------------------------- 1: SIGTERM, an empty device


def test_sigterm_cleans_up_like_ctrl_c(sqlite_url: str) -> None:
    """SIGTERM while priming: one line, exit 143, and no empty device left to block a rerun."""
    argv = [sys.executable, "-c", "from nas._cli.main import main; main()", "--db", sqlite_url,
            "measure", "--space", SPACE, "--device-name", "term", "--n", "2", "--json", *FAST,
            "--prime", "2", "--prime-seconds", "600"]  # fmt: skip
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if "term" in _registered(sqlite_url):
                break  # registered: it is priming now (for 600 s)
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be terminated"
        time.sleep(1.0)  # into the priming loop
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 143, err
    assert len(lines) == 1 and lines[0].startswith("error: terminated;"), err
    assert "nothing was stored" in lines[0] and "Traceback" not in err
    assert "term" not in _devices(sqlite_url)


def test_a_device_without_measurements_takes_the_settings_of_the_next_run(
    sqlite_url: str,
) -> None:
    """A run killed (SIGKILL) before its first group leaves its device without rows; a rerun
    with other settings declares it again instead of refusing the name forever."""
    sp = get_space(SPACE)
    archs = select_architectures(sp, n=1, seed=0)
    with HardwareDB(sqlite_url) as db:
        left = _config(threads=1).resolve(sp).device_spec("killed", hardware="")
        db.upsert_device(left)  # what the killed run stored: the device, no measurement
        report = measure_architectures(
            db, space=SPACE, device="killed", archs=archs, config=_config(threads=2)
        )
        assert report.rows_written == 1 and db.get_device("killed").threads == 2
        with pytest.raises(NasError, match="already exists with threads=2"):  # rows now: kept
            measure_architectures(
                db, space=SPACE, device="killed", archs=archs, config=_config(threads=1)
            )
        db.upsert_device(
            DeviceSpec(name="imported", family="cpu", hardware="x", runtime="torch",
                       precision="fp32", batch_size=1, threads=8, provenance="imported",
                       source="a file")
        )  # fmt: skip
        with pytest.raises(NasError, match="already exists"):  # only `nas measure`'s own
            measure_architectures(db, space=SPACE, device="imported", archs=archs,
                                  config=_config())  # fmt: skip


def test_a_failed_rerun_on_a_redeclared_device_restores_its_settings(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that declared an empty device of `nas measure` again and then failed leaves it
    as it found it: it existed before the run, so it is not deleted."""
    sp = get_space(SPACE)

    def fail(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "_time_group", fail)
    with HardwareDB(sqlite_url) as db:
        left = _config(threads=1).resolve(sp).device_spec("empty", hardware="cpu x")
        db.upsert_device(left)
        with pytest.raises(KeyboardInterrupt):
            measure_architectures(
                db, space=SPACE, device="empty", archs=select_architectures(sp, n=1, seed=0),
                config=_config(threads=2),
            )  # fmt: skip
        dev = db.get_device("empty")
        assert (dev.threads, dev.hardware, dev.source) == (1, "cpu x", "nas measure")
        assert db.count_measurements(device="empty") == 0
        with pytest.raises(KeyboardInterrupt):  # a device this run inserted: deleted again
            measure_architectures(
                db, space=SPACE, device="new", archs=select_architectures(sp, n=1, seed=0),
                config=_config(threads=2),
            )  # fmt: skip
        with pytest.raises(NotFoundError):
            db.get_device("new")


# ---------------------------------------------------------------- 2: concurrent runs


def test_a_concurrent_run_neither_overwrites_nor_claims_the_other_runs_rows(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run B times its first group; run A then measures the same archs and finishes; B's
    groups find A's rows stored. B must not re-level (overwrite) them, nor report them."""
    sp = get_space(SPACE)
    archs = select_architectures(sp, n=4, seed=3)
    real = runner._time_group
    other: list[Any] = []

    def time_group(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if not other:
            other.append(None)
            other[0] = measure_architectures(
                db, space=SPACE, device="conc", archs=archs, config=_config()
            )
        return out

    monkeypatch.setattr(runner, "_time_group", time_group)
    with HardwareDB(sqlite_url) as db:
        late = measure_architectures(db, space=SPACE, device="conc", archs=archs, config=_config())
        first = other[0]
        assert first.rows_written == 4 and sorted(first.measured) == sorted(archs)
        assert late.rows_written == 0 and late.measured == {}
        assert sorted(late.stored_by_another_run) == sorted(archs)
        stored = {r["arch"]: r for r in db.measurements(space=SPACE, device="conc")}
    assert len(stored) == 4
    for arch in archs:  # the rows are run A's, as A reported them
        assert stored[arch]["median"] == pytest.approx(first.measured[arch]["latency_ms"]["median"])
        assert stored[arch]["environment"]["run_id"]


def test_the_relevel_rewrite_keeps_rows_a_forced_run_replaced_meanwhile(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run B finishes its groups; before it re-levels them, a --force run A replaces one of
    its archs. B's rewrite (one guarded transaction) must leave A's row, and say so."""
    sp = get_space(SPACE)
    archs = select_architectures(sp, n=4, seed=5)
    monkeypatch.setattr(runner.DriftAnchor, "relevel", lambda self: {"latency_ms": 1.25})
    real = runner._corrected
    forced: list[Any] = []

    def corrected(*args: Any, **kwargs: Any) -> Any:
        if not forced:  # just before B rewrites its rows (A's own rewrite passes through)
            forced.append(None)
            forced[0] = measure_architectures(
                db, space=SPACE, device="win", archs=archs[:1], config=_config(), force=True
            )
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_corrected", corrected)
    with HardwareDB(sqlite_url) as db:
        late = measure_architectures(db, space=SPACE, device="win", archs=archs, config=_config())
        stored = {r["arch"]: r for r in db.measurements(space=SPACE, device="win")}
    first = forced[0]
    lost = [a for a in archs if a not in late.measured]
    assert lost == late.stored_by_another_run == archs[:1]
    assert stored[archs[0]]["median"] == pytest.approx(
        first.measured[archs[0]]["latency_ms"]["median"]
    )  # the forced run's row, not B's re-levelled one
    for arch in archs[1:]:  # B's own rows, re-levelled
        assert stored[arch]["median"] == pytest.approx(late.measured[arch]["latency_ms"]["median"])


# ---------------------------------------------------------------- 3: memory


def test_the_memory_plan_skips_models_that_cannot_fit_and_splits_groups() -> None:
    """nemotron_flash's reference set on a machine with 8 GB free: the two 2.75 B models
    (11 GB each in fp32) are skipped, and no group (with the anchor) exceeds the budget."""
    from nas.measure._memory import plan_memory

    sp = get_space("nemotron_flash")
    texts = select_architectures(sp, reference_set=True)
    cfg = MeasureConfig(threads=1, chunk_size=10, prime=30).resolve(sp)
    anchor = sp.to_string(sp.hardware_embedding_archs()[0])
    plan = plan_memory(sp, texts, cfg, anchor=anchor, free_bytes=lambda _: 8 * 10**9, share=0.8)
    params = {t: sp.profile(sp.from_string(t)).params for t in texts}
    assert plan.budget == pytest.approx(6.4e9)
    budget = plan.budget or 0.0
    assert set(plan.too_large) == {t for t in texts if params[t] > 2e9} and plan.too_large
    assert sorted(t for g in plan.groups for t in g) == sorted(set(texts) - set(plan.too_large))
    for group in plan.groups:
        assert 1 <= len(group) <= 10
        extra = sum(4 * params[t] for t in group if t != anchor)
        assert 4 * params[anchor] + extra <= budget
    assert 4 * sum(params[t] for t in plan.prime) <= budget and plan.prime
    warning = plan.warning("nemotron_flash")
    assert warning and "skipping 2 nemotron_flash" in warning and "GB" in warning


def test_a_run_none_of_whose_models_fit_is_refused_before_building(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.search._memory as memory

    built: list[str] = []
    monkeypatch.setattr(memory, "available_memory_bytes", lambda *_: 10**9)  # 0.8 GB usable
    monkeypatch.setattr(runner, "_build", lambda *a, **k: built.append("x"))
    argv = ["--db", sqlite_url, "measure", "--space", "nemotron_flash", "--device-name", "lm",
            "--reference-set", "--threads", "1"]  # fmt: skip
    code, out, err = _run(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1 and len(lines) == 1 and out == ""
    assert lines[0].startswith("error: nothing to measure:") and "free memory" in lines[0]
    assert built == [] and "lm" not in _devices(sqlite_url)


# ---------------------------------------------------------------- 4: workload


def test_a_language_model_workload_records_the_meta_tokens_its_models_prepend() -> None:
    """The models prepend their own meta tokens (256 for ``mt256``); the stored workload says
    so, as the space default and the bundled rows do (not the 32 it used to say)."""
    sp = get_space("nemotron_flash")
    workload = MeasureConfig(threads=1).resolve(sp).workload
    arch = sp.hardware_embedding_archs()[0]
    assert workload.meta_tokens == sp.default_workload().meta_tokens == arch.meta_tokens == 256
    assert (workload.prompt_len, workload.decode_len) == (128, 16)


# ---------------------------------------------------------------- 5: onboard


def test_onboarding_continues_a_device_measured_with_nas_measure(sqlite_url: str) -> None:
    from nas._cli.device import onboard_config

    sp = get_space(SPACE)
    with HardwareDB(sqlite_url) as db:
        measure_architectures(
            db, space=SPACE, device="mn", archs=select_architectures(sp, n=1, seed=0),
            config=_config(threads=1),
        )  # fmt: skip
        cfg = onboard_config(db, "mn", sp)
        assert cfg.threads == 1 and cfg.runtime == "torch" and cfg.workload is not None
        assert cfg.workload.resolution == 16
        report = measure_architectures(  # what onboarding measures: no "already exists"
            db, space=SPACE, device="mn", archs=select_architectures(sp, n=2, seed=5),
            config=cfg,
        )  # fmt: skip
        assert report.rows_written == 2
        assert onboard_config(db, "mn", sp, threads=3).threads == 3  # an option wins
        assert onboard_config(db, "new", sp).threads is None  # a new device: the defaults


@pytest.mark.parametrize(
    ("option", "needle"), [("--runtime=tvm", "--runtime"), ("--precision=int8", "--precision")]
)
def test_onboard_options_are_checked(
    option: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["device", "onboard", "x", "--space", SPACE, option], capsys)
    assert code == 2 and err.count("\n") == 1 and needle in err


# ---------------------------------------------------------------- 6: API key checked first


def test_a_refused_api_key_fails_before_measuring(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from api.config import Settings
    from api.deps import get_db
    from api.main import create_app
    from tests.api._helpers import live_server

    server_db = HardwareDB(f"sqlite:///{tmp_path / 'server.sqlite'}")
    token = server_db.create_api_key("edge")[1]
    app = create_app(Settings())
    app.dependency_overrides[get_db] = lambda: server_db
    local = f"sqlite:///{tmp_path / 'local.sqlite'}"
    base = ["--db", local, "measure", "--space", SPACE, "--device-name", "edge", "--n", "1",
            "--json", *FAST]  # fmt: skip
    try:
        with live_server(app) as url:
            code, out, err = _run([*base, "--server", url, "--api-key", "wrong"], capsys)
            assert code == 1 and err.count("\n") == 1 and out == ""
            assert "refused --api-key (HTTP 401" in err and "nothing was measured" in err
            assert not Path(local.removeprefix("sqlite:///")).exists() or "edge" not in (
                _devices(local)
            )
            code, out, _ = _run([*base, "--server", url, "--api-key", token], capsys)
            assert code == 0 and json.loads(out)["upload"]["inserted"] == 1
        code, _, err = _run([*base, "--server", url, "--api-key", token], capsys)  # down now
        assert code == 1 and "cannot reach" in err and "nothing was measured" in err
    finally:
        server_db.close()


# ---------------------------------------------------------------- 7: usage errors


def test_a_device_conflict_is_the_only_line_on_stderr(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--db", sqlite_url, "measure", "--space", SPACE, "--device-name", "d", "--n", "1",
            *FAST]  # fmt: skip
    assert _run([*base, "--json"], capsys)[0] == 0
    code, _, err = _run([*base, "--batch", "2"], capsys)  # progress bar on: no --json
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: device 'd'")


# ---------------------------------------------------------------- 8: minor


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"# header\n|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
         b"skip_connect~1|skip_connect~2|\n\xbd\xbd\n", "line 3: not UTF-8 text (byte 0xbd)"),
        (b"\n\nnot-an-arch\n", "line 3:"),
        (b"# only a comment\n", "holds no architecture"),
    ],
)  # fmt: skip
def test_archs_file_errors_name_the_file_and_line(
    content: bytes, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "archs.txt"
    path.write_bytes(content)
    code, out, err = _run(
        ["measure", "--space", SPACE, "--device-name", "x", "--archs", str(path)], capsys
    )
    assert code == 2 and err.count("\n") == 1 and out == ""
    assert f"--archs {str(path)!r}" in err and needle in err


def test_more_archs_than_a_space_holds_gives_all_of_them_with_a_warning() -> None:
    from search_spaces import restrict_space

    sp = get_space(SPACE)
    fixed = {f"edge_{e}": ["nor_conv_3x3"] for e in ("0_1", "0_2", "1_2", "0_3", "1_3")}
    small = restrict_space(sp, {**fixed, "edge_2_3": ["none", "skip_connect"]})
    with pytest.warns(UserWarning, match="gave only 2 distinct architectures for `n` = 5"):
        archs = select_architectures(small, n=5, seed=0)
    assert len(archs) == 2 == len(set(archs))


def test_ctrl_c_says_what_was_kept(
    sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = runner._time_group
    calls: list[int] = []

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_time_group", interrupted)
    argv = ["--db", sqlite_url, "measure", "--space", SPACE, "--device-name", "ki", "--n", "4",
            "--chunk-size", "2", "--json", *FAST]  # fmt: skip
    code, _, err = _run(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    # the database the run created holds the stored groups, so it is kept and named
    assert code == 130 and len(lines) == 2
    assert lines.pop(0) == f"note: created a new database {sqlite_url.removeprefix('sqlite:///')}"
    assert lines[0] == (
        "error: interrupted; the 2 archs of the groups finished so far are stored under device "
        "'ki'; rerun the same command to resume"
    )
