"""``memgate capture``: run a Python command under an allocation tracer, write a pprof profile.

The command runs in a child interpreter, the one memgate itself runs under (``sys.executable``),
so that the tracer and memgate's runner are importable there: ``python app.py``, ``python -m
pkg``, ``python -c CODE`` (with interpreter options such as ``-X dev`` or ``-W error`` kept),
a ``.py`` file, or a console script whose ``#!`` line names a Python (``pytest``, ``flask``).
Anything else is refused before it runs: memgate can only trace Python.

The child's exit status is memgate's. The profile is written only when it is complete: the
child writes into a private directory, memgate checks that the result decodes, then renames
it into place.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memgate.errors import MemgateError

_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?[a-z]?(\.exe)?", re.IGNORECASE)
#: Interpreter options that take an argument (attached or as the next word).
_WITH_ARG = {"X", "W"}
#: Single-letter interpreter options that need no argument and still run a program.
_FLAGS = set("bBdEIOPqsSuvR")
#: Options after which python runs no program (or an interactive one memgate cannot end).
_NO_PROGRAM = {"h": "--help", "V": "--version", "i": "-i (interactive)", "?": "-?"}


class NotPython(MemgateError, slug="usage"):
    """The command is not a Python program memgate can trace (a usage error)."""


@dataclass(frozen=True)
class Target:
    """What the child interpreter runs."""

    #: "script", "module" or "code"
    kind: str
    #: the script path, module name or code
    target: str
    args: tuple[str, ...]
    #: interpreter options to pass on (``-X dev``, ``-W error``, ``-u``)
    options: tuple[str, ...] = ()
    #: the interpreter a console script's ``#!`` line names, when it is not memgate's
    other_interpreter: str | None = None


def _is_python(word: str) -> bool:
    if _PYTHON_NAME.fullmatch(os.path.basename(word)):
        return True
    found = shutil.which(word)
    return bool(found) and os.path.realpath(found or "") == os.path.realpath(sys.executable)


def resolve(command: Sequence[str]) -> Target:
    """Parse ``COMMAND [ARGS...]`` as Python would; NotPython when it is not Python."""
    if not command:
        raise NotPython("no command given: memgate capture -o FILE -- python app.py")
    first = command[0]
    if _is_python(first):
        return _parse_interpreter(list(command[1:]), first)
    if first.endswith((".py", ".pyw")) and os.path.isfile(first):
        return Target("script", first, tuple(command[1:]))
    path = first if os.sep in first else shutil.which(first)
    if not path or not os.path.isfile(path):
        raise NotPython(f"command not found: {first!r}", source=_short(first))
    interp = _shebang_python(path)
    if interp is None:
        raise NotPython(
            "not a Python program (memgate capture traces Python: `python SCRIPT`, `python -m "
            "MODULE`, `python -c CODE`, a .py file, or a console script of this interpreter)",
            source=_short(first))
    other = None if os.path.realpath(interp) == os.path.realpath(sys.executable) else interp
    return Target("script", path, tuple(command[1:]), other_interpreter=other)


def _short(text: str) -> str:
    from memgate.python.pprof import clean

    return clean(text, 200)


def _shebang_python(path: str) -> str | None:
    """The interpreter of a ``#!`` line that runs Python, else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    words = line.split()
    if not words:
        return None
    if os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
        if not words:
            return None
    name = os.path.basename(words[0])
    return words[0] if _PYTHON_NAME.fullmatch(name) else None


def _parse_interpreter(args: list[str], python: str) -> Target:
    options: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "-" or not word.startswith("-") or word == "--":
            if word == "--":
                i += 1
                if i >= len(args):
                    break
                word = args[i]
            if word == "-":
                raise NotPython("a program on standard input cannot be captured; save it to a "
                                "file", source=python)
            if not os.path.isfile(word):
                raise NotPython("no such file", source=_short(word))
            return Target("script", word, tuple(args[i + 1:]), tuple(options))
        if word.startswith("--"):
            if word in ("--check-hash-based-pycs",):
                options += args[i:i + 2]
                i += 2
                continue
            raise NotPython(f"python {word} runs no program to capture", source=python)
        letters = word[1:]
        j = 0
        while j < len(letters):
            ch = letters[j]
            rest = letters[j + 1:]
            if ch in ("c", "m"):
                value = rest if rest else (args[i + 1] if i + 1 < len(args) else None)
                if value is None:
                    raise NotPython(f"python -{ch} needs an argument", source=python)
                after = args[i + 1:] if rest else args[i + 2:]
                return Target("code" if ch == "c" else "module", value, tuple(after),
                              tuple(options))
            if ch in _WITH_ARG:
                if rest:
                    options.append(f"-{ch}{rest}")
                else:
                    if i + 1 >= len(args):
                        raise NotPython(f"python -{ch} needs an argument", source=python)
                    options += [f"-{ch}", args[i + 1]]
                    i += 1
                break
            if ch in _NO_PROGRAM:
                raise NotPython(f"python {_NO_PROGRAM[ch]} runs no program to capture",
                                source=python)
            if ch not in _FLAGS:
                raise NotPython(f"unknown python option -{ch}", source=python)
            options.append(f"-{ch}")
            j += 1
        i += 1
    raise NotPython("runs no program (give a script, -m MODULE or -c CODE)", source=python)


@dataclass(frozen=True)
class CaptureResult:
    """The child's exit status and, when it wrote one, the encoded profile."""

    exit_code: int
    profile: bytes | None
    problem: str | None


def command_line(command: Sequence[str]) -> str:
    """The command as a shell would show it, bounded (it goes into the profile's comments)."""
    from memgate.python.pprof import clean

    return clean(shlex.join(command), 2000)


def run_capture(target: Target, command: Sequence[str], *, backend: str, frames: int,
                snapshot_at: str, duration_nanos: int | None) -> CaptureResult:
    """Run the target in a child interpreter under the tracer; return its status and profile."""
    import memgate

    root = os.path.dirname(os.path.dirname(os.path.abspath(memgate.__file__)))
    with tempfile.TemporaryDirectory(prefix="memgate-capture-") as tmp:
        out = os.path.join(tmp, "profile.pb.gz")
        cfg = {"kind": target.kind, "target": target.target, "args": list(target.args),
               "backend": backend, "frames": frames, "snapshot_at": snapshot_at,
               "out": out, "memgate_root": root, "duration_nanos": duration_nanos,
               "command": command_line(command)}
        from memgate.python.runner import CONFIG_ENV

        env = dict(os.environ)
        env[CONFIG_ENV] = json.dumps(cfg)
        bootstrap = (f"import sys; sys.path.insert(0, {root!r}); "
                     "from memgate.python.runner import main; main()")
        argv = [sys.executable, *target.options, "-c", bootstrap, *target.args]
        code = _run_child(argv, env)
        meta: dict[str, Any] = {}
        try:
            with open(out + ".meta", encoding="utf-8") as fh:
                meta = json.load(fh)
        except (OSError, ValueError):
            pass
        if code < 0:
            return CaptureResult(128 - code, None,
                                 f"the command was killed by signal {-code}; no profile written")
        if not meta:
            return CaptureResult(code, None, "the command ended without memgate's runner "
                                 "finishing (os._exit()?); no profile written")
        if backend == "memray":
            from memgate.python.memray_io import convert_memray

            data = convert_memray(out + ".bin", "the memray capture of the command", header={
                "time_nanos": meta["time_nanos"], "wall_nanos": meta["wall_nanos"],
                "duration_nanos": duration_nanos, "command": cfg["command"],
                "trim_runner": True})
            return CaptureResult(code, data, None)
        if not os.path.exists(out):
            if snapshot_at == "mark" and not meta.get("marks"):
                return CaptureResult(code, None, "the program marked no snapshot point "
                                     "(call memgate.capture.snapshot() or send it SIGUSR1); "
                                     "no profile written")
            return CaptureResult(code, None, "no profile written")
        with open(out, "rb") as fh:
            return CaptureResult(code, fh.read(), None)


def _run_child(argv: list[str], env: dict[str, str]) -> int:
    """Run the child with the terminal's signals going to it: Ctrl-C interrupts the program
    (which may handle it), not memgate; SIGTERM and SIGUSR1 sent to memgate are passed on."""
    proc = subprocess.Popen(argv, env=env)
    forwarded = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None))
                 if s is not None]
    old: dict[int, Any] = {}

    def forward(signum: int, _frame: Any) -> None:
        try:
            proc.send_signal(signum)
        except OSError:
            pass

    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for s in forwarded:
            old[s] = signal.signal(s, forward)
        return proc.wait()
    finally:
        signal.signal(signal.SIGINT, old_int)
        for s, h in old.items():
            signal.signal(s, h)
