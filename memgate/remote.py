"""Baselines in object storage (``s3://``, ``gs://``, ``az://``, ``file://``, ``memory://``).

Large profiles, or many services' baselines, do not belong in git; review does. So the
profiles live in a bucket, through fsspec (``pip install 'memgate[remote]'``), and a small
*pointer file* per component stays in the repository, ``<pointers>/<component>.remote.json``:
the remote version, the sha256 of its manifest and a copy of that manifest (reason, sources,
per-function summary), so that a pull request that changes a baseline shows what changes.

Layout under the store URL, per component (docs/baselines.md)::

    <component>/profiles/<sha256[:16]>.pb.gz   immutable, named by content
    <component>/manifests/<sha256>.json        immutable, named by content
    <component>/versions/<N:010d>.json         one commit per update: {version, parent,
                                               manifest_sha256}; never rewritten

Readers follow the pointer: version N, whose commit must name the pointer's manifest sha256,
whose bytes must have it, whose profiles must have theirs. Everything they read is immutable,
so they never see half an update or a mix of two; anything missing or different fails closed
(exit 3), never passes.

Writers commit version N+1 with a *conditional write*: create ``versions/N+1`` only if it
does not exist (S3's ``If-None-Match: *``; ``link(2)`` on a local file system; a process-wide
lock for ``memory://``, which only one process sees). Of two concurrent updates one wins; the
other reads the new head, checks its profiles against it again (sample types, period; for
``accept`` that the baseline is still the one it was checked against) and commits N+2: no
update is lost. Backends whose conditional writes memgate does not use (``gs://``, ``az://``
and every other fsspec protocol, or any store with ``MEMGATE_STORE_LOCKING=lock-object``)
serialize writers with a lock object instead (write, wait, read back; stale after a TTL),
which is only as safe as the store's read-after-write consistency.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from memgate import schemas
from memgate.config import DEFAULT_CONFIG, Config
from memgate.errors import BaselineError
from memgate.profile.model import Profile
from memgate.store import (
    MANIFEST,
    Baseline,
    Store,
    StoredProfile,
    _now,
    render_manifest,
    validate_component_name,
)

POINTER_SUFFIX = ".remote.json"
POINTER_FORMAT = 1
#: Protocols whose exclusive create memgate uses for the commit (see the module docstring).
CONDITIONAL = frozenset({"s3", "s3a", "file", "local", "memory"})
LOCKING_ENV = "MEMGATE_STORE_LOCKING"
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_VERSION_RE = re.compile(r"(\d{10})\.json")
#: memory:// lives in this process only: a process-wide lock makes its create exclusive.
_MEMORY_LOCK = threading.Lock()
#: Updates of one component from threads of one process (an embedder, a test) take turns
#: instead of racing each other through the store; processes still race, and the conditional
#: write decides between them.
_COMMIT_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_COMMIT_LOCKS_GUARD = threading.Lock()


def _commit_lock(url: str, component: str) -> threading.Lock:
    with _COMMIT_LOCKS_GUARD:
        return _COMMIT_LOCKS.setdefault((url, component), threading.Lock())


def is_remote(root: str | Path) -> bool:
    """Whether ``--baselines`` names a remote store (``SCHEME://...``) rather than a
    directory."""
    return isinstance(root, str) and re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", root) is not None


def open_store(root: str | Path, pointers: str | Path = "baselines",
               config: Config = DEFAULT_CONFIG) -> Store:
    """The store ``--baselines`` names: a local directory, or a remote store whose pointer
    files are in ``pointers``; it reads profiles with the run's ``config``."""
    if is_remote(root):
        return RemoteStore(str(root), pointers, config)
    return Store(root, config)


def redact(url: str) -> str:
    """The store URL without credentials (``s3://KEY:SECRET@bucket`` is possible in fsspec)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # a malformed URL (an unclosed "[" host): keep only what follows "@"
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[-1]}" if "@" in rest else url
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@")[-1]))


def _env_float(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value >= 0 else default


class _Reader:
    """What :meth:`Store._inspect_with` reads a version through: the manifest (already
    checked against the pointer) and the profiles under ``profiles/``."""

    def __init__(self, store: RemoteStore, component: str, manifest: bytes,
                 files: Sequence[str]) -> None:
        self.store, self.component, self.manifest, self.files = (store, component, manifest,
                                                                 list(files))

    def read(self, name: str, limit: int) -> bytes:
        data = self.manifest if name == MANIFEST else self.store._cat(
            self.store._key(self.component, "profiles", name))
        if len(data) > limit:
            raise BaselineError(f"{name} is larger than the limit of {limit} bytes",
                                source=self.store.shown)
        return data

    def names(self) -> list[str]:
        # Profiles are shared between versions: only the listed ones belong to this one.
        return sorted(self.files)

    def still_current(self, path: Path) -> bool:
        return True  # versions are immutable


class RemoteStore(Store):
    """A baseline store in object storage; ``root`` is the local directory of the pointer
    files (in the repository), ``url`` the store."""

    def __init__(self, url: str, pointers: str | Path = "baselines",
                 config: Config = DEFAULT_CONFIG) -> None:
        super().__init__(Path(pointers), config)
        self.url = url.rstrip("/")
        self.shown = redact(self.url)
        self.protocol = self.url.split("://", 1)[0].lower()
        forced = os.environ.get(LOCKING_ENV, "").strip().lower()
        self.locking = ("lock-object" if forced == "lock-object" or self.protocol not in
                        CONDITIONAL else "conditional")
        self._fs: Any = None
        self._base = ""
        self._head = 0
        #: Objects read or written by this store object. Every key under profiles/,
        #: manifests/ and versions/ names immutable content, so a cached copy never goes
        #: stale; an update that retries after a conflict re-reads only what is new.
        self._cache: dict[str, bytes] = {}

    # -- the file system ------------------------------------------------------------------

    def _filesystem(self) -> Any:
        if self._fs is not None:
            return self._fs
        try:
            import fsspec  # type: ignore[import-untyped, unused-ignore]
        except ImportError:
            raise BaselineError("a remote baseline store needs fsspec: pip install "
                                "'memgate[remote]'", source=self.shown,
                                slug="remote-unavailable") from None
        kwargs: dict[str, Any] = {}
        if self.protocol not in ("file", "local", "memory"):
            # Every listing must be fresh: a cached one would hide a concurrent commit.
            kwargs = {"use_listings_cache": False}
        if self.protocol in ("s3", "s3a"):
            # Small objects only: one GET each, not a HEAD for the size first.
            kwargs["max_concurrency"] = 1
        try:
            fs, path = fsspec.core.url_to_fs(self.url, **kwargs)
        except ImportError as e:
            raise BaselineError(f"the {self.protocol}:// backend of fsspec is not installed "
                                f"({_line(e)}); pip install 'memgate[remote]' installs s3fs, "
                                "gcsfs or adlfs are separate", source=self.shown,
                                slug="remote-unavailable") from None
        except Exception as e:  # noqa: BLE001 - any backend's way of saying "bad URL"
            raise BaselineError(f"cannot open the store: {_line(e)}", source=self.shown,
                                slug="remote-unavailable") from None
        self._fs, self._base = fs, str(path).rstrip("/")
        return fs

    def _key(self, component: str, *parts: str) -> str:
        self._filesystem()
        return "/".join([self._base, component, *parts])

    def _where(self, key: str) -> str:
        """A key as the user can find it: the store URL and the path below it."""
        rel = key[len(self._base):].lstrip("/") if key.startswith(self._base) else key
        return f"{self.shown}/{rel}"

    def _io(self, key: str, action: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except FileNotFoundError:
            raise
        except FileExistsError:
            raise
        except BaselineError:
            raise
        except Exception as e:  # noqa: BLE001 - botocore, aiohttp, OSError ...: one line
            if _precondition_failed(e):
                raise FileExistsError(key) from None
            raise BaselineError(f"cannot {action}: {_line(e)}", source=self._where(key),
                                slug="remote-io") from None

    def _cat(self, key: str) -> bytes:
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        fs = self._filesystem()
        data = bytes(self._io(key, "read", lambda: fs.cat_file(key)))
        if not key.endswith("/lock.json"):
            self._cache[key] = data
        return data

    def _exists(self, key: str) -> bool:
        fs = self._filesystem()
        return bool(self._io(key, "look up", lambda: fs.exists(key)))

    def _put(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        """Write one object whole; ``exclusive``: only if it does not exist (FileExistsError
        otherwise), atomically where ``self.locking`` is ``conditional``."""
        fs = self._filesystem()
        if self.protocol in ("file", "local"):
            self._io(key, "write", lambda: _put_local(key, data, exclusive))
        elif self.protocol == "memory":
            with _MEMORY_LOCK:
                if exclusive and fs.exists(key):
                    raise FileExistsError(key)
                self._io(key, "write", lambda: fs.pipe_file(key, data))
        elif exclusive and self.locking == "conditional":
            self._io(key, "write", lambda: fs.pipe_file(key, data, mode="create"))
        else:
            # Under the lock object: nobody else writes this component's versions now.
            if exclusive and self._exists(key):
                raise FileExistsError(key)
            self._io(key, "write", lambda: fs.pipe_file(key, data))
        if not key.endswith("/lock.json"):
            self._cache[key] = data

    def _delete(self, key: str) -> None:
        self._cache.pop(key, None)
        fs = self._filesystem()
        with contextlib.suppress(FileNotFoundError):
            self._io(key, "delete", lambda: fs.rm(key))

    def _versions(self, component: str) -> list[int]:
        fs = self._filesystem()
        key = self._key(component, "versions")
        with contextlib.suppress(Exception):
            fs.invalidate_cache(key)
        try:
            names = self._io(key, "list", lambda: fs.ls(key, detail=False))
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            m = _VERSION_RE.fullmatch(str(name).rstrip("/").rsplit("/", 1)[-1])
            if m:
                out.append(int(m.group(1)))
        return sorted(out)

    # -- pointer files --------------------------------------------------------------------

    def pointer_path(self, component: str) -> Path:
        return self.root / f"{component}{POINTER_SUFFIX}"

    def _read_pointer(self, component: str) -> dict[str, Any] | None:
        path = self.pointer_path(component)
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
            raise BaselineError(f"cannot read the pointer file: {_line(e)}", source=str(path),
                                slug="baseline-invalid") from None
        problem = None
        if not isinstance(data, dict):
            problem = "must hold a JSON object"
        elif data.get("format") != POINTER_FORMAT or isinstance(data.get("format"), bool):
            problem = f"has format {data.get('format')!r}; this memgate reads {POINTER_FORMAT}"
        elif data.get("component") != component:
            problem = f"is for component {data.get('component')!r}, not {component!r}"
        elif not isinstance(data.get("version"), int) or isinstance(data["version"], bool) \
                or data["version"] < 1:
            problem = "\"version\" must be a positive integer"
        elif not isinstance(data.get("manifest_sha256"), str) or \
                not _SHA_RE.fullmatch(data["manifest_sha256"]):
            problem = "\"manifest_sha256\" must be 64 lowercase hex digits"
        elif not isinstance(data.get("manifest"), dict):
            problem = "\"manifest\" must be the manifest (an object)"
        if problem:
            raise BaselineError(f"invalid pointer file: it {problem}", source=str(path),
                                slug="baseline-invalid")
        return cast(dict[str, Any], data)

    def _write_pointer(self, component: str, version: int, sha: str,
                       manifest: dict[str, object]) -> None:
        """Write the pointer atomically; of concurrent writers in one checkout the highest
        version stays (never an older one over a newer one)."""
        doc = {"format": POINTER_FORMAT, "component": component, "store": self.shown,
               "version": version, "manifest_sha256": sha, "manifest": manifest}
        path = self.pointer_path(component)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with _dir_lock(self.root):
                try:
                    old = self._read_pointer(component)
                except BaselineError:
                    old = None
                if old is not None and old.get("store") == self.shown and \
                        int(old["version"]) > version:
                    return
                tmp = self.root / f".{component}.remote-{secrets.token_hex(8)}"
                try:
                    with open(tmp, "xb") as f:
                        f.write(render_manifest(doc).encode("utf-8"))
                        f.flush()
                        os.fsync(f.fileno())
                    os.replace(tmp, path)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(tmp)
        except OSError as e:
            raise BaselineError(f"cannot write the pointer file: {e.strerror or e}",
                                source=str(path)) from None

    # -- reading --------------------------------------------------------------------------

    def components(self) -> list[str]:
        try:
            names = sorted(p.name[:-len(POINTER_SUFFIX)] for p in self.root.iterdir()
                           if p.name.endswith(POINTER_SUFFIX))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise BaselineError(f"cannot read: {e.strerror or e}", source=str(self.root)) \
                from None
        out = []
        for name in names:
            try:
                out.append(validate_component_name(name))
            except BaselineError:
                continue
        return out

    def exists(self, component: str) -> bool:
        return self.pointer_path(validate_component_name(component)).is_file()

    def _missing(self, component: str) -> BaselineError:
        return BaselineError(
            f"no baseline for component {component}: no pointer file "
            f"{self.pointer_path(component)} (create one with `memgate baseline update "
            f"--component {component} --baselines {self.shown} PROFILE... --reason TEXT` and "
            "commit the pointer file)",
            source=str(self.root), slug="baseline-missing")

    def _version_manifest(self, component: str, version: int,
                          expected_sha: str | None) -> tuple[bytes, str, dict[str, Any]]:
        """The manifest bytes of one committed version, checked: the commit exists, names
        ``expected_sha`` (the pointer's) and the bytes have it."""
        vkey = self._key(component, "versions", f"{version:010d}.json")
        try:
            commit = json.loads(self._cat(vkey))
        except FileNotFoundError:
            raise BaselineError(f"version {version} of {component} is not in the store (the "
                                "pointer file names it); refusing to gate without it",
                                source=self._where(vkey), slug="baseline-remote-missing") \
                from None
        except (ValueError, RecursionError):
            raise BaselineError("the version commit is not valid JSON", source=self._where(vkey),
                                slug="baseline-remote-mismatch") from None
        sha = commit.get("manifest_sha256") if isinstance(commit, dict) else None
        if not isinstance(sha, str) or not _SHA_RE.fullmatch(sha) or commit.get("removed"):
            raise BaselineError("the version commit names no manifest (a removal?)",
                                source=self._where(vkey), slug="baseline-remote-mismatch")
        if expected_sha is not None and sha != expected_sha:
            raise BaselineError(f"version {version} has manifest sha256 {sha}, the pointer "
                                f"file says {expected_sha}; refusing to gate against either",
                                source=self._where(vkey), slug="baseline-remote-mismatch")
        mkey = self._key(component, "manifests", f"{sha}.json")
        try:
            raw = self._cat(mkey)
        except FileNotFoundError:
            raise BaselineError("the manifest is missing from the store",
                                source=self._where(mkey), slug="baseline-remote-missing") \
                from None
        actual = hashlib.sha256(raw).hexdigest()
        if actual != sha:
            raise BaselineError(f"checksum mismatch: the version names sha256 {sha}, the "
                                f"object has {actual}", source=self._where(mkey),
                                slug="baseline-remote-mismatch")
        return raw, sha, commit

    def _open_version(self, component: str, version: int, expected_sha: str | None,
                      copy: dict[str, Any] | None, *,
                      deep: bool) -> tuple[Baseline | None, list[str]]:
        raw, sha, _ = self._version_manifest(component, version, expected_sha)
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None, [f"{MANIFEST} of version {version} is not valid JSON"]
        if copy is not None and manifest != copy:
            return None, [f"the pointer file's copy of the manifest differs from version "
                          f"{version}'s in the store (edited by hand?); run `memgate baseline "
                          f"update` again rather than editing {self.pointer_path(component)}"]
        files = [str(e.get("file")) for e in manifest.get("profiles", [])
                 if isinstance(e, dict)] if isinstance(manifest, dict) else []
        reader = _Reader(self, component, raw, files)
        baseline, problems = self._inspect_with(component, Path(component), reader, deep=deep)
        if baseline is None:
            return None, problems
        url = f"{self.shown}/{component}/manifests/{sha}.json"
        profiles = tuple(replace(p, url=f"{self.shown}/{component}/profiles/{p.path.name}")
                         for p in baseline.profiles)
        return replace(baseline, url=url, version=version, profiles=profiles), []

    def _load(self, component: str, *, deep: bool) -> tuple[Baseline | None, list[str]]:
        pointer = self._read_pointer(component)
        if pointer is None:
            raise self._missing(component)
        return self._open_version(component, int(pointer["version"]),
                                  str(pointer["manifest_sha256"]), pointer["manifest"],
                                  deep=deep)

    def load(self, component: str) -> Baseline:
        """The version the pointer file names, every object checked; fails closed."""
        validate_component_name(component)
        baseline, problems = self._load(component, deep=False)
        if baseline is None:
            first = problems[0] if problems else "cannot be read"
            raise BaselineError(f"{first} (run `memgate baseline verify {component}`)",
                                source=f"{self.shown}/{component}",
                                slug="baseline-remote-mismatch")
        return baseline

    def verify(self, component: str | None = None) -> list[str]:
        names = [validate_component_name(component)] if component is not None else \
            self.components()
        if component is None and not names:
            return [f"{self.root}: no pointer files (*{POINTER_SUFFIX}) for {self.shown}"]
        problems: list[str] = []
        for name in names:
            try:
                _, found = self._load(name, deep=True)
            except BaselineError as e:
                found = [str(e)]
            problems.extend(f"{name}: {p}" for p in found)
        return problems

    def notes(self, component: str | None = None) -> list[str]:
        names = [validate_component_name(component)] if component is not None else \
            self.components()
        out = []
        for name in names:
            try:
                pointer = self._read_pointer(name)
                versions = self._versions(name)
            except BaselineError:
                continue
            if pointer is not None and versions and versions[-1] > int(pointer["version"]):
                out.append(f"{name}: the store has a newer version ({versions[-1]}) than the "
                           f"pointer file's ({pointer['version']}); the gate uses "
                           f"{pointer['version']}, the one the repository names")
        return out

    # -- writing --------------------------------------------------------------------------

    def _writing(self, component: str) -> Any:
        if self.locking == "lock-object":
            return _ObjectLock(self, component)
        return contextlib.nullcontext()

    def _recover_locked(self, component: str) -> list[str]:
        return []

    def _existing(self, component: str) -> tuple[Baseline | None, list[str], str] | None:
        """The head of the store (not the pointer: an update follows every earlier one, so
        that none is lost); remembers its version for the commit."""
        versions = self._versions(component)
        self._head = versions[-1] if versions else 0
        if not self._head:
            return None
        where = self._where(self._key(component, "versions", f"{self._head:010d}.json"))
        try:
            raw, _, _ = self._version_manifest(component, self._head, None)
        except BaselineError as e:
            if e.message.startswith("the version commit names no manifest"):
                return None  # removed: the next update starts a new baseline
            return None, [e.message], where
        # The manifest (checked against its sha256 and the schema) is all the checks need:
        # sample types, period, the profiles' hashes, when the baseline was created.
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None, [f"{MANIFEST} of version {self._head} is not valid JSON"], where
        errors = list(schemas.validator("baseline").iter_errors(manifest))
        if errors or manifest.get("component") != component:
            first = _line(errors[0]) if errors else "it names another component"
            return None, [f"{MANIFEST} of version {self._head} is invalid: {first}"], where
        profiles = tuple(StoredProfile(
            path=Path(component) / str(e["file"]), sha256=str(e["sha256"]),
            original_name=str(e["original_name"]), duration_seconds=e["duration_seconds"],
            sample_types=tuple((str(t["type"]), str(t["unit"])) for t in e["sample_types"]),
            period=int(e["period"]),
            period_type=(str(e["period_type"]["type"]), str(e["period_type"]["unit"])))
            for e in manifest["profiles"])
        return Baseline(component=component, directory=Path(component), manifest=manifest,
                        profiles=profiles, reason=str(manifest["reason"]),
                        version=self._head), [], where

    def _write_update(self, component: str, files: list[tuple[str, bytes]],
                      manifest_for: Callable[[str | None], dict[str, object]], *,
                      first: Profile, source: str, force: bool,
                      checked_against: frozenset[str] | None,
                      report: str | None, runs: int | None = None) -> Baseline:
        """Upload the profiles, then commit head+1 exclusively; on a conflict check again
        against the new head and commit after it (module docstring)."""
        for name, data in files:
            # Named by content: writing it again (another update stored the same profile)
            # writes the same bytes, and costs less than asking first.
            self._put(self._key(component, "profiles", name), data)

        def attempt() -> tuple[int, str, dict[str, object]]:
            created = self._check_existing(component, first, source, force, checked_against,
                                           report, runs=runs)
            manifest = manifest_for(created)
            raw = render_manifest(manifest).encode("utf-8")
            sha = hashlib.sha256(raw).hexdigest()
            mkey = self._key(component, "manifests", f"{sha}.json")
            if mkey not in self._cache:  # named by content: written by an earlier attempt
                self._put(mkey, raw)
            version = self._head + 1
            self._commit_version(component, version, {
                "manifest_sha256": sha, "updated": manifest["updated"],
                "reason": manifest["reason"]})
            return version, sha, manifest

        version, sha, manifest = self._retrying(component, attempt)
        self._write_pointer(component, version, sha, manifest)
        # The version this update committed (the pointer may already name a later one
        # that a concurrent update in this checkout wrote).
        baseline, problems = self._open_version(component, version, sha, None, deep=False)
        if baseline is None:  # pragma: no cover - it was just written and checked
            raise BaselineError(problems[0] if problems else "cannot be read",
                                source=f"{self.shown}/{component}")
        return baseline

    def _commit_version(self, component: str, version: int, body: dict[str, object]) -> None:
        doc = {"format": POINTER_FORMAT, "component": component, "version": version,
               "parent": version - 1 or None, **body}
        self._put(self._key(component, "versions", f"{version:010d}.json"),
                  render_manifest(doc).encode("utf-8"), exclusive=True)

    def _retrying(self, component: str, attempt: Callable[[], Any]) -> Any:
        """Run ``attempt`` (under the lock object where there is one) until its exclusive
        commit wins; a conflict means another update committed first."""
        deadline = time.monotonic() + _env_float("MEMGATE_STORE_COMMIT_TIMEOUT", 300.0)
        delay = 0.02
        while True:
            try:
                with _commit_lock(self.url, component), self._writing(component):
                    return attempt()
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise BaselineError(
                        f"baseline {component}: concurrent updates kept committing first; "
                        "nothing was changed, try again", source=self.shown,
                        slug="baseline-locked") from None
                # Short and jittered: a commit takes a few requests, so the winner is done
                # by then; growing, so that many writers spread out.
                time.sleep(random.uniform(0, delay))
                delay = min(delay * 1.5, 0.2)

    def remove(self, component: str) -> None:
        """Commit a removal (the store keeps the history) and delete the pointer file."""
        validate_component_name(component)
        if self._read_pointer(component) is None:
            raise self._missing(component)

        def attempt() -> None:
            versions = self._versions(component)
            self._head = versions[-1] if versions else 0
            self._commit_version(component, self._head + 1,
                                 {"removed": True, "updated": _now()})

        self._retrying(component, attempt)
        try:
            self.pointer_path(component).unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise BaselineError(f"cannot delete the pointer file: {e.strerror or e}",
                                source=str(self.pointer_path(component))) from None

    def recover(self, component: str | None = None) -> list[str]:
        """A killed update leaves only unreferenced objects (harmless); with a lock object,
        a stale lock is removed."""
        if self.locking != "lock-object":
            return []
        names = [validate_component_name(component)] if component is not None else \
            self.components()
        done = []
        for name in names:
            if _ObjectLock(self, name).break_stale():
                done.append(f"{name}: removed a stale lock object")
        return done


class _ObjectLock:
    """The writer lock of backends without conditional writes: a lock object with a random
    token, written, left to settle and read back; older than its TTL it is stale."""

    def __init__(self, store: RemoteStore, component: str) -> None:
        self.store, self.component = store, component
        self.key = store._key(component, "lock.json")
        self.token = secrets.token_hex(16)
        self.ttl = _env_float("MEMGATE_STORE_LOCK_TTL", 600.0)
        self.settle = _env_float("MEMGATE_STORE_LOCK_SETTLE", 0.2)
        self.wait = _env_float("MEMGATE_STORE_LOCK_WAIT", 300.0)

    def _read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.store._cat(self.key))
        except FileNotFoundError:
            return None
        except (ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}

    def _stale(self, info: dict[str, Any]) -> bool:
        since = info.get("since")
        return not isinstance(since, (int, float)) or time.time() - since > self.ttl

    def break_stale(self) -> bool:
        info = self._read()
        if info is not None and self._stale(info):
            self.store._delete(self.key)
            return True
        return False

    def __enter__(self) -> None:
        deadline = time.monotonic() + self.wait
        while True:
            info = self._read()
            if info is not None and self._stale(info):
                self.store._delete(self.key)
                info = None
            if info is None:
                self.store._put(self.key, json.dumps({
                    "token": self.token, "since": time.time(), "pid": os.getpid(),
                    "host": socket.gethostname()}).encode())
                time.sleep(self.settle)
                mine = self._read()
                if mine is not None and mine.get("token") == self.token:
                    return
            if time.monotonic() > deadline:
                holder = info or {}
                raise BaselineError(
                    f"baseline {self.component} is being updated by another process (lock "
                    f"object {self.store._where(self.key)}, held by pid {holder.get('pid')} on "
                    f"host {holder.get('host')}); try again when it has finished",
                    slug="baseline-locked")
            time.sleep(random.uniform(0.01, 0.1))

    def __exit__(self, *exc: object) -> None:
        info = self._read()
        if info is not None and info.get("token") == self.token:
            self.store._delete(self.key)


@contextlib.contextmanager
def _dir_lock(directory: Path) -> Iterator[None]:
    """A blocking ``flock`` on the pointer directory itself (no lock file left behind)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _put_local(path: str, data: bytes, exclusive: bool) -> None:
    """A whole file or none: written beside the target, then renamed (or, ``exclusive``,
    hard-linked, which fails if the target exists: the conditional write of a file system)."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{secrets.token_hex(8)}")
    with open(tmp, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        if exclusive:
            os.link(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _precondition_failed(e: BaseException) -> bool:
    """S3's answer to a lost ``If-None-Match: *`` race (412 PreconditionFailed, or 409
    ConditionalRequestConflict), however the backend wraps it."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        text = f"{type(cur).__name__} {cur}"
        if "PreconditionFailed" in text or "ConditionalRequestConflict" in text or \
                "412" in text.split("(")[0]:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _line(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]
