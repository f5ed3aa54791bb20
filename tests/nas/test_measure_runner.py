"""Real measurements of tiny models into SQLite: resume, --force, runtimes, SIGKILL safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hwdb import HardwareDB
from nas import NasError
from nas.measure import (
    LanguageModelSampler,
    MeasureConfig,
    OnnxSampler,
    TimingProtocol,
    TorchSampler,
    measure_architectures,
    measure_pass,
    retest,
    select_architectures,
)
from search_spaces import Workload, get_space

SPACE = "nasbench201"
FAST = TimingProtocol(rounds=2, repeats=1, warmup=1)
TINY = Workload(resolution=16)


def _config(**kwargs: object) -> MeasureConfig:
    base: dict[str, object] = {
        "threads": 1, "protocol": FAST, "workload": TINY, "chunk_size": 2,
        "prime": 2, "prime_seconds": 0.0,
    }  # fmt: skip
    return MeasureConfig(**{**base, **kwargs})  # type: ignore[arg-type]


def _archs(n: int = 3) -> list[str]:
    return select_architectures(get_space(SPACE), n=n, seed=0)


def test_measure_resume_and_force(sqlite_url: str) -> None:
    archs = _archs()
    calls: list[tuple[int, int]] = []
    with HardwareDB(sqlite_url) as db:
        report = measure_architectures(
            db, space=SPACE, device="cpu-t1", archs=archs, config=_config(),
            progress=lambda done, total, _: calls.append((done, total)),
        )  # fmt: skip
        assert report.rows_written == 3 and sorted(report.measured) == sorted(archs)
        assert calls[-1][0] == calls[-1][1]  # progress reaches its total
        table = db.latency_table(SPACE, devices=["cpu-t1"])
        assert table["cpu-t1"].notna().sum() == 3 and (table["cpu-t1"] > 0).all()
        row = db.measurements(space=SPACE, device="cpu-t1")[0]
        assert row["protocol"] == "interleaved-rr2x1-w1-rh-an@r16"
        assert row["environment"]["threads"] == 1 and row["environment"]["cpu_model"]
        assert row["workload"]["resolution"] == 16
        device = db.get_device("cpu-t1")
        assert (device.runtime, device.precision, device.threads) == ("torch", "fp32", 1)

        again = measure_architectures(
            db, space=SPACE, device="cpu-t1", archs=archs, config=_config()
        )
        assert again.rows_written == 0 and not again.measured
        assert sorted(again.skipped) == sorted(archs)

        forced = measure_architectures(
            db, space=SPACE, device="cpu-t1", archs=archs[:1], config=_config(), force=True
        )
        assert forced.rows_written == 1 and list(forced.measured) == archs[:1]
        assert len(db.measurements(space=SPACE, device="cpu-t1")) == 3


def test_device_configuration_mismatch(sqlite_url: str) -> None:
    archs = _archs(1)
    with HardwareDB(sqlite_url) as db:
        measure_architectures(db, space=SPACE, device="dev", archs=archs, config=_config())
        with pytest.raises(NasError, match="threads=1"):
            measure_architectures(
                db, space=SPACE, device="dev", archs=archs, config=_config(threads=2)
            )


def test_a_failed_first_run_leaves_no_empty_device(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.measure._runner as runner

    def fail(*args: object, **kwargs: object) -> None:
        raise MemoryError("cannot allocate the input")

    monkeypatch.setattr(runner, "_time_group", fail)
    with HardwareDB(sqlite_url) as db:
        with pytest.raises(MemoryError):
            measure_architectures(db, space=SPACE, device="new", archs=_archs(2), config=_config())
        assert "new" not in {d.name for d in db.list_devices()}
        monkeypatch.undo()
        measure_architectures(db, space=SPACE, device="kept", archs=_archs(2), config=_config())
        monkeypatch.setattr(runner, "_time_group", fail)
        with pytest.raises(MemoryError):  # a device with measurements stays
            measure_architectures(
                db, space=SPACE, device="kept", archs=_archs(4), config=_config(), force=True
            )
        assert db.count_measurements(device="kept") > 0


def _interrupt(*_args: object, **_kwargs: object) -> None:
    raise KeyboardInterrupt


def test_a_catalog_device_takes_the_configuration_of_its_first_measurement(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`nas device add/onboard --catalog` registers runtime 'unknown' and no thread count;
    measuring it fills them in and keeps the catalog entry (it used to refuse, so onboarding
    with --catalog never measured anything)."""
    import nas.measure._runner as runner
    from nas._cli.device import add_catalog_device

    archs = _archs(1)
    with HardwareDB(sqlite_url) as db:
        add_catalog_device(db, "board", catalog="jetson-orin-nano", precision="fp16")
        with pytest.raises(NasError, match="precision='fp16'"):  # a real mismatch still fails
            measure_architectures(db, space=SPACE, device="board", archs=archs, config=_config())
        add_catalog_device(db, "board", catalog="jetson-orin-nano", replace=True)
        # a first run that stores nothing (interrupted, failed) leaves the settings open again
        monkeypatch.setattr(runner, "_time_group", _interrupt)
        with pytest.raises(KeyboardInterrupt):
            measure_architectures(db, space=SPACE, device="board", archs=archs, config=_config())
        dev = db.get_device("board")
        assert (dev.runtime, dev.threads, dev.provenance) == ("unknown", None, "catalog")
        monkeypatch.undo()
        measure_architectures(db, space=SPACE, device="board", archs=archs, config=_config())
        dev = db.get_device("board")
        assert (dev.runtime, dev.threads, dev.provenance) == ("torch", 1, "catalog")
        assert dev.attributes["catalog"] == "jetson-orin-nano"
        with pytest.raises(NasError, match="threads=1"):  # now it has a configuration
            measure_architectures(
                db, space=SPACE, device="board", archs=archs, config=_config(threads=2)
            )


def _check_onnx_agrees(exporter: str) -> None:
    sp = get_space(SPACE)
    arch = sp.from_string(_archs(1)[0])
    model = sp.build(arch)
    inputs = sp.example_inputs(TINY)
    ref = TorchSampler(model, inputs).outputs()
    onnx = OnnxSampler(model, inputs, threads=1, exporter=exporter).outputs()
    assert len(ref) == len(onnx)
    for a, b in zip(ref, onnx, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_onnxruntime_dynamo_export_agrees_with_torch() -> None:
    _check_onnx_agrees("dynamo")


def test_onnxruntime_agrees_with_torch_and_measures(sqlite_url: str) -> None:
    _check_onnx_agrees("torchscript")
    with HardwareDB(sqlite_url) as db:
        cfg = _config(runtime="onnxruntime", onnx_exporter="torchscript")
        report = measure_architectures(
            db, space=SPACE, device="ort-t1", archs=_archs(2), config=cfg
        )
        assert report.rows_written == 2
        device = db.get_device("ort-t1")
        assert device.runtime == "onnxruntime"
        assert device.attributes["onnx_exporter"] == "torchscript"
        env = db.measurements(space=SPACE, device="ort-t1")[0]["environment"]
        assert env["onnxruntime"]


def test_bf16_precision_and_retest() -> None:
    archs = _archs(3)
    stats = measure_pass(
        get_space(SPACE), archs, _config(precision="bf16").resolve(get_space(SPACE)),
        seed=0, tick=lambda _: None,
    )  # fmt: skip
    assert len(stats) == 3 and all(s["latency_ms"].median > 0 for s in stats)
    result = retest(space=SPACE, archs=archs, config=_config())
    assert result.n == 3 and -1.0 <= result.spearman <= 1.0 and result.mape >= 0
    assert set(result.summary()) == {"spearman", "mape", "n"}


def test_language_model_metrics(sqlite_url: str) -> None:
    space = get_space("nemotron_flash").smoke_variant()  # type: ignore[attr-defined]
    arch = space.hardware_embedding_archs()[9]
    wl = Workload(prompt_len=8, meta_tokens=4, decode_len=2)
    sampler = LanguageModelSampler(space.build(arch), space.example_inputs(wl)[0], decode_len=2)
    one = sampler.sample()
    assert set(one) == {"prefill_ms", "decode_ms_per_token", "e2e_ms"}
    assert one["e2e_ms"] == pytest.approx(one["prefill_ms"] + 2 * one["decode_ms_per_token"])
    cfg = MeasureConfig(threads=1, protocol=FAST, workload=wl, prime=0)
    with HardwareDB(sqlite_url) as db:
        text = space.to_string(arch)
        report = measure_architectures(db, space=space, device="lm", archs=[text], config=cfg)
        assert set(report.measured[text]) == {"prefill_ms", "decode_ms_per_token", "e2e_ms"}
        assert report.protocol.endswith("@p8d2")
        assert report.rows_written == 3


def test_select_architectures(tmp_path: Path) -> None:
    sp = get_space(SPACE)
    archs = select_architectures(sp, n=5, seed=3)
    assert len(set(archs)) == 5 and archs == select_architectures(sp, n=5, seed=3)
    path = tmp_path / "archs.txt"
    path.write_text(f"# two archs\n{archs[0]}\n\n{archs[1]}  # comment\n{archs[0]}\n")
    assert select_architectures(sp, archs_file=path) == archs[:2]
    ref = select_architectures(sp, reference_set=True)
    assert len(ref) >= 10
    with pytest.raises(ValueError, match="exactly one"):
        select_architectures(sp, n=3, reference_set=True)
    with pytest.raises(ValueError, match="`n`"):
        select_architectures(sp, n=0)
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n")
    with pytest.raises(ValueError, match="holds no architecture"):
        select_architectures(sp, archs_file=tmp_path / "empty.txt")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"runtime": "tvm"}, "runtime"), ({"precision": "int4"}, "precision"),
     ({"runtime": "onnxruntime", "precision": "bf16"}, "precision"),
     ({"batch_size": 0}, "batch_size"), ({"threads": 0}, "threads"),
     ({"chunk_size": 0}, "chunk_size"), ({"device_type": "tpu"}, "device_type"),
     ({"prime": -1}, "prime"), ({"prime_seconds": -1.0}, "prime_seconds"),
     ({"prime_seconds": float("inf")}, "prime_seconds"),
     ({"prime_seconds": float("nan")}, "prime_seconds")],
)  # fmt: skip
def test_config_validation(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=f"`{name}`"):
        MeasureConfig(**kwargs)  # type: ignore[arg-type]


_CHILD = """
import sys
from hwdb import HardwareDB
from nas.measure import MeasureConfig, TimingProtocol, measure_architectures, select_architectures
from search_spaces import Workload, get_space
archs = select_architectures(get_space("nasbench201"), n=6, seed=1)
cfg = MeasureConfig(threads=1, chunk_size=1, workload=Workload(resolution=16), prime=0,
                    protocol=TimingProtocol(rounds=int(sys.argv[2]), repeats=1, warmup=1))
with HardwareDB(sys.argv[1]) as db:
    measure_architectures(db, space="nasbench201", device="kill", archs=archs, config=cfg)
"""


def _count(url: str) -> int:
    with HardwareDB(url) as db:
        return len(db.measurements(space=SPACE, device="kill"))


def test_sigkill_loses_nothing_and_resumes(sqlite_url: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, sqlite_url, "60"],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if _count(sqlite_url) >= 1:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the child finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = _count(sqlite_url)
    assert 1 <= done < 6
    # Rerun with the same protocol: only the missing archs are measured.
    archs = select_architectures(get_space(SPACE), n=6, seed=1)
    cfg = MeasureConfig(
        threads=1, chunk_size=1, workload=TINY, prime=0,
        protocol=TimingProtocol(rounds=60, repeats=1, warmup=1),
    )  # fmt: skip
    with HardwareDB(sqlite_url) as db:
        protocol = cfg.resolve(get_space(SPACE)).protocol
        skipped = db.measured_archs(space=SPACE, device="kill", protocol=protocol)
        assert len(skipped) == done
        report = measure_architectures(db, space=SPACE, device="kill", archs=archs, config=cfg)
        assert set(report.skipped) == skipped and len(report.measured) == 6 - done
        assert len(db.measurements(space=SPACE, device="kill")) == 6


def test_priming_runs_for_its_seconds_only_when_the_process_is_cold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nas.measure import _runner

    calls: list[int] = []
    real = _runner.run_protocol

    def counting(samplers: list[object], protocol: TimingProtocol, **kw: object) -> object:
        calls.append(len(samplers))
        return real(samplers, protocol, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(_runner, "run_protocol", counting)
    monkeypatch.setitem(_runner._last_timed, "at", float("-inf"))
    sp = get_space(SPACE)
    cold = _config(prime=2, prime_seconds=0.5).resolve(sp)
    start = time.monotonic()
    _runner._prime(sp, cold, _archs(3), lambda _: None)
    assert time.monotonic() - start >= 0.5  # kept cycling the priming archs
    assert calls and set(calls) == {2}  # the first two archs to be measured
    calls.clear()
    monkeypatch.setitem(_runner._last_timed, "at", time.monotonic())
    _runner._prime(sp, cold, _archs(3), lambda _: None)
    assert calls == []  # timed just now: nothing to warm
