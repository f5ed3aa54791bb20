"""Commands that messages suggest run as printed (QA, session 29): they name the `--db` the
command was given, and a suggested `nas measure` carries the stored device's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hwdb.test_cli_fixes import _run


def _db(tmp_path: Path) -> str:
    """`cam` (onnxruntime, 4 threads) measured on 60 archs but not NB201's 10 references."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from search_spaces import get_space

    sp = get_space("nasbench201")
    refs = [sp.to_string(a) for a in sp.hardware_embedding_archs()]
    others = [a for a in dict.fromkeys(sp.to_string(sp.random(i)) for i in range(70))]
    archs = refs + [a for a in others if a not in refs][:60]
    url = f"sqlite:///{tmp_path / 'h.sqlite'}"
    with HardwareDB(url, create=True) as db:
        db.upsert_device(DeviceSpec(name="cam", runtime="onnxruntime", threads=4))
        db.upsert_device(DeviceSpec(name="ref"))
        db.add_measurements(
            [
                MeasurementIn("cam", "nasbench201", a, median=2.0 + i)
                for i, a in enumerate(archs[10:])
            ]
            + [MeasurementIn("ref", "nasbench201", a, median=3.0 + i) for i, a in enumerate(archs)]
        )
    return url


def test_a_suggested_command_names_the_db_and_the_devices_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA: `predictor evaluate` suggested `nas measure ... --reference-set`, which, run as
    printed, measured into the default database and was refused there for its threads."""
    url = _db(tmp_path)
    argv = ["predictor", "evaluate", "--space", "nasbench201", "--device", "cam"]
    code, _, err = _run(["--db", url, *argv], capsys)
    assert code == 1 and err.count("\n") == 1
    assert (
        f"`nas --db {url} measure --space nasbench201 --device-name cam --runtime onnxruntime "
        "--threads 4 --reference-set`" in err
    )


def test_without_db_the_command_is_left_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through NAS_DATABASE_URL the next command reaches the same database unchanged."""
    monkeypatch.setenv("NAS_DATABASE_URL", _db(tmp_path))
    code, _, err = _run(
        ["predictor", "evaluate", "--space", "nasbench201", "--device", "cam"], capsys
    )
    assert code == 1 and "`nas measure --space nasbench201 --device-name cam --runtime" in err


def test_with_db_hides_a_password_and_leaves_prose_alone() -> None:
    from nas._cli._common import set_db_option, with_db

    try:
        set_db_option("postgresql+psycopg://u:secret@h:5432/d?sslpassword=s2&sslmode=require")
        shown = "'postgresql+psycopg://u:***@h:5432/d?sslmode=require&sslpassword=***'"
        text = "run `nas hwdb init`, `nas device catalog` lists them; `nas measure` refuses"
        assert with_db(text) == (
            f"run `nas --db {shown} hwdb init`, `nas --db {shown} device catalog` lists them; "
            "`nas measure` refuses"
        )
        for prose in ("source: nas measure", "a history.json that nas search did not write"):
            assert with_db(prose) == prose  # review: --db went into sentences
    finally:
        set_db_option(None)


def _db64(tmp_path: Path) -> tuple[str, list[str]]:
    """`cam` measured at 64 px and `ref` at the default input, on the same 60 archs."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from search_spaces import get_space

    sp = get_space("nasbench201")
    archs = list(dict.fromkeys(sp.to_string(sp.random(i)) for i in range(80)))[:60]
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    with HardwareDB(url, create=True) as db:
        for name in ("cam", "ref"):
            db.upsert_device(DeviceSpec(name=name))
        db.add_measurements(
            [MeasurementIn("cam", "nasbench201", a, median=2.0 + i % 7,
                           workload={"resolution": 64}) for i, a in enumerate(archs)]
            + [MeasurementIn("ref", "nasbench201", a, median=3.0 + i % 5)
               for i, a in enumerate(archs)]
        )  # fmt: skip
    return url, archs


def test_predict_says_which_input_its_milliseconds_are_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA: `predictor predict` printed milliseconds for the input the device was measured at
    (here 64 px) without saying so, text or `--json`; the API already said it."""
    import json

    url, archs = _db64(tmp_path)
    argv = ["--db", url, "predictor", "predict", "--space", "nasbench201", "--device", "cam"]
    argv += ["--arch", archs[0], "--predictor", "flops"]
    code, out, err = _run(argv, capsys)
    assert (
        code == 0 and "note: milliseconds for the input batch_size=1, resolution=64, cam's" in err
    )
    assert out.count(" ms ± ") == 1
    code, out, _ = _run([*argv, "--json"], capsys)
    assert code == 0 and json.loads(out)["workload"] == {"batch_size": 1, "resolution": 64}


def test_db_given_after_the_command_name_says_where_it_goes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["hwdb", "stats", "--db", "x"], ["search", "--db", "x"], ["measure", "--db=x"]):
        code, _, err = _run(argv, capsys)  # search and measure: click also suggests an option
        assert code == 2 and err.strip() == (
            "error: --db goes before the command: it is an option of nas itself "
            "(nas --db URL COMMAND ...)"
        )


def test_search_on_a_mistyped_db_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA: `nas search` on a mistyped --db said only that no device matched (and removed the
    new file); the database's emptiness is named now, as by the other commands."""
    typo = tmp_path / "mian.sqlite"
    argv = ["--db", f"sqlite:///{typo}", "search", "--device", "nothing-like-it"]
    code, _, err = _run(argv, capsys)
    assert code == 1 and err.count("\n") == 1 and not typo.exists()
    assert f"the database sqlite:///{typo} is empty (check --db" in err


def test_predict_reads_archs_files_as_measure_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA: a `# comment` line that `nas measure --archs` skips was refused by `predict`."""
    from nas import CLIUsageError
    from nas._cli.predictor import _read_archs
    from search_spaces import get_space

    sp = get_space("nasbench201")
    arch = sp.to_string(sp.random(0))
    path = tmp_path / "a.txt"
    path.write_text(f"# front of run 3\n{arch}  # fastest\n\n")
    assert _read_archs(path, "nasbench201") == [arch]
    path.write_bytes(f"{arch}\n\xbd\n".encode("latin-1"))  # a line that is not text
    with pytest.raises(CLIUsageError, match=r"line 2: not UTF-8 text \(byte 0xbd\)"):
        _read_archs(path, "nasbench201")


def test_predict_takes_several_archs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """QA: `predictor predict --arch A --arch B` predicted only B, silently."""
    url, archs = _db64(tmp_path)
    a, b = archs[5], archs[9]
    argv = ["--db", url, "predictor", "predict", "--space", "nasbench201", "--device", "cam"]
    code, out, _ = _run([*argv, "--arch", a, "--arch", b, "--predictor", "flops"], capsys)
    assert code == 0 and [line.split()[-1] for line in out.splitlines()] == [a, b], (out, _)
    code, _, err = _run(argv, capsys)
    assert code == 2 and "give either --arch (repeatable) or --archs" in err


def test_a_search_refuses_an_output_folder_it_cannot_write_or_does_not_own(
    tmp_path: Path,
) -> None:
    """QA: with an RDB study an unwritable -o was found only after the whole search (a raw
    OSError line); a history.json nas search did not write was replaced without a word."""
    from nas.search import SearchError
    from nas.search._pareto import check_output_dir

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "history.json").write_text('{"mine": 1}')
    with pytest.raises(SearchError, match="holds a history.json that nas search did not write"):
        check_output_dir(tmp_path / "mine", study="s")
    with pytest.raises(SearchError, match="cannot write to output folder /proc/x"):
        check_output_dir(Path("/proc/x"), study="s")  # refused even to root
    check_output_dir(tmp_path / "new" / "out", study="s")  # writable: and nothing is created
    assert not (tmp_path / "new").exists()


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path: Path) -> None:
    """QA: a search killed while writing its outputs left `.pareto.<pid>.tmp.json` and the
    like for good; the next write removes those of processes that no longer run."""
    import os

    from nas.search._pareto import _OUTPUTS, _remove_stale_temporaries

    paths = {k: tmp_path / n for k, n in _OUTPUTS.items()}
    dead = tmp_path / ".pareto.999999999.tmp.json"
    live = tmp_path / f".pareto.{os.getpid()}.tmp.json"
    other = tmp_path / ".pareto.notes.json"
    for f in (dead, live, other):
        f.write_text("{}")
    _remove_stale_temporaries(paths)
    assert not dead.exists() and live.exists() and other.exists()


@pytest.mark.parametrize("command", ["predict", "adapt", "evaluate"])
def test_an_empty_device_is_a_usage_error_as_in_search(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """QA: `--device ''` exited 2 in `nas search` but 1 in `predictor predict`."""
    argv = ["predictor", command, "--space", "nasbench201", "--device", " "]
    code, _, err = _run([*argv, *(["--arch", "x"] if command == "predict" else [])], capsys)
    assert code == 2 and err.startswith("error: --device must be a device name")


def test_db_without_a_value_and_an_unparsable_url_keep_their_own_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Second review: `nas --db` (no value) got the "goes before the command" hint, and a URL
    that does not parse was printed with its password."""
    code, _, err = _run(["--db"], capsys)
    assert code == 2 and "requires an argument" in err
    code, _, err = _run(["--db", "postgresql://u:secret@h:notaport/db", "hwdb", "stats"], capsys)
    assert code == 2 and "secret" not in err and "u:***@h:notaport" in err  # a usage error
