"""Schemathesis against the live OpenAPI document: every operation, >= 1000 cases, no 5xx.

Each operation is fuzzed with schema-valid (positive) and schema-violating (negative) cases,
once with generated path parameters and once pinned to a device/space that exist, so that
bodies reach the validation behind the path lookups.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from api.config import Settings
from hwdb import HardwareDB
from tests.api._helpers import SPACE, TARGET
from tests.api.conftest import make_app

EXAMPLES = 30  # per operation, mode and path pinning: 13 operations x 2 x 2 x 30 = 1560 max
MIN_CASES = 1000


def _call(case: schemathesis.Case, key: str, counts: Counter[str], failures: list[str]) -> None:
    label = f"{case.operation.method.upper()} {case.operation.path}"
    response = case.call(headers={"X-API-Key": key})
    counts[label] += 1
    if response.status_code >= 500:
        failures.append(f"{label} -> {response.status_code}: {response.text[:300]}")


def test_fuzz_every_operation_without_server_errors(db: HardwareDB, api_key: str) -> None:
    cfg = dataclasses.replace(Settings(), max_active_searches=1, max_search_trials=40)
    app = make_app(db, cfg)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13
    counts: Counter[str] = Counter()
    failures: list[str] = []
    pinned = {"name": TARGET, "space": SPACE}
    try:
        for op in operations:
            path_names = {p.name for p in op.path_parameters}
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                for pin in (None, {k: v for k, v in pinned.items() if k in path_names}):
                    if pin is not None and not pin:
                        continue
                    strategy = op.as_strategy(generation_mode=mode, path_parameters=pin)

                    @settings(
                        max_examples=EXAMPLES,
                        deadline=None,
                        database=None,
                        derandomize=True,
                        phases=[Phase.explicit, Phase.generate],
                        suppress_health_check=list(HealthCheck),
                    )
                    @given(case=strategy)
                    def run(case: schemathesis.Case) -> None:
                        _call(case, api_key, counts, failures)

                    try:
                        run()
                    except Unsatisfiable:  # nothing to break (e.g. GET /healthz has no inputs)
                        if mode is GenerationMode.POSITIVE:
                            raise
    finally:
        app.state.services.close()
    assert not failures, failures[:5]
    assert set(counts) == {f"{op.method.upper()} {op.path}" for op in operations}
    assert sum(counts.values()) >= MIN_CASES, counts
