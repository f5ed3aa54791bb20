"""Load test of ``/v1/predict`` over loopback: single-arch latency/throughput and 10k batches.

Starts ``nas serve`` as a separate process on 127.0.0.1 (a real uvicorn server) over a
database holding a slice of the public HELP NAS-Bench-201 latencies (or ``--db``), warms the
adapted predictor, then times ``--requests`` single-arch requests from httpx clients with
keep-alive (``--concurrency`` of them) and ``--batches`` requests of 10,000 archs. Prints JSON.
Example::

    python benchmarks/api_load.py --requests 3000 --concurrency 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SPACE = "nasbench201"
DEVICES = ["1080ti_1", "silver_4114", "pixel3", "titanx_32", "gold_6226"]


def _seed(url: str) -> str:
    """Store HELP latencies of DEVICES (train/query pools + references); returns a token."""
    from hwdb import DeviceSpec, HardwareDB, MeasurementIn
    from hwdb.importers.help import device_spec
    from predictors import HELP_REFERENCE_INDICES
    from predictors._testing import help_latency_table

    table = help_latency_table(SPACE, DEVICES)
    wanted = set(range(0, 900, 3)) | set(range(900, 1100)) | set(HELP_REFERENCE_INDICES[SPACE])
    with HardwareDB(url) as db:
        for dev in DEVICES:
            spec = device_spec(dev)
            db.upsert_device(DeviceSpec(**{**spec.__dict__, "provenance": "imported"}))
            rows = [
                MeasurementIn(dev, SPACE, str(table.index[i]), median=float(table[dev].iloc[i]),
                              protocol="help-release", benchmark_index=i)
                for i in sorted(wanted)
            ]  # fmt: skip
            db.add_measurements(rows)
        return db.create_api_key(f"bench-{os.getpid()}")[1]


def _percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p90_ms": round(float(np.percentile(a, 90)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "max_ms": round(float(a.max()), 3),
    }


def _single(base: str, device: str, archs: list[str], n: int, conc: int) -> dict[str, Any]:
    import httpx

    lat: list[list[float]] = [[] for _ in range(conc)]
    errors = [0] * conc

    def worker(k: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as c:
            for i in range(k, n, conc):
                body = {"space": SPACE, "device": device, "archs": [archs[i % len(archs)]]}
                t0 = time.perf_counter()
                r = c.post("/v1/predict", json=body)
                lat[k].append((time.perf_counter() - t0) * 1000)
                errors[k] += r.status_code != 200

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(conc)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    flat = [x for part in lat for x in part]
    return {"requests": n, "concurrency": conc, "errors": sum(errors),
            "req_per_s": round(n / wall, 1), **_percentiles(flat)}  # fmt: skip


def _batch(base: str, device: str, archs: list[str], reps: int) -> dict[str, Any]:
    import httpx

    body = {"space": SPACE, "device": device, "archs": archs}
    ms = []
    with httpx.Client(base_url=base, timeout=120) as c:
        for _ in range(reps):
            t0 = time.perf_counter()
            r = c.post("/v1/predict", json=body)
            ms.append((time.perf_counter() - t0) * 1000)
            r.raise_for_status()
    return {"archs": len(archs), "requests": reps, **_percentiles(ms),
            "archs_per_s": round(len(archs) * reps / (sum(ms) / 1000), 1)}  # fmt: skip


def _server_side(base: str) -> dict[str, float]:
    """Mean in-server time of /v1/predict (from the /metrics histogram)."""
    import httpx

    values: dict[str, float] = {}
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if 'route="/v1/predict"' in line and line.startswith("nas_api_request_duration"):
            name = line.split("{")[0].rsplit("_", 1)[-1]
            if name in ("sum", "count"):
                values[name] = float(line.rsplit(" ", 1)[1])
    n = values.get("count", 0.0)
    return {"requests": n, "mean_ms": round(values.get("sum", 0.0) / n * 1000, 3) if n else 0.0}


def _start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NAS_DATABASE_URL": url}
    code = "import sys; from nas._cli.main import main; main(sys.argv[1:])"
    cmd = [sys.executable, "-c", code, "serve", "--port", str(port), "--log-level", "warning"]
    return subprocess.Popen(cmd, env=env)


def _wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not become ready")


def main() -> None:
    """Run the load test and print JSON."""
    import httpx

    from search_spaces import get_space

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", help="Database URL with a measured device (default: temp HELP slice).")
    p.add_argument("--api-key", help="API key for --db (needed to warm via /adapt).")
    p.add_argument("--device", default="gold_6226")
    p.add_argument("--requests", type=int, default=3000)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--port", type=int, default=8765)
    args = p.parse_args()

    tmp = tempfile.TemporaryDirectory()
    url, token = args.db, args.api_key
    if url is None:
        url = f"sqlite:///{Path(tmp.name) / 'bench.sqlite'}"
        token = _seed(url)
    base = f"http://127.0.0.1:{args.port}"
    space = get_space(SPACE)
    pool = [space.to_string(space.random(i)) for i in range(1000)]
    big = [space.to_string(space.random(10_000 + i)) for i in range(10_000)]
    proc = _start_server(url, args.port)
    try:
        _wait_ready(base, proc)
        t0 = time.perf_counter()
        warm = httpx.post(f"{base}/v1/devices/{args.device}/adapt", json={"space": SPACE},
                          headers={"X-API-Key": token or ""}, timeout=600)  # fmt: skip
        warm.raise_for_status()
        adapt_s = time.perf_counter() - t0
        _single(base, args.device, pool, len(pool), 1)  # warm the arch-string cache
        out: dict[str, Any] = {
            "server": "nas serve (uvicorn, 1 process) on 127.0.0.1",
            "client": "httpx.Client keep-alive, one per thread",
            "predictor": {k: warm.json()[k] for k in ("predictor", "version", "n_measurements")},
            "first_adapt_s": round(adapt_s, 2),
            "single_arch": [
                _single(base, args.device, pool, args.requests, c) for c in args.concurrency
            ],  # fmt: skip
            "batch_10k": _batch(base, args.device, big, args.batches),
            "server_side": _server_side(base),
            "cpu_count": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        tmp.cleanup()
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    from _script import run as run_script

    run_script(main)
