"""File-system safety in one place: bounded reads, symbolic links, lock files, globs.

A pull request controls what is committed: a profile, a policy or a baseline may be a
symbolic link (to ``/dev/zero``, to a file outside the repository), a lock file may be a link
to another file, a directory may link to itself. Everything memgate reads or writes on behalf
of such content goes through these functions:

* :func:`read_limited` reads any kind of file (regular, device, FIFO, ``/proc``) up to a limit,
  from the descriptor: ``st_size`` is 0 for ``/dev/zero`` and says nothing about a pipe, so the
  limit is enforced on what is actually read.
* :func:`open_in_store` opens a file of the baseline store without following a symbolic link
  that leaves the store, and only if it is a regular file.
* :func:`open_lock_file` creates or opens a lock file without ever following a link, so a lock
  cannot truncate or overwrite anything but itself.
* :func:`glob_files` expands globs (``**`` included) without following symbolic links to
  directories (a link to ``.`` would make ``**`` endless) and with a bound on the entries seen.
* :func:`outside_roots` tells whether an output path leaves the allowed directories through a
  symbolic link (the Action refuses those).
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from memgate import escape
from memgate.errors import MemgateError

__all__ = [
    "GLOB_MAX_ENTRIES",
    "GLOB_MAX_MATCHES",
    "GlobError",
    "ReadLimitExceeded",
    "glob_files",
    "inside",
    "open_in_store",
    "open_lock_file",
    "outside_roots",
    "read_fd_limited",
    "read_limited",
]

#: Directory entries a glob may look at before it is refused: a real repository's profiles
#: are found in far fewer; a tree of links or a huge checkout is not walked for minutes.
GLOB_MAX_ENTRIES = 200_000
#: Files a glob may match.
GLOB_MAX_MATCHES = 10_000
_CHUNK = 1 << 20


class ReadLimitExceeded(Exception):
    """What was read is larger than the limit; ``size`` is how much was read (> limit)."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class GlobError(MemgateError, slug="glob"):
    """A glob could not be expanded within its bounds."""


def read_fd_limited(fd: int, limit: int) -> bytes:
    """Everything readable from ``fd``, or :class:`ReadLimitExceeded` past ``limit`` bytes.

    A regular file whose size is known is read in one piece (one allocation); anything else
    in chunks of 1 MiB, so that memory never exceeds the limit by more than a chunk.
    """
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if stat.S_ISREG(st.st_mode) and 0 < st.st_size:
        if st.st_size > limit:
            raise ReadLimitExceeded(st.st_size)
        with os.fdopen(os.dup(fd), "rb", buffering=0) as f:
            data = f.read(limit + 1) or b""  # the file may have grown meanwhile
        if len(data) > limit:
            raise ReadLimitExceeded(len(data))
        return data
    buf = bytearray()
    while True:
        chunk = os.read(fd, min(_CHUNK, limit + 1 - len(buf)))
        if not chunk:
            break
        buf += chunk
        if len(buf) > limit:
            raise ReadLimitExceeded(len(buf))
    return bytes(buf)


def read_limited(path: str | Path, limit: int) -> bytes:
    """The bytes of ``path`` (links followed: the user named it), at most ``limit`` of them.

    Raises :class:`ReadLimitExceeded`, or the ``OSError`` of the open or the read
    (``IsADirectoryError`` for a directory). A FIFO is opened without blocking, so that a
    FIFO nobody writes to is not a hang at open time (reading it then waits for a writer, as
    ``cat`` does).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return read_fd_limited(fd, limit)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- the baseline store


def inside(path: str | Path, root: str | Path) -> bool:
    """Whether ``path`` with every link resolved is ``root`` (resolved) or below it."""
    try:
        real = Path(os.path.realpath(path))
        base = Path(os.path.realpath(root))
    except (OSError, ValueError):
        return False
    return real == base or real.is_relative_to(base)


class UnsafeFile(OSError):
    """A store entry that memgate refuses to read (a link leaving the store, not a file)."""


def open_in_store(directory: Path, name: str, root: Path, dir_fd: int | None = None) -> int:
    """A read-only descriptor of ``directory/name``, a regular file inside the store ``root``.

    The file is opened without following a symbolic link; a link is followed only if its
    target (every link resolved) is inside ``root``. A link that leaves the store (to
    ``/dev/zero``, ``/etc/passwd``, another checkout) or anything but a regular file is
    refused with :class:`UnsafeFile`; ``FileNotFoundError`` as usual.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    kwargs = {"dir_fd": dir_fd} if dir_fd is not None else {}
    target: str | Path = name if dir_fd is not None else directory / name
    try:
        fd = os.open(target, flags | nofollow, **kwargs)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.EMLINK) or not nofollow:
            raise
        # A symbolic link: allowed only while it stays inside the store.
        if not inside(directory / name, root):
            try:
                where = os.readlink(directory / name)
            except OSError:
                where = "?"
            raise UnsafeFile(errno.EPERM, f"is a symbolic link to {where}, outside the baseline "
                             "store", str(directory / name)) from None
        fd = os.open(target, flags, **kwargs)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeFile(errno.EPERM, "is not a regular file", str(directory / name))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_lock_file(path: Path) -> int:
    """Create or open the lock file ``path`` for writing, never through a link.

    ``O_NOFOLLOW`` makes a symbolic link (committed, or planted by someone else) an error
    instead of the file whose content the lock would replace; the descriptor must then be a
    regular file with a single name (a hard link to another file is refused the same way).
    """
    flags = (os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
             | getattr(os, "O_NONBLOCK", 0))
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.EMLINK):
            raise UnsafeFile(errno.ELOOP, "is a symbolic link, not a lock file; memgate does "
                             "not write through it (delete it)", str(path)) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
            raise UnsafeFile(errno.EPERM, "is not a lock file memgate made (not a regular file "
                             "with one name); delete it", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


# --------------------------------------------------------------------------- outputs


def outside_roots(path: str | Path, roots: Sequence[str | Path]) -> bool:
    """Whether writing ``path`` would go, through a symbolic link, outside every one of
    ``roots``. A path that involves no link is never "outside": the caller named it."""
    absolute = os.path.abspath(path)
    real = os.path.realpath(absolute)
    if real == absolute:
        return False
    return not any(inside(real, r) for r in roots if r)


# --------------------------------------------------------------------------- globs

_MAGIC = re.compile(r"[*?\[]")


def require_text_name(name: str, source: str = "profiles") -> None:
    """A profile's file name must be text (UTF-8): reports, summaries and annotations name
    every input, and ``baseline accept`` reads them again by those names. A name that is not
    (os.fsdecode's lone surrogates) is refused rather than written as invalid Unicode."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise MemgateError(f"the file name {escape.text(name)} is not valid UTF-8; rename the "
                           "profile", source=source, slug="bad-name") from None


def has_magic(pattern: str) -> bool:
    return _MAGIC.search(pattern) is not None


def glob_files(pattern: str, *, max_entries: int = GLOB_MAX_ENTRIES,
               max_matches: int = GLOB_MAX_MATCHES) -> list[str]:
    """The files ``pattern`` matches, sorted, as :func:`glob.glob` with ``recursive=True``
    would name them, except that ``**`` never follows a symbolic link to a directory.

    ``*``, ``?`` and ``[...]`` match within one path component and not a leading dot;
    ``**`` alone as a component matches zero or more directories. Links to files match like
    files. More than ``max_entries`` directory entries looked at, or more than
    ``max_matches`` files, is a :class:`GlobError` (no glob in a repository needs that many;
    a pathological tree must not keep the job busy).
    """
    parts = [p for p in re.split(r"[/\\]" if os.sep == "\\" else "/", pattern)]
    absolute = pattern.startswith(("/", os.sep))
    if absolute:
        parts = parts[1:]
    while len(parts) > 1 and parts[0] == "":
        parts = parts[1:]
    walk = _GlobWalk(pattern, parts, max_entries)
    # Depth-first over (directory, index of the next component); (dir, i) pairs are visited
    # once, so a pattern with several "**" does not revisit a tree.
    stack: list[tuple[str, int]] = [(os.sep if absolute else "", 0)]
    visited: set[tuple[str, int]] = set()
    while stack and len(walk.found) <= max_matches:
        here = stack.pop()
        if here not in visited:
            visited.add(here)
            stack.extend(walk.step(*here))
    if len(walk.found) > max_matches:
        raise GlobError(f"{pattern!r} matches more than {max_matches} files", source="profiles")
    return sorted(walk.found)


class _GlobWalk:
    """One glob's walk: what a (directory, component index) step finds, and a count of the
    directory entries looked at (bounded by ``max_entries``)."""

    def __init__(self, pattern: str, parts: list[str], max_entries: int) -> None:
        self.pattern, self.parts, self.max_entries = pattern, parts, max_entries
        self.seen = 0
        self.found: set[str] = set()

    def scan(self, directory: str) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(directory or ".") as it:
                entries = []
                for e in it:
                    self.seen += 1
                    if self.seen > self.max_entries:
                        raise GlobError(f"{self.pattern!r} looks at more than "
                                        f"{self.max_entries} directory entries; make it more "
                                        "specific", source="profiles")
                    entries.append(e)
                return entries
        except OSError:
            return []

    def step(self, directory: str, i: int) -> list[tuple[str, int]]:
        """Match component ``i`` in ``directory``: add the files found, return where to go
        next."""
        last = i == len(self.parts) - 1
        comp = self.parts[i]
        if comp == "**":
            return self._double_star(directory, i, last)
        if not has_magic(comp):
            path = _join(directory, comp) if comp else directory
            if last:
                if os.path.isfile(path):
                    self.found.add(path)
            elif os.path.isdir(path):
                return [(path, i + 1)]
            return []
        nexts: list[tuple[str, int]] = []
        for e in self.scan(directory):
            if e.name.startswith(".") and not comp.startswith("."):
                continue
            if not fnmatch.fnmatchcase(e.name, comp):
                continue
            path = _join(directory, e.name)
            if last:
                if e.is_file():
                    self.found.add(path)
            elif e.is_dir():
                nexts.append((path, i + 1))
        return nexts

    def _double_star(self, directory: str, i: int, last: bool) -> list[tuple[str, int]]:
        """``**``: zero directories (the next component here) or one more level down; last in
        the pattern ("dir/**"), every file below, as glob.glob does."""
        nexts: list[tuple[str, int]] = [] if last else [(directory, i + 1)]
        for e in self.scan(directory):
            if e.name.startswith("."):
                continue
            if e.is_dir(follow_symlinks=False):
                nexts.append((_join(directory, e.name), i))
            elif last and e.is_file():
                self.found.add(_join(directory, e.name))
        return nexts


def _join(directory: str, name: str) -> str:
    return os.path.join(directory, name) if directory else name
