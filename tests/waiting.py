"""Waiting for a condition instead of sleeping a fixed time: as fast as the machine allows,
and an error that says what never happened instead of a flaky assertion later on."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], what: str, timeout: float = 30.0,
               interval: float = 0.01) -> None:
    """Poll ``condition`` until it is true; AssertionError naming ``what`` after ``timeout``
    seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


def blocked_reading_a_pipe(pid: int) -> bool:
    """Whether process ``pid`` waits in a read from a pipe (Linux: its wait channel); True
    where /proc cannot tell, so that callers fall back on the timeout of their own wait."""
    try:
        with open(f"/proc/{pid}/wchan", encoding="ascii") as f:
            return "pipe_read" in f.read()
    except OSError:
        return True
