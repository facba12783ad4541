"""File-system operations of the local store: the writer lock, durable writes, safe reads.

Everything here exists for the atomicity and locking rules of :mod:`memgate.baseline.store`
(its module docstring): a writer holds ``fcntl.flock`` on ``.<component>.lock``, new files are
fsynced before the rename that commits them, and readers read through a directory descriptor
(:class:`DirReader`) so that an update renaming the directory away cannot mix two versions.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Final

from memgate import fs
from memgate.baseline.manifest import MANIFEST
from memgate.baseline.names import new_token, one_line
from memgate.errors import BaselineError

#: The points of an update or removal where the test hooks below act, in order. The crash test
#: kills the process at each of them, so every intermediate state on disk is exercised.
STEPS: Final = (
    "locked",
    "recovered",
    "decoded",
    "wrote-profile",
    "wrote-manifest",
    "synced-new",
    "moved-old",
    "moved-new",
    "trashed-old",
    "deleted-old",
    "remove-moved",
    "remove-deleted",
)

_GIT_SHA_RE: Final = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def step(name: str) -> None:
    """Test hooks between the steps of a write; no effect unless the variables are set.

    ``MEMGATE_TEST_STORE_KILL_AT=<step>`` kills the process with SIGKILL at that step and
    ``MEMGATE_TEST_STORE_DELAY=<seconds>`` sleeps at every step, so that the crash test can
    interrupt an update at every point deterministically and at random moments.
    """
    if os.environ.get("MEMGATE_TEST_STORE_KILL_AT") == name:
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
    delay = os.environ.get("MEMGATE_TEST_STORE_DELAY")
    if delay:
        try:
            time.sleep(max(0.0, float(delay)))
        except ValueError:
            pass


def now() -> str:
    """UTC time, to the second; ``SOURCE_DATE_EPOCH`` pins it for reproducible manifests."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    try:
        stamp = int(raw) if raw else time.time()
    except ValueError:
        stamp = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def git_commit(directory: Path) -> str | None:
    """``git rev-parse HEAD`` in ``directory``; None outside git or without git, never an error."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=directory,
            capture_output=True, text=True, timeout=10, check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    sha = out.stdout.strip()
    if out.returncode != 0 or not _GIT_SHA_RE.fullmatch(sha):
        return None
    return sha


def fsync_dir(path: Path) -> None:
    """Make renames and new entries in ``path`` durable (a no-op where directories can't be
    opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Create ``path`` (never overwrite) with ``data``, on disk before this returns."""
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def rmtree(path: Path) -> None:
    """Delete a directory tree, or a file or link (a link is never followed)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def read_store_file(directory: Path, name: str, root: Path, limit: int,
                     dir_fd: int | None = None) -> bytes:
    """Read one file of the store safely (bounded, regular, no link out); OSError if not."""
    fd = fs.open_in_store(directory, name, root, dir_fd)
    try:
        return fs.read_fd_limited(fd, limit)
    except fs.ReadLimitExceeded:
        hint = "" if name == MANIFEST else (
            " (raise it with --max-decompressed or MEMGATE_MAX_DECOMPRESSED_BYTES)")
        raise OSError(errno.EFBIG, f"is larger than the limit of {limit} bytes{hint}",
                      str(directory / name)) from None
    finally:
        os.close(fd)


class DirReader:
    """Reads files of one directory through a directory descriptor where the OS allows it.

    The descriptor follows the directory when an update renames it away, so a reader sees one
    consistent version of a baseline even while another process replaces it.
    """

    def __init__(self, directory: Path, root: Path) -> None:
        self.directory = directory
        self.root = root
        self.fd: int | None = None
        if os.open in os.supports_dir_fd:
            self.fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))

    def read(self, name: str, limit: int) -> bytes:
        """A regular file of the directory, at most ``limit`` bytes, never through a link
        that leaves the store (:func:`memgate.fs.open_in_store`)."""
        return read_store_file(self.directory, name, self.root, limit, self.fd)

    def names(self) -> list[str]:
        if self.fd is not None and os.listdir in os.supports_fd:
            return sorted(os.listdir(self.fd))
        return sorted(os.listdir(self.directory))

    def still_current(self, path: Path) -> bool:
        """Whether ``path`` still names the directory being read (no update replaced it)."""
        if self.fd is None:
            return path.is_dir()
        try:
            a, b = os.fstat(self.fd), os.stat(path)
        except OSError:
            return False
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Lock:
    """Exclusive, non-blocking writer lock of one component (the docstring of
    :mod:`memgate.baseline.store`)."""

    def __init__(self, root: Path, component: str) -> None:
        self.component = component
        self.path = root / f".{component}.lock"
        self.fd: int | None = None

    def __enter__(self) -> None:
        for _ in range(50):
            try:
                fd = fs.open_lock_file(self.path)
            except fs.UnsafeFile as e:
                raise BaselineError(f"{e.strerror}", source=str(self.path),
                                    slug="baseline-locked") from None
            if not _try_lock(fd):
                holder = _holder(fd)
                os.close(fd)
                raise BaselineError(
                    f"baseline {self.component} is being updated by another process (lock "
                    f"{self.path}{holder}); try again when it has finished",
                    slug="baseline-locked")
            # The previous holder may have deleted the file between our open and our lock:
            # then we hold a lock on a file nobody else will ever see. Start over.
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                os.close(fd)
                continue
            fst = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (fst.st_dev, fst.st_ino):
                os.close(fd)
                continue
            info = (f"pid {os.getpid()} on host {socket.gethostname()} since {now()}")
            os.ftruncate(fd, 0)
            os.write(fd, info.encode("utf-8", "replace"))
            self.fd = fd
            return
        raise BaselineError(f"could not take the lock {self.path}: it keeps being replaced",
                            slug="baseline-locked")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.fd is None:
            return
        # Unlink while still holding the lock; the inode check above makes this safe.
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = None


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    else:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True


def is_locked(path: Path) -> bool:
    """Whether a writer holds ``path`` right now; opens it read-only, never creates it."""
    if sys.platform == "win32":  # pragma: no cover
        return False
    import fcntl

    try:
        # Never through a link: a committed `.c.lock -> /dev/...` is not memgate's lock.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 512, 0).decode("utf-8", "replace")
    except (OSError, AttributeError):
        return ""
    text = one_line(text, 120)
    return f", held by {text}" if text else ""


def swap_in(root: Path, component: str, files: list[tuple[str, bytes]], manifest: bytes) -> None:
    """Write a new version of ``component`` beside the old one and switch it in with two
    renames (the module docstring of :mod:`memgate.baseline.store`)."""
    token = new_token()
    main = root / component
    new = root / f".{component}.new-{token}"
    old = root / f".{component}.old-{token}"
    os.mkdir(new)
    try:
        for name, data in files:
            write_durable(new / name, data)
            step("wrote-profile")
        write_durable(new / MANIFEST, manifest)
        step("wrote-manifest")
        fsync_dir(new)
        step("synced-new")
        had_old = os.path.lexists(main)
        if had_old:
            os.rename(main, old)
            step("moved-old")
        try:
            os.rename(new, main)
        except OSError:
            if had_old:
                os.rename(old, main)
            raise
        fsync_dir(root)
        step("moved-new")
    except BaseException:
        if not os.path.lexists(new) and os.path.lexists(main):
            # Interrupted just after the commit point: finish the cleanup below.
            drop_old(root, component, old, token)
            raise
        # Ctrl-C (or an error) before the commit point: put the old version back, so
        # that an interrupted update leaves the store exactly as it was.
        if os.path.lexists(old) and not os.path.lexists(main):
            try:
                os.rename(old, main)
            except OSError:
                pass  # recovery (the next writer, or `memgate baseline recover`) does it
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)
        raise
    if had_old:
        drop_old(root, component, old, token, steps=True)

def drop_old(root: Path, component: str, old: Path, token: str, steps: bool = False) -> None:
    """Delete the replaced version (renamed to ``.trash-`` first). Ctrl-C in the middle
    still finishes it: the update has committed, nothing of it should be left around."""
    trash = root / f".{component}.trash-{token}"
    try:
        if os.path.lexists(old):
            os.rename(old, trash)
        if steps:
            step("trashed-old")
        if os.path.lexists(trash):
            rmtree(trash)
        if steps:
            step("deleted-old")
    except KeyboardInterrupt:
        if os.path.lexists(old):
            os.rename(old, trash)
        shutil.rmtree(trash, ignore_errors=True)
        raise
