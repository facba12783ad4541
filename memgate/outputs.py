"""Writing report files: all of them or none, and never over something that is not a file.

A gate writes several files at once (``--json``, ``--summary``, ``--html``, ``diff --output``).
CI steps read them afterwards, so a run that fails half-way must not leave some of them behind
looking valid: every file is first written completely beside its target, and only when all of
them are written are they renamed into place.

The rename replaces a *directory entry*, which is wrong for targets that are not regular
files: a symbolic link is followed (the file it points to is replaced, the link stays), and a
FIFO, a character device (``/dev/stdout``, ``/dev/null``) or a process substitution
(``>(wc -c)``) is written to directly, after the files, since it cannot be replaced.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from memgate.errors import MemgateError


@dataclass(frozen=True)
class Output:
    """One file to write: its path as the user gave it, and its whole content."""

    path: str
    content: str | bytes

    def data(self) -> bytes:
        return self.content if isinstance(self.content, bytes) else self.content.encode("utf-8")


def _error(message: str, path: str | Path) -> MemgateError:
    return MemgateError(message, source=str(path), slug="bad-path")


_FD_PATH = re.compile(r"/(?:dev/fd|proc/self/fd)/(\d+)")
_STD_PATHS = {"/dev/stdout": 1, "/dev/stderr": 2}


def _inherited_fd(path: str) -> int | None:
    """The descriptor a path such as ``/dev/stdout`` or ``/dev/fd/3`` names, if open.

    Such a path is whatever the shell connected: ``>> ci.log`` makes /dev/stdout a regular
    file, which must be written to through the descriptor (in append mode if so opened), not
    reopened (that truncates it) or replaced by a rename (that unlinks what was there).
    """
    fd = _STD_PATHS.get(os.path.normpath(path))
    if fd is None:
        m = _FD_PATH.fullmatch(os.path.normpath(path))
        fd = int(m.group(1)) if m else None
    if fd is None:
        return None
    try:
        os.fstat(fd)
    except OSError:
        return None
    return fd


def _is_stream(path: Path) -> bool:
    """A target that is written to, never replaced: an open descriptor's path, or an existing
    target (links followed) that is not a regular file or a directory."""
    if _inherited_fd(str(path)) is not None:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _target(path: str) -> Path:
    """Where the file's content goes: a symbolic link is followed to the file it names."""
    p = Path(path)
    return Path(os.path.realpath(p)) if p.is_symlink() else p


def check_outputs(paths: Sequence[str | None], inputs: Sequence[str] = ()) -> None:
    """Refuse, before any work is done, outputs that cannot be written or would do harm.

    Each output's directory must exist and the output must not be a directory; two outputs
    must not name the same file (one would silently replace the other); and no output may
    name one of the ``inputs`` (``--json heap.pb.gz`` would destroy the profile).
    """
    seen: dict[str, str] = {}
    input_keys = {_key(i): i for i in inputs if "://" not in i and i != "-"}
    for path in paths:
        if not path:
            continue
        if path == "-":
            raise _error("'-' is not a file name here; print to standard output with "
                         "--format json or --format markdown", path)
        if _is_stream(Path(path)):
            continue  # /dev/stdout and friends: nothing to replace, nothing to compare
        target = _target(path)
        if target.is_dir():
            raise _error("is a directory, not a file", path)
        parent = target.parent if str(target.parent) else Path(".")
        if not parent.is_dir():
            raise _error("directory does not exist", parent)
        key = _key(path)
        if key in seen:
            raise _error(f"is given for two outputs ({seen[key]} and this one); each output "
                         "needs its own file", path)
        if key in input_keys:
            raise _error(f"is an input ({input_keys[key]}); writing the output there "
                         "would destroy it", path)
        seen[key] = path


def _key(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def write_outputs(outputs: Sequence[Output]) -> None:
    """Write every output, or (as far as the file system allows) none of them.

    Files are written to temporary files beside their targets first; if any of those fails,
    all are removed and nothing has changed. Then they are renamed into place, and finally
    the stream targets (FIFOs, devices) are written.
    """
    check_outputs([o.path for o in outputs])
    # Streams are told by the path as given (links followed by the kernel): /dev/fd/63 names
    # a pipe through a link that no path resolution outside the process can follow.
    files = [o for o in outputs if not _is_stream(Path(o.path))]
    streams = [o for o in outputs if _is_stream(Path(o.path))]
    staged: list[tuple[str, Path, Output]] = []
    try:
        for o in files:
            staged.append((_stage(o), _target(o.path), o))
        for tmp, target, o in staged:
            try:
                os.replace(tmp, target)
            except OSError as e:
                raise _error(f"cannot write: {e.strerror or e}", o.path) from None
        staged = []
    finally:
        for tmp, _, _ in staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    for o in streams:
        try:
            fd = _inherited_fd(o.path)
            if fd is None:
                with open(o.path, "wb") as fh:
                    fh.write(o.data())
            else:
                _write_fd(fd, o.data())
        except OSError as e:
            raise _error(f"cannot write: {e.strerror or e}", o.path) from None


def _write_fd(fd: int, data: bytes) -> None:
    """All of ``data`` to an inherited descriptor, after what Python buffered for it."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None and stream.fileno() == fd:
                stream.flush()
        except (OSError, ValueError):
            pass
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _stage(o: Output) -> str:
    """Write ``o`` completely to a temporary file beside its target; return that file."""
    target = _target(o.path)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as e:
        raise _error(f"cannot write: {e.strerror or e}", o.path) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(o.data())
        # mkstemp creates the file 0600; a report is an ordinary file (0666 less the umask).
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _error(f"cannot write: {exc.strerror or exc}", o.path) from None
        raise
    return tmp
