"""Progress on stderr for long work (a delta-profile fetch waits N seconds).

Shown when stderr is a terminal, or when asked with ``--progress``; CI logs stay quiet by
default because carriage-return animations turn into thousands of log lines there.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType
from typing import TextIO


class Progress:
    """Reports phases (``what``) with elapsed and, when known, remaining time."""

    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = _is_tty(self.stream) and not os.environ.get("CI")
        self.enabled = enabled
        self._start = time.monotonic()
        self._live = _is_tty(self.stream)
        self._lock = threading.Lock()
        self._last_write = 0.0
        self._fraction_start: dict[str, tuple[float, float]] = {}

    def note(self, what: str) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self._start
            self._write(f"memgate: {what} ({elapsed:.1f}s elapsed)")

    def fraction(self, what: str, done: float) -> None:
        """``what: 45% (1.2s elapsed, ~1.5s remaining)``, at most every 0.25 s.

        The remaining time is extrapolated from the time spent since the first report.
        """
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            start = self._fraction_start.setdefault(what, (now, done))
            if now - self._last_write < 0.25 and done < 1.0:
                return
            self._last_write = now
        t0, d0 = start
        rate = (done - d0) / (now - t0) if now > t0 and done > d0 else 0.0
        remaining = f", ~{(1.0 - done) / rate:.1f}s remaining" if rate > 0 else ""
        self._write(f"memgate: {what}: {done:.0%} ({now - self._start:.1f}s elapsed{remaining})")

    def _write(self, line: str) -> None:
        # The line names files and URLs: escaped (memgate/escape.py); only the progress
        # line's own "\r ESC [K" reaches the terminal.
        from memgate.escape import text

        line = text(line)
        if self._live:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self._live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def countdown(self, what: str, seconds: float) -> _Countdown:
        """A context manager that ticks ``what: Ns remaining`` while a blocking call waits."""
        return _Countdown(self, what, seconds)


class _Countdown:
    def __init__(self, progress: Progress, what: str, seconds: float) -> None:
        self.progress = progress
        self.what = what
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Countdown:
        if self.progress.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        start = time.monotonic()
        interval = 1.0 if self.progress._live else max(5.0, self.seconds / 6)
        while not self._stop.is_set():
            elapsed = time.monotonic() - start
            remaining = max(0.0, self.seconds - elapsed)
            self.progress._write(
                f"memgate: {self.what}: {elapsed:.0f}s elapsed, ~{remaining:.0f}s remaining"
            )
            self._stop.wait(interval)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.progress.done()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
