"""Shared pytest options, and a guard for the tests that run memgate in this process."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens", action="store_true", default=False,
        help="Rewrite the report goldens under tests/fixtures/reports/ instead of comparing.")


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


@pytest.fixture(autouse=True)
def _process_state_is_restored() -> Iterator[None]:
    """Most tests run the command line in this process (tests/clirun.py): none may leave the
    environment or the working directory changed for the tests after it. (Torn down after
    every other fixture, so after monkeypatch has undone its changes.)"""
    env, cwd = dict(os.environ), os.getcwd()
    yield
    changed = sorted(k for k in env.keys() | os.environ.keys()
                     if env.get(k) != os.environ.get(k) and k != "PYTEST_CURRENT_TEST")
    assert not changed, f"the test left environment variables changed: {changed}"
    assert os.getcwd() == cwd, f"the test left the working directory at {os.getcwd()}"
