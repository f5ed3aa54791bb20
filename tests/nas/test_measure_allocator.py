"""The retained heap keeps activations' memory mapped between forward passes."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from nas.measure._allocator import ALLOCATOR_SETTING, allocator_setting

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)

# Allocate and touch buffers of many sizes, then free them (as a forward pass over layers of
# different sizes does) and print the minor page faults of the last 20 rounds. Runs in a fresh
# interpreter so the allocator's state does not depend on the tests before it.
_CHURN = """
import resource, sys
import numpy as np
from nas.measure._allocator import retain_freed_memory
if sys.argv[1] == "retain":
    assert retain_freed_memory()
sizes = [2**k for k in range(14, 21)] * 4
def churn():
    live = [np.ones(n) for n in sizes]
    del live
for _ in range(5):
    churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


@glibc
def test_retained_heap_stops_page_faults_of_repeated_allocations() -> None:
    retained = _faults("retain")
    assert retained < 100
    assert _faults("system") > 10 * max(retained, 100)


@glibc
def test_allocator_setting_is_recorded() -> None:
    assert allocator_setting() == ALLOCATOR_SETTING
