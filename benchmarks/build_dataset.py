"""Measure the project's latency dataset on this machine and export it as Parquet.

For each of ``mnasnet``, ``mobilevig`` and ``nemotron_flash``: the 10 hardware-embedding archs,
the reference archs and ``--n`` random archs, on four device configurations (torch fp32 1 thread,
torch fp32 2 threads, ONNX Runtime fp32 1 thread, torch fp32 batch 8 (vision) / bf16 (language
model)), into a database (resumable: rerun the same command after an interruption), then
``hwdb/data/<space>.parquet`` via ``hwdb.export_parquet``. Prints a JSON summary.

Workloads are reduced to fit about 1-2 hours of a 2-core machine: vision at resolution 160,
Nemotron-Flash at prompt 32 / decode 8 with random archs drawn at hidden <= 1024 (the embedding
and reference archs are measured as they are). ONNX Runtime is not run for language models
(cached decode does not export); they get a torch 2-thread batch-2 configuration instead.

    python benchmarks/build_dataset.py --db sqlite:///dataset.sqlite            # full build
    python benchmarks/build_dataset.py --db sqlite:///tmp.sqlite --n 3 --no-refs --out /tmp/ds
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

SPACES = ("mnasnet", "mobilevig", "nemotron_flash")
REPO = Path(__file__).resolve().parents[1]


def _configs(space: str) -> dict[str, Any]:
    """Device name -> MeasureConfig of one space (the dataset's device configurations)."""
    from nas.measure import MeasureConfig, TimingProtocol
    from search_spaces import Workload

    lm = space == "nemotron_flash"
    # The bundled rows predate the drift anchor; without it a rerun resumes their protocol.
    protocol = TimingProtocol(rounds=3, repeats=1, warmup=1, anchor=False) if lm else (
        TimingProtocol(rounds=5, repeats=2, warmup=3, anchor=False)
    )  # fmt: skip
    workload = Workload(prompt_len=32, decode_len=8) if lm else Workload(resolution=160)
    chunk = 1 if lm else 20
    base = MeasureConfig(
        threads=1, protocol=protocol, workload=workload, chunk_size=chunk, device_type="cpu",
        prime=3 if lm else 30,  # language models take seconds to build
    )  # fmt: skip
    configs = {
        "cpu-torch-fp32-t1": base,
        "cpu-torch-fp32-t2": replace(base, threads=2),
    }
    if lm:
        configs["cpu-torch-bf16-t1"] = replace(base, precision="bf16")
        configs["cpu-torch-fp32-t2-b2"] = replace(base, threads=2, batch_size=2)
    else:
        ort = replace(base, runtime="onnxruntime", onnx_exporter="torchscript")
        configs["cpu-ort-fp32-t1"] = ort
        configs["cpu-torch-fp32-t1-b8"] = replace(base, batch_size=8)
    return configs


def _archs(space_name: str, n: int, refs: bool, seed: int) -> list[str]:
    from nas.measure import select_architectures
    from search_spaces import get_space

    space = get_space(space_name)
    sampler: Any = space
    if space_name == "nemotron_flash":  # CPU-sized random archs; strings are valid in the space
        sampler = type(space)(hidden_choices=(512, 768))  # type: ignore[call-arg]
    out = select_architectures(space, reference_set=True) if refs else []
    if refs and space_name == "nemotron_flash":
        # The 2.7B/3B references do not fit a 2-core CPU budget; keep the 10 embedding archs.
        out = [space.to_string(a) for a in space.hardware_embedding_archs()]
    if n:
        out += [space.canonicalize(a) for a in select_architectures(sampler, n=n, seed=seed)]
    return list(dict.fromkeys(out))


def _printer(label: str) -> Any:
    def show(done: int, total: int, what: str) -> None:
        sys.stderr.write(f"\r{label}: {done}/{total} {what}      ")

    return show


def main(argv: list[str] | None = None) -> int:
    """Build (or resume) the dataset and export the Parquet files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="Database URL (resumable).")
    parser.add_argument("--n", type=int, default=400, help="Random archs per space.")
    parser.add_argument("--no-refs", action="store_true", help="Skip embedding/reference archs.")
    parser.add_argument("--spaces", default=",".join(SPACES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block", type=int, default=50, help="Archs per resumable block.")
    parser.add_argument("--out", default=str(REPO / "hwdb" / "data"))
    args = parser.parse_args(argv)

    from hwdb import HardwareDB, export_parquet
    from nas.measure import measure_architectures

    summary: dict[str, Any] = {}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with HardwareDB(args.db) as db:
        for space in args.spaces.split(","):
            archs = _archs(space, args.n, not args.no_refs, args.seed)
            summary[space] = {"archs": len(archs), "devices": {}}
            # Blocks of archs across all configurations, so that an interrupted build still
            # covers every device configuration evenly (rerun the command to resume).
            for lo in range(0, len(archs), args.block):
                block = archs[lo : lo + args.block]
                for device, config in _configs(space).items():
                    start = time.perf_counter()
                    report = measure_architectures(
                        db, space=space, device=device, archs=block, config=config,
                        source="benchmarks/build_dataset.py",
                        progress=_printer(f"{space} {device} [{lo}:{lo + len(block)}]"),
                    )  # fmt: skip
                    sys.stderr.write("\n")
                    info = summary[space]["devices"].setdefault(
                        device, {"measured": 0, "skipped": 0, "seconds": 0.0}
                    )
                    info["measured"] += len(report.measured)
                    info["skipped"] += len(report.skipped)
                    info["seconds"] = round(info["seconds"] + time.perf_counter() - start, 1)
                    info["protocol"] = report.protocol
                rows = export_parquet(db, out_dir / f"{space}.parquet", space=space)
                summary[space]["parquet_rows"] = rows["measurements"]
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)
