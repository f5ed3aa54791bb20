"""The on-disk store of traced operator tables (``predictors.zeroshot._tracecache``)."""

from __future__ import annotations

import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from predictors.zeroshot import (
    OpTable,
    _roofline,
    _tracecache,
    clear_trace_store,
    op_table,
    op_tables,
    persistent_traces,
    trace_store_info,
)

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|"
OTHER = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|none~2|"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty store folder and an empty in-memory memo, with every trace counted."""
    root = tmp_path / "traces"
    monkeypatch.setenv("NAS_TRACE_CACHE", str(root))
    monkeypatch.setattr(_roofline, "_TABLES", OrderedDict())
    return root


@pytest.fixture
def traces(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...]]]:
    """``(arch, modes)`` of every real trace."""
    calls: list[tuple[str, tuple[str, ...]]] = []
    real = _roofline._trace

    def counting(space: object, arch: str, workload: object, modes: tuple[str, ...]) -> object:
        calls.append((arch, tuple(modes)))
        return real(space, arch, workload, modes)  # type: ignore[arg-type]

    monkeypatch.setattr(_roofline, "_trace", counting)
    return calls


def _forget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new process: the in-memory memo is empty, the disk store is not."""
    monkeypatch.setattr(_roofline, "_TABLES", OrderedDict())


def _same(a: OpTable, b: OpTable) -> None:
    assert a.ops == b.ops
    for col in ("kind", "flops", "act_elems", "weight_elems", "out_elems"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
        assert getattr(a, col).dtype == getattr(b, col).dtype


def test_a_later_process_loads_the_same_tables_without_tracing(
    store: Path, traces: list[tuple[str, tuple[str, ...]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with persistent_traces():
        eager, graph, pruned = op_tables("nasbench201", ARCH, modes=("eager", "graph", "pruned"))
    assert traces == [(ARCH, ("eager", "graph", "pruned"))]
    assert trace_store_info().current_files == 1
    _forget(monkeypatch)
    with persistent_traces():
        _same(op_table("nasbench201", ARCH, mode="pruned"), pruned)
        _same(op_table("nasbench201", ARCH, mode="eager"), eager)
        _same(op_table("nasbench201", ARCH), graph)
    assert len(traces) == 1  # no second trace


def test_only_traces_inside_the_block_are_stored(
    store: Path, traces: list[tuple[str, tuple[str, ...]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Search candidates (new archs every run) are not persisted; fixed sets are."""
    op_table("nasbench201", ARCH)
    assert not store.exists()
    monkeypatch.setenv("NAS_TRACE_CACHE", "off")
    with persistent_traces():
        op_table("nasbench201", OTHER)
    assert not store.exists() and trace_store_info().root is None


def test_only_the_missing_modes_are_traced_and_the_stored_ones_kept(
    store: Path, traces: list[tuple[str, tuple[str, ...]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with persistent_traces():
        graph = op_table("nasbench201", ARCH)
    _forget(monkeypatch)
    with persistent_traces():
        _same(op_table("nasbench201", ARCH), graph)  # from disk
        op_tables("nasbench201", ARCH, modes=("graph", "eager", "pruned"))  # two not stored
    _forget(monkeypatch)
    with persistent_traces():
        eager, again = op_tables("nasbench201", ARCH, modes=("eager", "graph"))
    _same(again, graph)
    assert len(eager) > len(graph)
    assert traces == [(ARCH, ("graph",)), (ARCH, ("eager", "pruned"))]


def test_unreadable_files_are_misses_and_get_rewritten(
    store: Path, traces: list[tuple[str, tuple[str, ...]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    with persistent_traces():
        first = op_table("nasbench201", ARCH)
    (path,) = store.rglob("*.npz")
    for garbage in (b"", b"PK\x03\x04 truncated", path.read_bytes()[:100]):
        path.write_bytes(garbage)
        _forget(monkeypatch)
        with persistent_traces():
            _same(op_table("nasbench201", ARCH), first)
    assert len(traces) == 4
    _forget(monkeypatch)
    with persistent_traces():
        op_table("nasbench201", ARCH)
    assert len(traces) == 4  # the last rewrite is a good file


def test_another_torch_or_space_code_uses_another_folder(
    store: Path, traces: list[tuple[str, tuple[str, ...]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    with persistent_traces():
        op_table("nasbench201", ARCH)
    before = _tracecache.fingerprint()
    _tracecache.fingerprint.cache_clear()
    monkeypatch.setattr(torch, "__version__", "0.0.1")
    try:
        assert _tracecache.fingerprint() != before
        _forget(monkeypatch)
        with persistent_traces():
            op_table("nasbench201", ARCH)
        assert len(traces) == 2
        info = trace_store_info()
        assert (info.files, info.current_files) == (2, 1)
    finally:
        _tracecache.fingerprint.cache_clear()


def test_user_spaces_are_not_stored(store: Path) -> None:
    """A space from a user's own package is not covered by the fingerprint."""
    from search_spaces import get_space

    builtin = get_space("nasbench201")
    user_space = type("UserSpace", (type(builtin),), {"__module__": "my_company.spaces"})
    with persistent_traces():
        assert _roofline._store_for(builtin) is not None
        assert _roofline._store_for(object.__new__(user_space)) is None
    assert _roofline._store_for(builtin) is None  # outside the block


def test_clear_removes_only_the_stores_own_folders(
    store: Path, traces: list[tuple[str, tuple[str, ...]]]
) -> None:
    """``NAS_TRACE_CACHE`` may name a folder that holds other things: they stay."""
    store.mkdir(parents=True)
    (store / "notes.txt").write_text("mine")
    (store / "results").mkdir()
    with persistent_traces():
        op_table("nasbench201", ARCH)
        op_table("nasbench201", OTHER)
    assert trace_store_info().files == 2
    assert clear_trace_store() == 2
    assert sorted(p.name for p in store.iterdir()) == ["notes.txt", "results"]
    assert trace_store_info().files == 0


def test_unwritable_store_still_traces(
    store: Path, traces: list[tuple[str, tuple[str, ...]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_text("a file where the folder should be")
    with pytest.warns(RuntimeWarning, match="is a file, not a folder"), persistent_traces():
        table = op_table("nasbench201", ARCH)
    assert len(table) > 0 and traces == [(ARCH, ("graph",))]
    with warnings.catch_warnings():  # said once per process, not at every trace
        warnings.simplefilter("error")
        with persistent_traces():
            op_table("nasbench201", ARCH)


def test_cli_cache_info_and_clear(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from nas._cli.main import main

    with persistent_traces():
        op_table("nasbench201", ARCH)

    def run(*argv: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            main(list(argv))
        assert exit_info.value.code == 0
        return capsys.readouterr().out

    info = json.loads(run("cache", "info", "--json"))
    assert info["root"] == str(store) and info["files"] == info["current_files"] == 1
    assert info["bytes"] > 0
    assert "removed 1 stored operator tables" in run("cache", "clear")
    assert "0 (0 of this fingerprint)" in run("cache", "info")


def test_helpplus_meta_training_reads_its_traces_back(
    nb201_table: pd.DataFrame,
    store: Path,
    traces: list[tuple[str, tuple[str, ...]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second meta-training in a new process traces nothing and gives the same prior."""
    from predictors import get_predictor, make_tasks

    tasks = make_tasks(nb201_table, "nasbench201", list(nb201_table.columns[:-1]))
    kwargs = {"steps": 5, "hidden": 8, "sim_devices": 2, "sim_archs": 200, "sim_ops": 6_000}
    a = get_predictor("help+", **kwargs).fit(tasks)
    traced = len(traces)
    assert traced == a.sim_traced_ >= 2  # type: ignore[attr-defined]
    _forget(monkeypatch)
    b = get_predictor("help+", **kwargs).fit(tasks)
    assert len(traces) == traced
    np.testing.assert_array_equal(a.sim_pca_[1], b.sim_pca_[1])  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def store_seen_by_module_fixtures() -> str | None:
    """What a module-scoped fixture (e.g. one that meta-trains a predictor) sees."""
    import os

    return os.environ.get("NAS_TRACE_CACHE")


def test_module_fixtures_already_use_the_tests_own_store(
    store_seen_by_module_fixtures: str | None, trace_store_dir: Path
) -> None:
    """Fixtures wider than a test must not write to the user's store either."""
    assert store_seen_by_module_fixtures == str(trace_store_dir)


def test_clear_that_cannot_delete_says_so(
    store: Path, traces: list[tuple[str, tuple[str, ...]]], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A store on a read-only file system: `nas cache clear` must not report removals."""
    from nas._cli.main import main

    with persistent_traces():
        op_table("nasbench201", ARCH)
    monkeypatch.setattr("predictors.zeroshot._tracecache.shutil.rmtree", lambda *a, **k: None)
    with pytest.raises(OSError, match="could not delete 1 folder"):
        clear_trace_store()
    with pytest.raises(SystemExit) as exit_info:
        main(["cache", "clear"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0 tables removed" in err[0]
    assert trace_store_info().files == 1
