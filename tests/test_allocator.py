"""The allocator tuning of the command-line process (memgate/allocator.py)."""

from __future__ import annotations

import platform
import sys

import pytest

from memgate.allocator import keep_freed_memory


def test_switch_off_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMGATE_NO_MALLOPT", "1")
    assert keep_freed_memory() is False


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt tuning applies to glibc only")
def test_applied_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEMGATE_NO_MALLOPT", raising=False)
    assert keep_freed_memory() is True
