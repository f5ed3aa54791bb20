"""The test suite's own setup (``tests/conftest.py``): what keeps parallel workers apart."""

from __future__ import annotations

import os

import pytest


@pytest.mark.postgres
def test_postgres_tests_share_one_xdist_group(request: pytest.FixtureRequest) -> None:
    """Tests of the one PostgreSQL test database reset its schema, so under pytest-xdist they
    must all run on one worker: xdist reads the group from a node-id suffix that its own
    collection hook adds, which sees the group only if ``tests/conftest.py`` marked the test
    first (a hook order that was once wrong, so two workers raced on the database). With
    pytest 9.2 and pytest-xdist 3.8 the suffix is never added (pyproject caps pytest)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("only meaningful under pytest-xdist (-n)")
    assert request.node.nodeid.endswith("@postgres")
