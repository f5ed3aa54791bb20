"""Meta-training on first need: once per process, never for ``train=False``, and no
latency table read for a device that has nothing to adapt to."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from hwdb import DeviceSpec, HardwareDB, MeasurementIn
from predictors import (
    NotEnoughDataError,
    NotTrainedError,
    get_adapted_predictor,
    get_predictor,
)
from predictors._service import stored_or_trained

SPACE = "nasbench201"


def _fake_training(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    """Meta-training that takes 0.2 s and fits nothing (the flops baseline, unfitted)."""

    def meta_train_for(name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        time.sleep(0.2)
        model = get_predictor("flops")
        model.to_bytes = lambda: b"payload"  # type: ignore[method-assign]
        return model

    monkeypatch.setattr("predictors._evaluate.meta_train_for", meta_train_for)
    monkeypatch.setattr("predictors._service.load_predictor", lambda payload, **_: payload)


def test_threads_that_need_one_predictor_meta_train_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight API requests for one new predictor used to meta-train it eight times at once
    (3.6 GB); now the others wait and load the artifact the first one stored."""
    calls: list[str] = []
    _fake_training(monkeypatch, calls)
    trained: list[bool] = []
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:

        def need() -> None:
            _, _, fresh = stored_or_trained(
                db, space=SPACE, predictor="flops", sources=["a", "b"], table=pd.DataFrame()
            )
            trained.append(fresh)

        threads = [threading.Thread(target=need) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert calls == ["flops"]
    assert sorted(trained) == [False, False, False, True]


def test_train_false_never_meta_trains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    _fake_training(monkeypatch, calls)
    kw: dict[str, Any] = {"space": SPACE, "predictor": "flops", "sources": ["a", "b"]}
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        with pytest.raises(NotTrainedError, match="'flops' has not been meta-trained"):
            stored_or_trained(db, train=False, table=pd.DataFrame(), **kw)
        assert calls == []
        stored_or_trained(db, table=pd.DataFrame(), **kw)  # trains and stores
        _, _, fresh = stored_or_trained(db, train=False, table=pd.DataFrame(), **kw)
    assert fresh is False and calls == ["flops"]


def test_a_device_without_enough_measurements_reads_no_latency_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole table took 4 s per API request on a large database just to say so."""

    def no_table(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the latency table was read")

    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        db.upsert_device(DeviceSpec(name="empty"))
        db.upsert_device(DeviceSpec(name="two"))
        db.add_measurements([MeasurementIn("two", SPACE, arch, median=1.0)])
        monkeypatch.setattr(db, "latency_table", no_table)
        with pytest.raises(NotEnoughDataError, match="'empty' has no measurements in"):
            get_adapted_predictor(db, space=SPACE, device="empty")
        with pytest.raises(NotEnoughDataError, match="'two' has 1 measurements in .* at least 3"):
            get_adapted_predictor(db, space=SPACE, device="two")


def test_a_fit_stops_at_its_next_step_once_asked(tmp_path: Path, nb201_table: pd.DataFrame) -> None:
    """``stop_when`` ends a meta-training at its next progress step; nothing is stored and the
    next caller may train (a server stops a fit whose client left)."""
    from predictors import TrainingCancelled, stop_when
    from predictors._progress import check_stop, progress_bar
    from predictors._service import _TRAINING

    with stop_when(lambda: True), progress_bar(False, "x", 3) as advance:
        with pytest.raises(TrainingCancelled):
            advance()
    check_stop()  # the scope ended: nothing to stop
    asked = iter(range(10**6))
    sources = [d for d in nb201_table.columns if d != "raspi4"]
    kw: dict[str, Any] = {"space": SPACE, "predictor": "help", "sources": sources}
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        with stop_when(lambda: next(asked) >= 3), pytest.raises(TrainingCancelled):
            stored_or_trained(db, params={"episodes": 200}, table=nb201_table, **kw)
        assert not _TRAINING.locked()
        with pytest.raises(NotTrainedError):
            stored_or_trained(db, params={"episodes": 200}, table=nb201_table, train=False, **kw)


def test_waiting_for_a_meta_training_can_be_stopped_and_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request told to stop used to wait for the whole running meta-training; and every
    worker thread of a server could end up waiting."""
    from predictors import TrainingBusy, TrainingCancelled, stop_when
    from predictors import _service as service

    calls: list[str] = []
    _fake_training(monkeypatch, calls)
    kw: dict[str, Any] = {"space": SPACE, "predictor": "flops", "sources": ["a", "b"]}
    with HardwareDB(f"sqlite:///{tmp_path / 'a.sqlite'}") as db:
        assert service._TRAINING.acquire()  # another thread is meta-training
        try:
            with stop_when(lambda: True), pytest.raises(TrainingCancelled):
                stored_or_trained(db, table=pd.DataFrame(), **kw)
            monkeypatch.setattr(service._TRAINING_LINE, "waiting", service.MAX_TRAINING_WAITERS)
            with pytest.raises(TrainingBusy, match="already wait for a meta-training"):
                stored_or_trained(db, table=pd.DataFrame(), **kw)
        finally:
            service._TRAINING.release()
        assert calls == []
        stored_or_trained(db, table=pd.DataFrame(), **kw)  # the lock is free: it trains
    assert calls == ["flops"]
