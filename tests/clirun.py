"""Run the memgate command line inside the test process, as `python -m memgate` would run it.

Starting a Python process per command costs 0.5-1.5 s (the interpreter, numpy, protobuf), and
hundreds of tests only run one command and read its exit code, stdout and stderr. :func:`run`
does that in-process with click's ``CliRunner`` and returns a ``subprocess.CompletedProcess``,
so that the assertions written against ``subprocess.run`` stay as they are.

What stays the same as a real process: the exit code (``sys.exit`` codes, click's usage errors,
an uncaught exception is exit 1 with its traceback on stderr), the environment (``env`` is the
complete environment, as ``subprocess.run`` takes it, set for the call and restored after), the
working directory, stdin, and the decoding of ``text=True`` (universal newlines). What a real
process is needed for, these tests keep on ``subprocess``: signals and Ctrl-C, crashes and kills,
the console script and ``python -m memgate`` themselves, and output to a real file descriptor
or terminal (``memgate capture``'s command writes to the descriptors it inherits). Process-wide
state a fresh process would not have: the environment and the working directory are restored
(tests/conftest.py checks it after every test), memgate's own overrides are context variables
it resets, and the line cache is cleared before each command.
"""

from __future__ import annotations

import inspect
import linecache
import locale
import os
import subprocess
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from memgate.cli import main

#: What click shows in usage lines: the name `python -m memgate` gives itself.
PROG_NAME = "python -m memgate"


def _runner() -> CliRunner:
    # click < 8.2 mixes stderr into stdout unless told not to; 8.2 removed the flag and always
    # keeps them apart.
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]
    return CliRunner()


@contextmanager
def _cwd(path: str | Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _env_overrides(env: Mapping[str, str] | None) -> dict[str, str | None]:
    """CliRunner's overrides (None removes a variable) that make os.environ equal to env."""
    if env is None:
        return {}
    out: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    out.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    return out


def _decode(data: bytes) -> str:
    # As subprocess.run(text=True) decodes a pipe: the locale's encoding, universal newlines.
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def run(args: Sequence[str | Path], *, cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None, input: str | bytes | None = None,
        text: bool = True) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run([sys.executable, "-m", "memgate", *args], capture_output=True, ...)``
    without the process: ``env`` is the whole environment (None: the current one)."""
    argv = [str(a) for a in args]
    # A new process starts with an empty linecache; memgate.python.names reads sources through
    # it, by file names that may be relative ("app.py" of another test's directory).
    linecache.clearcache()
    with _cwd(cwd):
        res = _runner().invoke(main, argv, input=input, env=_env_overrides(env),
                               catch_exceptions=True, prog_name=PROG_NAME)
    stderr = res.stderr_bytes or b""
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        # What the interpreter prints for an uncaught exception before it exits 1.
        tb = "".join(traceback.format_exception(res.exception))
        stderr += tb.encode("utf-8", "backslashreplace")
    if text:
        return subprocess.CompletedProcess(argv, res.exit_code, _decode(res.stdout_bytes),
                                           _decode(stderr))
    return subprocess.CompletedProcess(argv, res.exit_code, res.stdout_bytes, stderr)
