"""The baseline store: reference profiles per component in ``baselines/``, changed only on purpose.

A gate is only as good as what it compares against, so baselines live in the user's repository
and change only through a commit that reviewers see, with the reason written down. The layout
is meant to be read in a pull-request diff::

    baselines/
      <component>/
        manifest.json          # reason, who approved, per-profile metadata, top-function summary
        <sha256[:16]>.pb.gz    # the profiles themselves, gzip pprof, named by content hash

Atomicity (docs/baselines.md explains it for users). A new version of ``<component>/`` is
written completely beside the old one as ``.<component>.new-<token>/`` (profiles, then the
manifest, each fsynced, then the directory), and switched in with two renames::

    <component>            -> .<component>.old-<token>      (1)
    .<component>.new-<token> -> <component>                 (2: the commit point)
    .<component>.old-<token> -> .<component>.trash-<token>  (3), then deleted

A ``.old-`` directory is only ever made by renaming a committed baseline and is renamed to
``.trash-`` before anything in it is deleted, so it is always complete. The one moment where
``<component>/`` does not exist is between (1) and (2); readers then use the single
``.<component>.old-*`` (the update did not commit, so the old baseline is in effect) and never
write anything. The next writer (``update``, ``remove``, ``recover``, all under the lock)
renames it back and deletes leftovers before it starts, so at most one ``.old-`` directory of
a component can exist while ``<component>/`` is missing.

Locking: writers of one component hold ``fcntl.flock`` on ``.<component>.lock``. The kernel
drops the lock when its process dies, so a killed update never leaves a stale lock behind; a
second writer fails at once instead of waiting, and the lock file is deleted on release.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import unicodedata
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Protocol, cast

import numpy as np

# jsonschema ships no type information; types-jsonschema may or may not be installed.
from memgate import __version__, escape, fs, schemas
from memgate.durations import DurationSources, resolve_duration
from memgate.errors import BaselineError, MemgateError, ReportError
from memgate.profile.decode import GZIP_MAGIC, Limits, decode, restart_run_budget
from memgate.profile.model import Profile
from memgate.profile.source import read_bytes

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "STEPS",
    "SUMMARY_TOP",
    "Baseline",
    "ProfileInput",
    "Store",
    "StoredProfile",
    "baseline_schema",
    "render_manifest",
    "validate_component_name",
]

#: The manifest format this memgate reads and writes. Another value is refused, never guessed.
FORMAT_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
#: Functions per sample type in the manifest summary: enough to see what a new baseline
#: changes in a pull-request diff, few enough to keep the diff readable.
SUMMARY_TOP: Final = 10
MAX_NAME_LENGTH: Final = 100

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

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TOKEN_LEN: Final = 16
_TEMP_RE: Final = re.compile(rf"\.(?P<name>.+)\.(?P<kind>new|old|trash)-[0-9a-f]{{{_TOKEN_LEN}}}")
#: How often a reader starts over when concurrent updates keep replacing what it reads.
_READ_ATTEMPTS: Final = 50
_SHA_RE: Final = re.compile(r"[0-9a-f]{64}")
_GIT_SHA_RE: Final = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_UPDATE_HINT: Final = ("create one with `memgate baseline update --component {c} PROFILE... "
                       "--reason TEXT`")


def validate_component_name(name: str) -> str:
    """Return ``name`` if it can name a directory under ``baselines/``, else raise.

    A component name becomes a path, so anything that could leave the store (separators,
    ``..``, absolute paths) or hide in it (a leading dot is reserved for the store's own
    temporary entries) is refused, and so are control characters, which would make one-line
    messages lie. The allowed alphabet is the one policy files use for ``components`` keys,
    so that every baseline can have a policy section.
    """
    shown = repr(name)
    if not isinstance(name, str) or name == "":
        raise BaselineError("invalid component name: it is empty", slug="component-name")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        reason = "contains a control character"
    elif name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", name):
        reason = "is an absolute path"
    elif "/" in name or "\\" in name:
        reason = "contains a path separator"
    elif ".." in name or name == ".":
        reason = "contains '.' or '..' path parts"
    elif name.startswith("."):
        reason = "starts with '.' (reserved for the store's temporary files)"
    elif len(name) > MAX_NAME_LENGTH:
        reason = f"is longer than {MAX_NAME_LENGTH} characters"
    elif not _NAME_RE.fullmatch(name):
        reason = ("may contain only ASCII letters, digits, '.', '_' and '-' and must start "
                  "with a letter or digit")
    else:
        return name
    raise BaselineError(f"invalid component name {shown}: it {reason}", slug="component-name")


@dataclass(frozen=True)
class StoredProfile:
    """One profile of a baseline, as the manifest describes it."""

    path: Path
    sha256: str
    original_name: str
    #: Seconds the profile covers (``--duration`` or the profile's own); None: not known.
    duration_seconds: float | None
    #: ``((type, unit), ...)`` in the profile's column order.
    sample_types: tuple[tuple[str, str], ...]
    period: int
    period_type: tuple[str, str] = ("", "")
    #: Where the profile is in a remote store (``s3://...``); None in a local one.
    url: str | None = None
    #: The store the file belongs to: a symbolic link may not lead out of it.
    root: Path | None = field(default=None, compare=False, repr=False)

    def read_bytes(self) -> bytes:
        """The stored bytes, checked against the manifest's sha256.

        The gate should read baseline profiles through this, so that a file changed after
        ``load`` (by hand, or by a concurrent update) is an error and not a silent comparison
        against something nobody reviewed.
        """
        try:
            data = _read_store_file(self.path.parent, self.path.name,
                                    self.root or self.path.parent.parent,
                                    Limits.from_env().max_decompressed_bytes)
        except OSError as e:
            raise BaselineError(f"cannot read: {e.strerror or e}", source=str(self.path)) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != self.sha256:
            raise BaselineError(f"checksum mismatch: manifest says sha256 {self.sha256}, the "
                                f"file has {actual}", source=str(self.path),
                                slug="baseline-checksum")
        return data


@dataclass(frozen=True)
class Baseline:
    """A loaded, checked baseline of one component."""

    component: str
    #: The directory the profiles are in: ``<root>/<component>`` (or, while an interrupted
    #: update awaits recovery, the complete previous version it left beside it).
    directory: Path
    #: The manifest as read (validated against the schema).
    manifest: dict[str, object]
    profiles: tuple[StoredProfile, ...]
    reason: str
    approved_by: str | None = None
    updated: str = ""
    #: The profiles' bytes as read (and checksummed) by :meth:`Store.load`, in the order of
    #: ``profiles``: one consistent version even if an update replaces it right afterwards.
    data: tuple[bytes, ...] = field(default=(), repr=False, compare=False)
    #: A remote store's baseline (memgate.remote): where its version is, and which version
    #: the pointer file in the repository names.
    url: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class ProfileInput:
    """A profile to store: its bytes and what the caller knows about them."""

    data: bytes
    #: Path or URL it came from (for messages).
    source: str
    #: Name recorded in the manifest (the file's base name, never a local absolute path).
    original_name: str
    #: Overrides the profile's own duration when set.
    duration_seconds: float | None = None
    #: Where ``duration_seconds`` comes from, for messages (``--duration``, ``report``).
    duration_source: str = "--duration"
    #: Where a profile from a continuous profiler came from (server, query, absolute range),
    #: recorded in the manifest so that the update can be reviewed and repeated.
    origin: dict[str, object] | None = None


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _step(name: str) -> None:
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


def _now() -> str:
    """UTC time, to the second; ``SOURCE_DATE_EPOCH`` pins it for reproducible manifests."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    try:
        stamp = int(raw) if raw else time.time()
    except ValueError:
        stamp = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def _git_commit(directory: Path) -> str | None:
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


def _fsync_dir(path: Path) -> None:
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


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _rmtree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _token() -> str:
    return secrets.token_hex(_TOKEN_LEN // 2)


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _original_name(spec: str) -> str:
    """What the manifest records as a profile's name: never a local directory or a URL secret."""
    if spec == "-":
        return "<stdin>"
    if "://" in spec and not Path(spec).exists():
        parts = urllib.parse.urlsplit(spec)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
    return Path(spec).name or spec


def _origin(source: str) -> dict[str, object] | None:
    """The manifest's ``source`` of a profile read from a profiler URL (``source`` is then the
    URL with its range made absolute, as :func:`read_bytes` returns it); None otherwise."""
    if "://" not in source:
        return None
    from memgate.profile.profilers import is_profiler_url, parse

    return parse(source).describe() if is_profiler_url(source) else None


def _storable(data: bytes) -> bytes:
    """The bytes to store: gzip as given, anything else gzipped deterministically (mtime 0).

    The decoder sniffs content, so a gzipped raw protobuf or legacy text profile still decodes.
    """
    if data[:2] == GZIP_MAGIC:
        return data
    return gzip.compress(data, compresslevel=9, mtime=0)


def _types_of(prof: Profile) -> tuple[tuple[str, str], ...]:
    return tuple((st.type, st.unit) for st in prof.sample_types)


def _describe(types: Sequence[Sequence[str]]) -> str:
    return ", ".join(f"{t}/{u}" for t, u in types) or "no sample types"


def _round(x: float) -> float:
    """Six significant digits: stable across platforms and short in a diff; never ``-0.0``."""
    r = float(f"{x:.6g}")
    return 0.0 if r == 0 else r


def baseline_schema() -> dict[str, Any]:
    """The manifest JSON Schema (Draft 2020-12), as a fresh dict the caller may modify."""
    return schemas.schema("baseline")


def render_manifest(manifest: dict[str, object]) -> str:
    """Manifest JSON as committed: sorted keys, indented, newline at the end.

    Deterministic so that an update changes only the lines whose content changed, which keeps
    the pull-request diff a reviewer reads small. One exception to the sorting: a summary row
    starts with its ``function``, so that the diff shows which function a changed rate belongs
    to (sorted, the name came last and git paired the rates of unrelated rows).
    """
    # escape.json_text: control and format characters of a name (a bidi override hides text
    # in a review) appear as \u escapes in the committed file; the data is the same.
    return escape.json_dumps(_ordered(manifest), indent=2, allow_nan=True) + "\n"


def _ordered(value: object) -> object:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (k != "function", str(k)))
        return {k: _ordered(value[k]) for k in keys}
    if isinstance(value, list):
        return [_ordered(v) for v in value]
    return value


def _summarize(
    profiles: Sequence[Profile], durations: Sequence[float | None],
) -> tuple[str, dict[str, list[dict[str, object]]], dict[str, float]]:
    """Top functions per sample type by mean flat rate, as the gate computes rates.

    Rate = mean over the profiles of value / duration in seconds when every profile has a
    duration ("per_second"), else the plain mean value per profile ("per_profile").
    """
    from memgate.table import aggregate

    per_second = all(d is not None and d > 0 for d in durations)
    tables = [aggregate(p, "functions") for p in profiles]
    index: dict[str, int] = {}
    for t in tables:
        for nm in t.names:
            index.setdefault(nm, len(index))
    names = list(index)
    ntypes = len(profiles[0].sample_types)
    flat = np.zeros((len(names), ntypes), dtype=np.float64)
    cum = np.zeros((len(names), ntypes), dtype=np.float64)
    total = np.zeros(ntypes, dtype=np.float64)
    for t, d in zip(tables, durations):
        scale = 1.0 / d if per_second and d is not None else 1.0
        rows = np.fromiter((index[nm] for nm in t.names), dtype=np.int64, count=len(t.names))
        flat[rows] += t.flat.astype(np.float64) * scale
        cum[rows] += t.cum.astype(np.float64) * scale
        total += t.total.astype(np.float64) * scale
    k = float(len(tables))
    flat /= k
    cum /= k
    total /= k
    summary: dict[str, list[dict[str, object]]] = {}
    totals: dict[str, float] = {}
    for ti, st in enumerate(profiles[0].sample_types):
        column = flat[:, ti]
        nonzero = [i for i in range(len(names)) if column[i] != 0]
        nonzero.sort(key=lambda i: (-abs(float(column[i])), names[i]))
        # The top rows are chosen by rate but written in the order of a stable key (the
        # function's name; the sample types are the sorted keys around them): sorted by rate,
        # a rate that moved reordered the rows and git paired unrelated functions in the
        # pull-request diff of an update.
        summary[st.type] = [
            {"function": names[i], "flat_rate": _round(float(column[i])),
             "cum_rate": _round(float(cum[i, ti]))}
            for i in sorted(nonzero[:SUMMARY_TOP], key=lambda i: names[i])
        ]
        totals[st.type] = _round(float(total[ti]))
    return ("per_second" if per_second else "per_profile"), summary, totals


class _DirReader:
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
        return _read_store_file(self.directory, name, self.root, limit, self.fd)

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


class _VersionReader(Protocol):
    """What :meth:`Store._inspect_with` reads one version through: :class:`_DirReader`
    here, the remote store's reader in :mod:`memgate.remote`."""

    def read(self, name: str, limit: int) -> bytes: ...

    def names(self) -> list[str]: ...

    def still_current(self, path: Path) -> bool: ...


class _Retry(Exception):
    """The directory being read was replaced meanwhile; read again."""


#: The largest manifest read: a real one is a few kilobytes (ten functions per sample type).
MAX_MANIFEST_BYTES: Final = 16 << 20


def _read_store_file(directory: Path, name: str, root: Path, limit: int,
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


class _Lock:
    """Exclusive, non-blocking writer lock of one component (see the module docstring)."""

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
            info = (f"pid {os.getpid()} on host {socket.gethostname()} since {_now()}")
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


def _is_locked(path: Path) -> bool:
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
    text = _one_line(text, 120)
    return f", held by {text}" if text else ""


# ---------------------------------------------------------------------------------------------
# The store
# ---------------------------------------------------------------------------------------------


class Store:
    """A directory of baselines, one subdirectory per component.

    Read-only operations (:meth:`components`, :meth:`exists`, :meth:`load`, :meth:`verify`,
    :meth:`notes`) never write, not even a lock file: ``check`` runs them in CI on a checkout
    that must stay clean. Writers (:meth:`update`, :meth:`accept`, :meth:`remove`,
    :meth:`recover`) hold the component's lock.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # -- reading --------------------------------------------------------------------------

    def _scan(self) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(self.root) as it:
                return sorted(it, key=lambda e: e.name)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise BaselineError("is not a directory", source=str(self.root)) from None
        except OSError as e:
            raise BaselineError(f"cannot read: {e.strerror or e}", source=str(self.root)) from None

    def _temps(self, component: str) -> list[tuple[str, Path]]:
        """``(kind, path)`` of the temporary entries of one component, sorted by name."""
        out: list[tuple[str, Path]] = []
        for e in self._scan():
            m = _TEMP_RE.fullmatch(e.name)
            if m and m.group("name") == component:
                out.append((m.group("kind"), Path(e.path)))
        return out

    def components(self) -> list[str]:
        """Names of the components that have a baseline, sorted."""
        names: set[str] = set()
        for e in self._scan():
            m = _TEMP_RE.fullmatch(e.name)
            if m is None and not e.name.startswith(".") and e.is_dir():
                name = e.name
            elif m is not None and m.group("kind") == "old":
                name = m.group("name")
            else:
                continue
            try:
                validate_component_name(name)
            except BaselineError:
                continue
            if self._resolve(name) is not None:
                names.add(name)
        return sorted(names)

    def exists(self, component: str) -> bool:
        return self._resolve(validate_component_name(component)) is not None

    def _resolve(self, component: str) -> Path | None:
        """The directory holding the component's baseline in effect, or None.

        ``<component>/`` if it exists; otherwise the single complete ``.old-`` directory an
        interrupted update left (see the module docstring); otherwise there is no baseline.
        """
        main = self.root / component
        for _ in range(_READ_ATTEMPTS):
            if os.path.lexists(main):
                return main
            olds = [p for kind, p in self._temps(component) if kind == "old"]
            if len(olds) == 1:
                return olds[0]
            if len(olds) > 1:
                raise self._resolve_error(component, olds)
            if not os.path.lexists(main):
                return None
            # An update committed between the two looks (its ``.old-`` was already renamed to
            # ``.trash-`` by the time of the scan): look again rather than report no baseline.
        raise BaselineError(f"baseline {component} kept changing while it was looked up; is an "
                            "update running?", source=str(self.root))

    def _missing(self, component: str) -> BaselineError:
        return BaselineError(
            f"no baseline for component {component} ({_UPDATE_HINT.format(c=component)})",
            source=str(self.root), slug="baseline-missing")

    def load(self, component: str) -> Baseline:
        """The component's baseline, with manifest and checksums checked.

        Raises :class:`BaselineError` when there is none (with the command that creates one),
        when its manifest is invalid or of an unknown format, or when a file is missing or
        does not match its checksum.
        """
        validate_component_name(component)
        for _ in range(_READ_ATTEMPTS):
            directory = self._resolve(component)
            if directory is None:
                raise self._missing(component)
            try:
                baseline, problems = self._inspect(component, directory, deep=False)
            except _Retry:
                continue
            if problems or baseline is None:
                first = problems[0] if problems else "cannot be read"
                raise BaselineError(f"{first} (run `memgate baseline verify {component}`)",
                                    source=str(directory))
            return baseline
        raise BaselineError(f"baseline {component} kept changing while it was read; is an "
                            "update running?", source=str(self.root))

    def _inspect(self, component: str, directory: Path, *,
                 deep: bool) -> tuple[Baseline | None, list[str]]:
        """Check one version directory; return the baseline (if usable) and all problems.

        ``deep`` also decodes every profile and recomputes the summary (``verify``); without
        it only the manifest and checksums are checked (``load``, which the gate runs).
        Raises :class:`_Retry` if the directory was replaced while it was being read.
        """
        # One stat, not is_dir() then lexists(): between two calls an update can rename the
        # old version away and the new one in, and the pair would report "not a directory".
        try:
            mode = os.stat(directory).st_mode
        except FileNotFoundError:
            if os.path.islink(directory):
                return None, [f"{directory.name} is a broken symbolic link"]
            raise _Retry() from None  # renamed away by an update since it was resolved
        except OSError as e:
            return None, [f"cannot read {directory}: {e.strerror or e}"]
        if not stat.S_ISDIR(mode):
            return None, [f"{directory.name} is not a directory"]
        if os.path.islink(directory) and not fs.inside(directory, self.root):
            return None, [f"{directory.name} is a symbolic link to {os.readlink(directory)}, "
                          "outside the baseline store"]
        try:
            reader = _DirReader(directory, self.root)
        except FileNotFoundError:
            raise _Retry() from None
        except OSError as e:
            return None, [f"cannot read {directory}: {e.strerror or e}"]
        try:
            result = self._inspect_with(component, directory, reader, deep=deep)
            if not reader.still_current(directory):
                # An update swapped versions while we read: what we read is consistent, but
                # the paths we would hand out now name the other version.
                raise _Retry()
            return result
        except FileNotFoundError as e:
            if reader.still_current(directory):
                return None, [f"cannot read {e.filename or directory}: no such file"]
            raise _Retry() from None
        finally:
            reader.close()

    def _inspect_with(self, component: str, directory: Path, reader: _VersionReader, *,
                      deep: bool) -> tuple[Baseline | None, list[str]]:
        problems: list[str] = []
        try:
            raw = reader.read(MANIFEST, MAX_MANIFEST_BYTES)
        except FileNotFoundError:
            if not reader.still_current(directory):
                raise
            return None, [f"{MANIFEST} is missing"]
        except OSError as e:
            return None, [f"cannot read {MANIFEST}: {e.strerror or e}"]
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return None, [f"{MANIFEST} is not UTF-8"]
        except json.JSONDecodeError as e:
            msg = f"{MANIFEST} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}"
            return None, [msg]
        except RecursionError:
            return None, [f"{MANIFEST} is not valid JSON: nested too deeply"]
        if not isinstance(data, dict):
            return None, [f"{MANIFEST} must hold a JSON object"]
        fmt = data.get("format")
        if fmt != FORMAT_VERSION or isinstance(fmt, bool):
            if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > FORMAT_VERSION:
                msg = (f"{MANIFEST} has format {fmt}, written by a newer memgate; this memgate "
                       f"{__version__} reads format {FORMAT_VERSION}: upgrade memgate")
            else:
                msg = (f"{MANIFEST} has unknown format {_one_line(json.dumps(fmt), 40)}; this "
                       f"memgate reads format {FORMAT_VERSION}")
            return None, [msg]
        errors = sorted(schemas.validator("baseline").iter_errors(data),
                        key=lambda e: [(isinstance(p, str), p) for p in e.absolute_path])
        for err in errors:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}"
                            for p in err.absolute_path).lstrip(".")
            problems.append(f"{MANIFEST}: {where or '(top level)'}: {_one_line(err.message)}")
        if problems:
            return None, problems
        manifest = cast(dict[str, Any], data)
        if manifest["component"] != component:
            problems.append(f"{MANIFEST} is for component {manifest['component']!r}, but it is "
                            f"in the directory of {component!r}")
        stored: list[StoredProfile] = []
        blobs: list[bytes] = []
        decoded: list[Profile] = []
        seen: set[str] = set()
        first_types: tuple[tuple[str, str], ...] | None = None
        first_period: tuple[tuple[str, str], int] | None = None
        for i, entry in enumerate(manifest["profiles"]):
            name = str(entry["file"])
            sha = str(entry["sha256"])
            types = tuple((str(st["type"]), str(st["unit"])) for st in entry["sample_types"])
            ptype = (str(entry["period_type"]["type"]), str(entry["period_type"]["unit"]))
            period = int(entry["period"])
            where = f"profiles[{i}] ({name})"
            if name in seen:
                problems.append(f"{where}: listed twice")
                continue
            seen.add(name)
            if name != f"{sha[:16]}.pb.gz":
                problems.append(f"{where}: file name must be the first 16 hex digits of its "
                                f"sha256 ({sha[:16]}.pb.gz)")
            if first_types is None:
                first_types, first_period = types, (ptype, period)
            elif types != first_types or (ptype, period) != first_period:
                problems.append(f"{where}: sample types or period differ from profiles[0]; a "
                                "baseline holds repeated runs of one workload")
            try:
                blob = reader.read(name, Limits.from_env().max_decompressed_bytes)
            except FileNotFoundError:
                if not reader.still_current(directory):
                    raise
                problems.append(f"{where}: file is missing")
                continue
            except OSError as e:
                problems.append(f"{where}: cannot read: {e.strerror or e}")
                continue
            actual = hashlib.sha256(blob).hexdigest()
            if actual != sha:
                problems.append(f"{where}: checksum mismatch: the manifest says sha256 {sha}, "
                                f"the file has {actual}")
                continue
            dur = entry["duration_seconds"]
            stored.append(StoredProfile(
                path=directory / name, sha256=sha, original_name=str(entry["original_name"]),
                duration_seconds=None if dur is None else float(dur), sample_types=types,
                period=period, period_type=ptype, root=self.root))
            if not deep:
                blobs.append(blob)
            if deep:
                try:
                    prof = decode(blob, str(directory / name), Limits.from_env())
                except MemgateError as e:
                    problems.append(f"{where}: does not parse: {_one_line(e.message)}")
                    continue
                if _types_of(prof) != types:
                    problems.append(f"{where}: the profile has sample types "
                                    f"[{_describe(_types_of(prof))}], the manifest says "
                                    f"[{_describe(types)}]")
                elif ((prof.period_type.type, prof.period_type.unit), prof.period) != (
                        ptype, period):
                    problems.append(f"{where}: the profile's sampling period differs from the "
                                    "manifest's")
                else:
                    decoded.append(prof)
        if deep:
            listed = {str(e["file"]) for e in manifest["profiles"]}
            for extra in reader.names():
                if extra.endswith(".pb.gz") and extra not in listed:
                    problems.append(f"{extra} is not listed in {MANIFEST}")
            # Only a summary this memgate version wrote must match exactly: another version
            # may aggregate differently (a pprof fix), and that is not damage to the baseline.
            same_version = manifest["memgate_version"] == __version__
            if same_version and not problems and len(decoded) == len(stored):
                unit, summary, totals = _summarize(decoded, [p.duration_seconds for p in stored])
                recomputed = json.loads(json.dumps(
                    {"summary_unit": unit, "summary": summary, "summary_totals": totals}))
                recorded = {k: manifest.get(k) for k in recomputed}
                if recomputed != recorded:
                    problems.append(f"{MANIFEST}: the summary does not match the profiles (was it "
                                    "edited by hand? `memgate baseline update` rewrites it)")
        if problems:
            return None, problems
        return Baseline(
            component=component, directory=directory, manifest=dict(manifest),
            profiles=tuple(stored), reason=str(manifest["reason"]),
            approved_by=manifest["approved_by"], updated=str(manifest["updated"]),
            data=tuple(blobs),
        ), []

    def verify(self, component: str | None = None) -> list[str]:
        """Every problem of one component (or of all), each as ``"<component>: <problem>"``.

        Checks the schema, the format version, checksums, that every profile parses and
        matches its manifest entry, and that the summary is the one the profiles give. An
        empty list means the baseline (or the whole store) is sound. Never writes.
        """
        if component is not None:
            names = [validate_component_name(component)]
        else:
            if not self.root.is_dir():
                return [(f"{self.root}: no baselines directory (create a baseline with "
                         "`memgate baseline update --component NAME PROFILE... --reason TEXT`)")]
            names = self.components()
        problems: list[str] = []
        if component is None:
            for e in self._scan():
                if e.name.startswith(".") or not e.is_dir():
                    continue
                try:
                    validate_component_name(e.name)
                except BaselineError as err:
                    problems.append(f"{e.name!r}: not a baseline: {err.message}")
        for name in names:
            # Components are decoded one after the other, never held together: --max-total
            # applies to one component at a time.
            restart_run_budget()
            for _ in range(_READ_ATTEMPTS):
                try:
                    directory = self._resolve(name)
                except BaselineError as e:
                    problems.append(f"{name}: {e.message}")
                    break
                if directory is None:
                    problems.append(f"{name}: {self._missing(name).message}")
                    break
                try:
                    _, found = self._inspect(name, directory, deep=True)
                except _Retry:
                    continue
                problems.extend(f"{name}: {p}" for p in found)
                break
            else:
                problems.append(f"{name}: kept changing while it was verified; is an update "
                                "running?")
        return problems

    def _leftover_names(self) -> list[str]:
        """Components with temporary entries or a lock file (left by a killed writer)."""
        found: set[str] = set()
        for e in self._scan():
            m = _TEMP_RE.fullmatch(e.name)
            if m:
                found.add(m.group("name"))
            elif e.name.startswith(".") and e.name.endswith(".lock"):
                found.add(e.name[1:-5])
        return sorted(found)

    def notes(self, component: str | None = None) -> list[str]:
        """Informational remarks that are not problems: leftovers of interrupted updates
        (and which version is in effect), or an update running right now."""
        names = ([validate_component_name(component)] if component is not None
                 else self._leftover_names())
        out: list[str] = []
        for name in names:
            if _is_locked(self.root / f".{name}.lock"):
                out.append(f"{name}: an update is running right now")
                continue
            temps = self._temps(name)
            if not temps:
                continue
            main = self.root / name
            olds = [p for kind, p in temps if kind == "old"]
            if not os.path.lexists(main) and len(olds) == 1:
                out.append(f"{name}: an update was interrupted before it took effect; the "
                           f"previous baseline is in effect from {olds[0].name} "
                           f"(`memgate baseline recover {name}` moves it back to {name}/)")
            else:
                out.append(f"{name}: leftovers of an interrupted update are ignored: "
                           f"{', '.join(p.name for _, p in temps)} (the next update or "
                           f"`memgate baseline recover {name}` deletes them)")
        return out

    # -- writing --------------------------------------------------------------------------

    def _recover_locked(self, component: str) -> list[str]:
        """Under the lock: put an interrupted update's previous version back in place and
        delete every temporary entry of the component. Returns what was done."""
        done: list[str] = []
        main = self.root / component
        if not os.path.lexists(main):
            olds = [p for kind, p in self._temps(component) if kind == "old"]
            if len(olds) > 1:
                raise self._resolve_error(component, olds)
            if olds:
                os.rename(olds[0], main)
                _fsync_dir(self.root)
                done.append(f"restored the previous baseline of {component} from "
                            f"{olds[0].name} (an update was interrupted)")
        for kind, path in self._temps(component):
            shown = path.name
            if kind == "old":
                # Keep the rule "an .old- directory is always complete": rename, then delete.
                trash = self.root / f".{component}.trash-{_token()}"
                os.rename(path, trash)
                path = trash
            _rmtree(path)
            done.append(f"deleted the leftover {shown}")
        return done

    def _resolve_error(self, component: str, olds: list[Path]) -> BaselineError:
        return BaselineError(
            f"baseline {component} is missing and several interrupted updates left previous "
            f"versions ({', '.join(p.name for p in olds)}); keep the right one by renaming it "
            f"to {component}/ and delete the others", source=str(self.root))

    def recover(self, component: str | None = None) -> list[str]:
        """Finish what interrupted updates left: restore or clean up. Returns what was done."""
        names = ([validate_component_name(component)] if component is not None
                 else self._leftover_names())
        done: list[str] = []
        for name in names:
            try:
                validate_component_name(name)
            except BaselineError:
                continue
            try:
                with self._writing(name):
                    done.extend(f"{name}: {d}" for d in self._recover_locked(name))
            except BaselineError as e:
                if component is not None or e.slug != "baseline-locked":
                    raise
                done.append(f"{name}: skipped: an update is running right now")
            except OSError as e:
                raise BaselineError(f"cannot recover: {e.strerror or e}",
                                    source=str(e.filename or self.root)) from None
        return done

    def _writing(self, component: str) -> _Lock:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise BaselineError(f"cannot create the baselines directory: {e.strerror or e}",
                                source=str(self.root)) from None
        if not self.root.is_dir():
            raise BaselineError("is not a directory", source=str(self.root))
        return _Lock(self.root, component)

    def update(
        self,
        component: str,
        profiles: Sequence[str | Path],
        *,
        reason: str,
        approved_by: str | None = None,
        duration_seconds: float | None = None,
        force: bool = False,
        policy_duration_seconds: float | None = None,
        runs_may_shrink: bool = False,
    ) -> Baseline:
        """Replace (or create) the component's baseline with ``profiles``, atomically.

        Several profiles are repeated runs of one workload. Each profile's duration is
        resolved as ``check`` resolves a candidate's (:func:`memgate.durations.resolve_duration`):
        ``duration_seconds`` (``--duration``), else the profile's own, else
        ``policy_duration_seconds`` (the policy's ``components.<name>.duration``). Refused: an
        empty reason; profiles that are not all of one kind; profiles incompatible with the
        existing baseline (other sample types or sampling period) or fewer runs than it has,
        unless ``force`` (or, for the runs, ``runs_may_shrink``); a concurrent update of the
        same component.
        """
        validate_component_name(component)
        _check_reason(reason)
        if not profiles:
            raise BaselineError("no profiles given", slug="usage")
        limits = Limits.from_env()
        inputs: list[ProfileInput] = []
        for spec in profiles:
            data, source = read_bytes(str(spec), limits)
            inputs.append(ProfileInput(data=data, source=source,
                                       original_name=_original_name(str(spec)),
                                       duration_seconds=duration_seconds,
                                       origin=_origin(source)))
        return self.update_inputs(component, inputs, reason=reason, approved_by=approved_by,
                                  force=force, policy_duration_seconds=policy_duration_seconds,
                                  runs_may_shrink=runs_may_shrink)

    def accept(
        self,
        report: str | Path,
        *,
        reason: str,
        approved_by: str | None = None,
        component: str | None = None,
        force: bool = False,
        runs_may_shrink: bool = False,
    ) -> Baseline:
        """Make the candidate profiles of a ``check`` report the component's new baseline.

        The report's ``inputs.candidate`` entries name the files (relative to the current
        directory) and their sha256 at check time; a file that changed since is refused, so
        that what is accepted is exactly what was checked and approved.
        """
        _check_reason(reason)
        report_component, entries = _read_report(Path(report))
        if component is not None:
            validate_component_name(component)
            if report_component is not None and report_component != component:
                raise BaselineError(f"the report is for component {report_component}, not "
                                    f"{component}", source=str(report))
        name = component or report_component
        if name is None:
            raise BaselineError("the report names no component; give one with --component",
                                source=str(report))
        limits = Limits.from_env()
        inputs: list[ProfileInput] = []
        for path, sha, dur in entries:
            if path in ("<stdin>", "-"):
                raise BaselineError(
                    "the report's candidate profile was read from standard input and cannot "
                    "be read again; give the profile file to `memgate baseline update`",
                    source=str(report))
            data, source = read_bytes(path, limits)
            actual = hashlib.sha256(data).hexdigest()
            if actual != sha:
                raise BaselineError(
                    f"changed since the check: the report has sha256 {sha[:12]}…, the file "
                    f"now {actual[:12]}…; re-run the check on it before accepting",
                    source=source, slug="baseline-changed")
            inputs.append(ProfileInput(data=data, source=source,
                                       original_name=_original_name(path),
                                       duration_seconds=dur, duration_source="report"))
        return self.update_inputs(name, inputs, reason=reason, approved_by=approved_by,
                                  force=force, checked_against=_reported_baseline(Path(report)),
                                  report=str(report), runs_may_shrink=runs_may_shrink)

    def update_inputs(
        self,
        component: str,
        inputs: Sequence[ProfileInput],
        *,
        reason: str,
        approved_by: str | None = None,
        force: bool = False,
        checked_against: frozenset[str] | None = None,
        report: str | None = None,
        policy_duration_seconds: float | None = None,
        runs_may_shrink: bool = False,
    ) -> Baseline:
        """:meth:`update` for profiles already in memory (``accept`` checks their hashes
        first, so the bytes checked are the bytes stored).

        ``checked_against``: the sha256 of the baseline profiles the ``report`` compared
        with; unless ``force``, the existing baseline must be exactly that (checked under
        the lock, see :meth:`_check_existing`)."""
        validate_component_name(component)
        reason = _check_reason(reason)
        if approved_by is not None:
            approved_by = approved_by.strip() or None
        if not inputs:
            raise BaselineError("no profiles given", slug="usage")
        limits = Limits.from_env()
        prepared: list[tuple[bytes, str, ProfileInput, Profile, float | None]] = []
        by_sha: dict[str, str] = {}
        for inp in inputs:
            if inp.duration_seconds is not None and not (
                    math.isfinite(inp.duration_seconds) and inp.duration_seconds > 0):
                raise BaselineError(f"duration must be positive, got {inp.duration_seconds}",
                                    source=inp.source, slug="usage")
            prof = decode(inp.data, inp.source, limits)
            stored = _storable(inp.data)
            sha = hashlib.sha256(stored).hexdigest()
            if sha in by_sha:
                raise BaselineError(f"the same profile is given twice ({by_sha[sha]} and "
                                    f"{inp.source}); repeated runs are separate profiles",
                                    source=inp.source, slug="usage")
            by_sha[sha] = inp.source
            dur, _ = resolve_duration(
                prof.duration_seconds, first=inp.duration_seconds,
                first_source=inp.duration_source,
                then=DurationSources(policy=policy_duration_seconds))
            dur = None if dur is None else float(dur)
            prepared.append((stored, sha, inp, prof, dur))
        first = prepared[0][3]
        for _, _, inp, prof, _ in prepared[1:]:
            _require_same_kind(first, prof, inp.source)
        # Sorted by content: the manifest does not depend on the order of the arguments.
        prepared.sort(key=lambda p: p[1])
        _step("decoded")
        unit, summary, totals = _summarize([p[3] for p in prepared], [p[4] for p in prepared])
        entries: list[dict[str, object]] = [
            {
                "file": f"{sha[:16]}.pb.gz",
                "sha256": sha,
                "original_name": inp.original_name,
                "sample_types": [{"type": t, "unit": u} for t, u in _types_of(prof)],
                "period_type": {"type": prof.period_type.type, "unit": prof.period_type.unit},
                "period": prof.period,
                "duration_seconds": dur,
                **({"source": inp.origin} if inp.origin else {}),
            }
            for _, sha, inp, prof, dur in prepared
        ]
        files = [(str(e["file"]), p[0]) for e, p in zip(entries, prepared)]

        def manifest_for(created: str | None) -> dict[str, object]:
            now = _now()
            manifest: dict[str, object] = {
                "format": FORMAT_VERSION,
                "component": component,
                "memgate_version": __version__,
                "created": created or now,
                "updated": now,
                "git_commit": _git_commit(self.root),
                "reason": reason,
                "approved_by": approved_by,
                "profiles": entries,
                "summary_unit": unit,
                "summary": summary,
                "summary_totals": totals,
            }
            rendered = json.loads(render_manifest(manifest))
            errors = list(schemas.validator("baseline").iter_errors(rendered))
            if errors:  # pragma: no cover - a bug, not a user error
                raise AssertionError(f"manifest does not match its schema: {errors[0]}")
            return manifest

        return self._write_update(component, files, manifest_for, first=first,
                                  source=prepared[0][2].source, force=force,
                                  checked_against=checked_against, report=report,
                                  runs=None if runs_may_shrink else len(prepared))

    def _write_update(self, component: str, files: list[tuple[str, bytes]],
                      manifest_for: Callable[[str | None], dict[str, object]], *,
                      first: Profile, source: str, force: bool,
                      checked_against: frozenset[str] | None,
                      report: str | None, runs: int | None = None) -> Baseline:
        """Under the lock: check against the existing baseline, write the new version and
        switch it in (the remote store replaces this with its conditional commit)."""
        try:
            with self._writing(component):
                _step("locked")
                self._recover_locked(component)
                _step("recovered")
                created = self._check_existing(component, first, source, force,
                                               checked_against, report, runs=runs)
                self._commit(component, files, manifest_for(created))
                return self.load(component)
        except OSError as e:
            raise BaselineError(f"cannot write the baseline: {e.strerror or e}",
                                source=str(e.filename or self.root)) from None

    def _existing(self, component: str) -> tuple[Baseline | None, list[str], str] | None:
        """The baseline a writer is about to replace (None: there is none), with its problems
        and where it is (for messages)."""
        main = self.root / component
        if not os.path.lexists(main):
            return None
        try:
            old, problems = self._inspect(component, main, deep=False)
        except _Retry:  # pragma: no cover - we hold the lock
            old, problems = None, ["changed while it was read"]
        return old, problems, str(main)

    def _check_existing(self, component: str, first: Profile, source: str, force: bool,
                        checked_against: frozenset[str] | None = None,
                        report: str | None = None, runs: int | None = None) -> str | None:
        """Refuse profiles that do not fit the existing baseline, or (``accept``) a baseline
        other than the one the report was checked against, or (``runs``: the number of new
        profiles) fewer repeated runs than it has; return its ``created``."""
        existing = self._existing(component)
        if existing is None:
            return None
        old, problems, main = existing
        if old is None:
            newer = any("newer memgate" in p for p in problems)
            if newer or not force:
                hint = "" if newer else (
                    f"; run `memgate baseline verify {component}`, or use --force to "
                    "replace it")
                raise BaselineError(f"the existing baseline of {component} is invalid: "
                                    f"{problems[0] if problems else 'unreadable'}{hint}",
                                    source=main)
            return None
        if not force and checked_against is not None and \
                checked_against != frozenset(p.sha256 for p in old.profiles):
            # What was approved is the change against the baseline the check saw; if the
            # store moved on since (another accept, a manual update), that approval does not
            # cover replacing what is there now.
            raise BaselineError(
                f"the baseline of {component} is not the one this report was checked against "
                "(it changed since the check, or the check compared with other files); "
                "check the candidates against the current baseline again, or use --force",
                source=report or main, slug="baseline-changed")
        if not force:
            ref = old.profiles[0]
            new_types = _types_of(first)
            if new_types != ref.sample_types:
                raise BaselineError(
                    f"incompatible with the existing baseline of {component}: it has sample "
                    f"types [{_describe(ref.sample_types)}], the profile has "
                    f"[{_describe(new_types)}] (use --force to replace the baseline anyway)",
                    source=source, slug="incompatible")
            new_period = ((first.period_type.type, first.period_type.unit), first.period)
            if new_period != (ref.period_type, ref.period):
                raise BaselineError(
                    f"incompatible with the existing baseline of {component}: it is sampled "
                    f"every {ref.period} {ref.period_type[1] or 'units'}, the profile every "
                    f"{first.period} {first.period_type.unit or 'units'} (use --force to "
                    "replace the baseline anyway)", source=source, slug="incompatible")
        if not force and runs is not None and runs < len(old.profiles):
            # Fewer runs average less noise away: a 3-run baseline silently replaced by 1 run
            # makes every later check noisier, and the manifest diff does not show why.
            raise BaselineError(
                f"the baseline of {component} has {len(old.profiles)} runs (profiles), the new "
                f"one would have {runs}: fewer runs make the gate noisier; give all "
                f"{len(old.profiles)} runs, or pass --runs-may-shrink (or --force) if fewer "
                "is intended", source=report or source, slug="runs-shrink")
        created = old.manifest.get("created")
        return created if isinstance(created, str) else None

    def _commit(self, component: str, files: list[tuple[str, bytes]],
                manifest: dict[str, object]) -> None:
        """Write the new version beside the old one and switch it in (module docstring)."""
        token = _token()
        main = self.root / component
        new = self.root / f".{component}.new-{token}"
        old = self.root / f".{component}.old-{token}"
        os.mkdir(new)
        try:
            for name, data in files:
                _write_durable(new / name, data)
                _step("wrote-profile")
            _write_durable(new / MANIFEST, render_manifest(manifest).encode("utf-8"))
            _step("wrote-manifest")
            _fsync_dir(new)
            _step("synced-new")
            had_old = os.path.lexists(main)
            if had_old:
                os.rename(main, old)
                _step("moved-old")
            try:
                os.rename(new, main)
            except OSError:
                if had_old:
                    os.rename(old, main)
                raise
            _fsync_dir(self.root)
            _step("moved-new")
        except BaseException:
            if not os.path.lexists(new) and os.path.lexists(main):
                # Interrupted just after the commit point: finish the cleanup below.
                self._drop_old(component, old, token)
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
            self._drop_old(component, old, token, steps=True)

    def _drop_old(self, component: str, old: Path, token: str, steps: bool = False) -> None:
        """Delete the replaced version (renamed to ``.trash-`` first). Ctrl-C in the middle
        still finishes it: the update has committed, nothing of it should be left around."""
        trash = self.root / f".{component}.trash-{token}"
        try:
            if os.path.lexists(old):
                os.rename(old, trash)
            if steps:
                _step("trashed-old")
            if os.path.lexists(trash):
                _rmtree(trash)
            if steps:
                _step("deleted-old")
        except KeyboardInterrupt:
            if os.path.lexists(old):
                os.rename(old, trash)
            shutil.rmtree(trash, ignore_errors=True)
            raise

    def remove(self, component: str) -> None:
        """Delete the component's baseline; atomic like an update (a rename, then delete)."""
        validate_component_name(component)
        try:
            with self._writing(component):
                self._recover_locked(component)
                main = self.root / component
                if not os.path.lexists(main):
                    raise self._missing(component)
                trash = self.root / f".{component}.trash-{_token()}"
                os.rename(main, trash)
                _fsync_dir(self.root)
                _step("remove-moved")
                _rmtree(trash)
                _step("remove-deleted")
        except OSError as e:
            raise BaselineError(f"cannot remove the baseline: {e.strerror or e}",
                                source=str(e.filename or self.root)) from None


def _check_reason(reason: str) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise BaselineError("a reason is required: say why the baseline changes (--reason)",
                            slug="usage")
    return reason.strip()


def _require_same_kind(first: Profile, other: Profile, source: str) -> None:
    """All profiles of one baseline are repeated runs of one workload: same types and period."""
    if _types_of(other) != _types_of(first):
        raise BaselineError(
            f"the profiles of one baseline must be runs of the same workload: {first.source} "
            f"has sample types [{_describe(_types_of(first))}], this one "
            f"[{_describe(_types_of(other))}]", source=source, slug="incompatible")
    if (other.period_type, other.period) != (first.period_type, first.period):
        raise BaselineError(
            f"the profiles of one baseline must be runs of the same workload: {first.source} "
            f"is sampled every {first.period} {first.period_type.unit or 'units'}, this one "
            f"every {other.period} {other.period_type.unit or 'units'}", source=source,
            slug="incompatible")


def _inside_cwd(path: str) -> bool:
    """Whether ``path`` (symlinks resolved) is in the current directory or below it."""
    if "\x00" in path:
        return False
    try:
        cwd = Path.cwd().resolve()
        return Path(path).resolve().is_relative_to(cwd)
    except (OSError, RuntimeError, ValueError):
        return False


def _read_report(path: Path) -> tuple[str | None, list[tuple[str, str, float | None]]]:
    """The component and the candidate inputs ``(path, sha256, duration)`` of a check report."""
    src = str(path)
    from memgate.profile.decode import read_report_bytes

    try:
        data = json.loads(read_report_bytes(path).decode("utf-8"))
    except FileNotFoundError:
        raise ReportError("no such file", source=src, slug="not-found") from None
    except OSError as e:
        raise ReportError(f"cannot read: {e.strerror or e}", source=src) from None
    except UnicodeDecodeError:
        raise ReportError("is not UTF-8 JSON", source=src) from None
    except json.JSONDecodeError as e:
        raise ReportError(f"is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}",
                          source=src) from None
    except RecursionError:
        raise ReportError("is not valid JSON: nested too deeply", source=src) from None
    if not isinstance(data, dict):
        raise ReportError("is not a memgate check report (expected a JSON object)", source=src)
    component = data.get("component")
    if component is not None:
        if not isinstance(component, str):
            raise ReportError("\"component\" must be a string", source=src)
        validate_component_name(component)
    inputs = data.get("inputs")
    candidates = inputs.get("candidate") if isinstance(inputs, dict) else None
    if not isinstance(candidates, list) or not candidates:
        raise ReportError("has no candidate profiles (\"inputs\": {\"candidate\": [...]}); is "
                          "it the JSON report of `memgate check`?", source=src)
    out: list[tuple[str, str, float | None]] = []
    for i, c in enumerate(candidates):
        where = f"inputs.candidate[{i}]"
        if not isinstance(c, dict):
            raise ReportError(f"{where} must be an object", source=src)
        p, sha, dur = c.get("path"), c.get("sha256"), c.get("duration_seconds")
        if not isinstance(p, str) or not p:
            raise ReportError(f"{where}.path must be a non-empty string", source=src)
        if p == "-" or ("://" in p and not Path(p).exists()):
            raise ReportError(f"{where}: {p} was read from standard input or a URL and cannot "
                              "be read again; save the profile to a file and check that",
                              source=src)
        if not _inside_cwd(p):
            # A report is data (a CI artifact, maybe from a fork): it must not make accept read
            # files elsewhere on the machine (~/.ssh/..., /etc/...) into a baseline.
            raise ReportError(f"{where}.path {_one_line(repr(p), 80)} is outside the current "
                              "directory; accept reads candidate profiles only from the "
                              "directory it runs in (keep the profiles inside it, and run "
                              "accept where `memgate check` ran)",
                              source=src, slug="path-outside")
        if not isinstance(sha, str) or not _SHA_RE.fullmatch(sha):
            raise ReportError(f"{where}.sha256 must be 64 lowercase hex digits", source=src)
        if dur is not None and (isinstance(dur, bool) or not isinstance(dur, (int, float))
                                or not math.isfinite(dur) or dur <= 0):
            raise ReportError(f"{where}.duration_seconds must be a positive number or null",
                              source=src)
        out.append((p, sha, None if dur is None else float(dur)))
    return component, out


def _reported_baseline(path: Path) -> frozenset[str] | None:
    """The sha256 of the baseline profiles a check report compared against (None: the report
    does not say; an empty set: it had none, as with --allow-missing-baseline)."""
    from memgate.profile.decode import read_report_bytes

    try:
        data = json.loads(read_report_bytes(path).decode("utf-8"))
        entries = data["inputs"]["baseline"]
        return frozenset(str(e["sha256"]) for e in entries)
    except (OSError, ValueError, KeyError, TypeError, MemgateError):
        return None

