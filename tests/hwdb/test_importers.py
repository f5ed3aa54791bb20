"""Importers on the real shared data, plus bad input (each: clear error, unchanged DB)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import torch

from hwdb import HardwareDB, ImportDataError, export_parquet, import_parquet
from hwdb.importers import (
    import_csv,
    import_help,
    import_latbench,
    import_nats_accuracy,
    load_help,
)
from hwdb.importers.help import device_spec
from tests.hwdb._helpers import NB201_0, help_subset

TPU = "embedded-tpu-edge-tpu-int8.pickle"


@pytest.fixture(scope="module")
def help_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return help_subset(shared_data, tmp_path_factory.mktemp("help"))


@pytest.fixture(scope="module")
def help_db(help_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> HardwareDB:
    db = HardwareDB(f"sqlite:///{tmp_path_factory.mktemp('db') / 'help.sqlite'}")
    counts = import_help(db, help_dir)
    assert counts["measurements"] == 2 * 15_625 + 2 * 5_000 + 5_000
    return db


def test_help_import_counts_and_values(help_db: HardwareDB, shared_data: Path) -> None:
    stats = help_db.stats()
    assert stats["devices"] == 4  # titan_rtx_32 is one device in two spaces
    assert stats["spaces"]["nasbench201"] == {
        "devices": 2,
        "architectures": 15_625,
        "measurements": 31_250,
        "accuracies": 0,
    }
    assert stats["spaces"]["fbnet"]["architectures"] == 5_000
    assert stats["spaces"]["ofa"]["architectures"] == 5_000
    raw = torch.load(shared_data / "help/data/nasbench201/latency/gold_6226.pt", weights_only=True)
    table = help_db.latency_table("nasbench201")
    assert table.loc[NB201_0, "gold_6226"] == pytest.approx(raw[0])
    assert table.attrs["benchmark_index"][NB201_0] == 0
    ofa = help_db.architectures("ofa")
    assert ofa["arch"].str.match(r"^r\d{3}-d[234]{5}-k[357.]+-e[346.]+$").all()
    assert sorted(ofa["benchmark_index"]) == list(range(5_000))
    fb = help_db.architectures("fbnet")
    assert (fb["arch"].str.count("-") == 21).all()


def test_help_reimport_changes_nothing(help_db: HardwareDB, help_dir: Path) -> None:
    before = help_db.stats()
    assert import_help(help_db, help_dir)["measurements"] == 0
    assert help_db.stats() == before


def test_help_device_inference() -> None:
    gpu = device_spec("titan_rtx_32")
    assert (gpu.family, gpu.batch_size, gpu.hardware) == ("gpu", 32, "NVIDIA Titan RTX")
    assert device_spec("gold_6226").hardware == "Intel Xeon Gold 6226"
    assert (device_spec("pixel2").family, device_spec("essential_ph_1").batch_size) == ("phone", 1)
    assert device_spec("raspi4").family == "cpu"
    assert device_spec("eyeriss").family == "asic" and device_spec("fpga").family == "fpga"
    assert device_spec("1080ti_256").batch_size == 256


def test_latbench_and_nats_join_help(help_db: HardwareDB, shared_data: Path) -> None:
    path = shared_data / "latbench" / TPU
    counts = import_latbench(help_db, [path])
    assert counts["measurements"] == 15_284
    assert import_latbench(help_db, [path])["measurements"] == 0
    nb = help_db.stats()["spaces"]["nasbench201"]
    assert nb["architectures"] == 15_625 and nb["devices"] == 3
    with path.open("rb") as fh:
        raw: dict[tuple[int, ...], Any] = pickle.load(fh)  # trusted shared test data
    table = help_db.latency_table("nasbench201", devices=[path.stem])
    assert table.loc[NB201_0, path.stem] == (pytest.approx(float(raw[(4, 2, 1, 2, 1, 1)]) * 1000))
    dev = help_db.get_device(path.stem)
    assert (dev.family, dev.precision, dev.provenance) == ("tpu", "int8", "imported")
    nats = shared_data / "nb201-accuracy" / "nats_bench.csv"
    assert import_nats_accuracy(help_db, nats)["accuracies"] == 3 * 15_625
    assert import_nats_accuracy(help_db, nats)["accuracies"] == 0
    c10 = help_db.accuracy_table("nasbench201", dataset="cifar10")
    assert c10.max() == pytest.approx(94.373, abs=1e-3)
    assert help_db.accuracy_table("nasbench201", dataset="ImageNet16-120")[
        NB201_0
    ] == pytest.approx(26.633, abs=1e-3)


def test_parquet_round_trip(help_db: HardwareDB, tmp_path: Path) -> None:
    out = tmp_path / "gold.parquet"
    assert export_parquet(help_db, out, device="gold_6226")["measurements"] == 15_625
    with HardwareDB(f"sqlite:///{tmp_path / 'copy.sqlite'}") as copy:
        assert import_parquet(copy, out) == 15_625
        assert import_parquet(copy, out) == 0
        src = help_db.latency_table("nasbench201", devices=["gold_6226"])
        dst = copy.latency_table("nasbench201")
        assert dst["gold_6226"].sort_index().equals(src["gold_6226"].sort_index())
        assert copy.get_device("gold_6226").source == help_db.get_device("gold_6226").source


# ----------------------------------------------------------------------------- bad input
def _unchanged(db: HardwareDB, fn: Any, match: str) -> None:
    before = db.stats()
    with pytest.raises(ImportDataError, match=match):
        fn()
    assert db.stats() == before


@pytest.fixture
def small_db(tmp_path: Path) -> HardwareDB:
    db = HardwareDB(f"sqlite:///{tmp_path / 'small.sqlite'}")
    good = tmp_path / "good.csv"
    good.write_text(f"space,arch,device,latency_ms\nnasbench201,{NB201_0},pi,3.5\n")
    assert import_csv(db, good)["measurements"] == 1
    return db


def test_csv_good_file_and_optional_columns(small_db: HardwareDB, tmp_path: Path) -> None:
    path = tmp_path / "opt.csv"
    path.write_text(
        "space,arch,device,latency_ms,metric,batch_size,precision,runtime,family\n"
        f"nasbench201,{NB201_0},jn,7.25,latency_ms,8,fp16,tensorrt,jetson\n"
    )
    assert import_csv(small_db, path)["measurements"] == 1
    dev = small_db.get_device("jn")
    assert (dev.family, dev.batch_size, dev.precision, dev.runtime) == (
        "jetson",
        8,
        "fp16",
        "tensorrt",
    )
    assert small_db.measured_archs(space="nasbench201", device="jn") == {NB201_0}


def test_csv_metric_defaults_to_the_space_latency_metric(
    small_db: HardwareDB, tmp_path: Path
) -> None:
    """A language model's latency is its ``e2e_ms`` (what its predictor reads)."""
    from search_spaces import get_space

    lm = get_space("nemotron_flash")
    arch = lm.to_string(lm.random(0))
    path = tmp_path / "lm.csv"
    path.write_text(f"space,arch,device,latency_ms\nnemotron_flash,{arch},lm-board,41.5\n")
    assert import_csv(small_db, path)["measurements"] == 1
    assert small_db.measured_archs(space="nemotron_flash", device="lm-board", metric="e2e_ms") == {
        arch
    }


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("space,arch,device\nnasbench201,x,d\n", "field 'latency_ms': missing column"),
        (
            f"space,arch,device,latency_ms\nnasbench201,{NB201_0},d,nan\n",
            "row 1: field 'latency_ms'",
        ),
        (
            f"space,arch,device,latency_ms\nnasbench201,{NB201_0},d,1\nnasbench201,{NB201_0},e,-2\n",
            "row 2: field 'latency_ms'",
        ),
        (f"space,arch,device,latency_ms\nnasbench201,{NB201_0},d,0\n", "finite and > 0"),
        (f"space,arch,device,latency_ms\nnasbench201,{NB201_0},d,fast\n", "must be a number"),
        (
            "space,arch,device,latency_ms\nwonderland,abc,d,1.0\n",
            "field 'space': unknown search space",
        ),
        ("space,arch,device,latency_ms\nnasbench201,|conv~0|,d,1.0\n", "field 'arch'"),
        ("space,arch,device,latency_ms\nfbnet,k3_e1-skip,d,1.0\n", "field 'arch'"),
        (
            f"space,arch,device,latency_ms,resolution\nnasbench201,{NB201_0},d,1.0,-3\n",
            "row 1: field 'resolution': `resolution` must be a positive integer",
        ),
        (
            f"space,arch,device,latency_ms,prompt_len\nnasbench201,{NB201_0},d,1.0,long\n",
            "row 1: field 'prompt_len': not an integer",
        ),
    ],
)
def test_csv_bad_input(small_db: HardwareDB, tmp_path: Path, body: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    _unchanged(small_db, lambda: import_csv(small_db, path), match)
    with pytest.raises(ImportDataError, match="bad.csv"):
        import_csv(small_db, path)


def _help_copy(shared: Path, dest: Path) -> Path:
    root = help_subset(shared, dest)
    victim = root / "nasbench201" / "latency" / "gold_6226.pt"
    data = victim.read_bytes()
    victim.unlink()
    victim.write_bytes(data)
    return root


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_help_bad_pt(small_db: HardwareDB, shared_data: Path, tmp_path: Path, damage: str) -> None:
    root = _help_copy(shared_data, tmp_path / "h")
    victim = root / "nasbench201" / "latency" / "gold_6226.pt"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 50)
    _unchanged(
        small_db, lambda: import_help(small_db, root), r"gold_6226\.pt: file: field 'content'"
    )


def test_help_bad_latency_value(small_db: HardwareDB, shared_data: Path, tmp_path: Path) -> None:
    root = _help_copy(shared_data, tmp_path / "h")
    victim = root / "nasbench201" / "latency" / "gold_6226.pt"
    values = torch.load(victim, weights_only=True)
    values[7] = -1.0
    torch.save(values, victim)
    _unchanged(
        small_db, lambda: import_help(small_db, root), r"gold_6226\.pt: index 7: field 'latency_ms'"
    )


def test_help_missing_dir(small_db: HardwareDB, tmp_path: Path) -> None:
    _unchanged(small_db, lambda: load_help(tmp_path / "none"), "not a directory")


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (print, ("pwned",))


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"\x80\x04\x95garbage", "not a readable pickle"),
        (pickle.dumps({(0, 0, 0, 1, 3, 0): 0.001})[:-8], "not a readable pickle"),
        (pickle.dumps({(0, 0, 0, 1, 3, 0): _Evil()}), "builtins.print is not allowed"),
        (pickle.dumps({(0, 0, 0, 1, 3, 9): 0.001}), "field 'key'"),
        (pickle.dumps({(0, 0, 0, 1, 3, 0): float("nan")}), "field 'latency_s'"),
        (pickle.dumps([1, 2]), "expected a non-empty dict"),
    ],
)
def test_latbench_bad_pickle(
    small_db: HardwareDB, tmp_path: Path, shared_data: Path, payload: bytes, match: str
) -> None:
    bad = tmp_path / "mobile-cpu-x-int8.pickle"
    bad.write_bytes(payload)
    good = shared_data / "latbench" / TPU
    _unchanged(small_db, lambda: import_latbench(small_db, [good, bad]), match)


def test_nats_bad_csv(small_db: HardwareDB, tmp_path: Path, shared_data: Path) -> None:
    lines = (shared_data / "nb201-accuracy" / "nats_bench.csv").read_text().splitlines()[:4]
    lines[2] = lines[2].replace(lines[2].split(",")[0], "101.5", 1)
    path = tmp_path / "nats.csv"
    path.write_text("\n".join(lines) + "\n")
    _unchanged(small_db, lambda: import_nats_accuracy(small_db, path), "row 2: field 'CIFAR10")


def test_parquet_bad_file(small_db: HardwareDB, tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1 nonsense")
    _unchanged(small_db, lambda: import_parquet(small_db, path), "not a readable parquet")


def test_csv_rows_state_the_input_they_were_measured_at(
    small_db: HardwareDB, tmp_path: Path
) -> None:
    """QA: a CSV could not say its rows were measured at 160 px, so for a device whose other
    rows are at 160 px they were stored at the default input and silently left out of its
    latencies. Now a `resolution` (etc.) column states it, and `unused_rows` names the rows a
    device's column leaves out."""
    from hwdb.importers.csvfile import load_csv, unused_rows
    from tests.hwdb._helpers import nb201_archs

    archs = nb201_archs(6)
    at64 = tmp_path / "at64.csv"
    at64.write_text(
        "space,arch,device,latency_ms,resolution\n"
        + "".join(f"nasbench201,{a},cam,{1 + i},64\n" for i, a in enumerate(archs[:4]))
    )
    assert import_csv(small_db, at64)["measurements"] == 4
    assert small_db.measured_workloads(space="nasbench201", device="cam") == [{"resolution": 64}]
    plain = tmp_path / "plain.csv"
    plain.write_text(
        "space,arch,device,latency_ms\n" + "".join(f"nasbench201,{a},cam,9\n" for a in archs[4:])
    )
    import_csv(small_db, plain)
    (group,) = unused_rows(small_db, load_csv(plain).rows)
    assert group == {"device": "cam", "space": "nasbench201", "metric": "latency_ms", "rows": 2,
                     "workload": {}, "used": {"resolution": 64}, "earlier": False}  # fmt: skip
    assert unused_rows(small_db, load_csv(at64).rows) == []
    table = small_db.latency_table("nasbench201", devices=["cam"])
    assert sorted(table["cam"].dropna()) == [1.0, 2.0, 3.0, 4.0]


def test_unused_rows_ignore_fields_that_are_no_input_shape(
    small_db: HardwareDB, tmp_path: Path
) -> None:
    """Review: rows a latency table does use were reported as left out because the stored
    rows recorded `meta_tokens`, which is no input shape (tables do not compare it)."""
    from hwdb import MeasurementIn
    from hwdb.importers.csvfile import load_csv, unused_rows
    from search_spaces import get_space

    lm = get_space("nemotron_flash")
    archs = list(dict.fromkeys(lm.to_string(lm.random(i)) for i in range(5)))
    small_db.add_measurements(
        [MeasurementIn("pi", "nemotron_flash", a, metric="e2e_ms", median=40.0,
                       workload={"prompt_len": 32, "decode_len": 8, "meta_tokens": 32})
         for a in archs[:3]]
    )  # fmt: skip
    path = tmp_path / "lm.csv"
    path.write_text(
        "space,arch,device,latency_ms,prompt_len,decode_len\n"
        + "".join(f"nemotron_flash,{a},pi,41,32,8\n" for a in archs[3:])
    )
    import_csv(small_db, path)
    assert unused_rows(small_db, load_csv(path).rows) == []
    table = small_db.latency_table("nemotron_flash", devices=["pi"], metric="e2e_ms")
    assert table["pi"].notna().sum() == len(archs)


def test_unused_rows_name_earlier_rows_an_import_displaced(
    small_db: HardwareDB, tmp_path: Path
) -> None:
    """Given what each column was read at before an import (`read_workloads`), `unused_rows`
    also names the device's earlier rows when the import's rows tie with or outnumber them."""
    from hwdb.importers.csvfile import load_csv, read_workloads, unused_rows
    from tests.hwdb._helpers import nb201_archs

    archs = nb201_archs(5)
    plain = tmp_path / "plain.csv"
    plain.write_text(
        "space,arch,device,latency_ms\n" + "".join(f"nasbench201,{a},cam,9\n" for a in archs[:2])
    )
    rows = load_csv(plain).rows
    assert read_workloads(small_db, rows) == {("cam", "nasbench201", "latency_ms"): None}
    import_csv(small_db, plain)
    assert read_workloads(small_db, rows) == {("cam", "nasbench201", "latency_ms"): {}}
    at64 = tmp_path / "at64.csv"
    at64.write_text(
        "space,arch,device,latency_ms,resolution\n"
        + "".join(f"nasbench201,{a},cam,1.5,64\n" for a in archs[2:])
    )
    rows = load_csv(at64).rows
    before = read_workloads(small_db, rows)
    import_csv(small_db, at64)
    assert unused_rows(small_db, rows) == []  # the file's own rows are all used
    assert unused_rows(small_db, rows, before) == [
        {"device": "cam", "space": "nasbench201", "metric": "latency_ms", "rows": 2,
         "workload": {}, "used": {"resolution": 64}, "earlier": True}
    ]  # fmt: skip


def test_displaced_rows_are_not_counted_twice(small_db: HardwareDB, tmp_path: Path) -> None:
    """Review (session 29): a file with rows at both inputs had its own rows at the displaced
    input counted again among the device's earlier ones."""
    from hwdb.importers.csvfile import load_csv, read_workloads, unused_rows
    from tests.hwdb._helpers import nb201_archs

    archs = nb201_archs(12)
    first = tmp_path / "first.csv"
    first.write_text(
        "space,arch,device,latency_ms,resolution\n"
        + "".join(f"nasbench201,{a},cam,1.5,64\n" for a in archs[:3])
    )
    import_csv(small_db, first)
    both = tmp_path / "both.csv"
    both.write_text(
        "space,arch,device,latency_ms,resolution\n"
        + "".join(f"nasbench201,{a},cam,9,\n" for a in archs[3:9])
        + "".join(f"nasbench201,{a},cam,1.5,64\n" for a in archs[9:11])
    )
    rows = load_csv(both).rows
    before = read_workloads(small_db, rows)
    import_csv(small_db, both)
    groups = unused_rows(small_db, rows, before)
    assert [(g["rows"], g["earlier"]) for g in groups] == [(2, False), (3, True)]
