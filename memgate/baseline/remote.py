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

The objects and the conditional write are :mod:`memgate.baseline.objects`'s, the pointer
files :mod:`memgate.baseline.pointers`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from memgate.baseline.fsops import now
from memgate.baseline.inspect import check_version
from memgate.baseline.manifest import MANIFEST, render_manifest, validate_manifest
from memgate.baseline.model import Baseline, StoredProfile
from memgate.baseline.names import validate_component_name
from memgate.baseline.objects import ObjectLock, ObjectStore, env_float
from memgate.baseline.pointers import (
    POINTER_FORMAT,
    POINTER_SUFFIX,
    SHA_RE,
    pointer_path,
    read_pointer,
    write_pointer,
)
from memgate.baseline.store import Store
from memgate.config import DEFAULT_CONFIG, Config
from memgate.errors import BaselineError
from memgate.profile.model import Profile

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



class _Reader:
    """What :func:`memgate.baseline.inspect.check_version` reads a version's profiles
    through: the objects under ``profiles/``."""

    def __init__(self, objects: ObjectStore, component: str, files: Sequence[str]) -> None:
        self.objects, self.component, self.files = objects, component, list(files)

    def read(self, name: str, limit: int) -> bytes:
        data = self.objects.cat(self.objects.key(self.component, "profiles", name))
        if len(data) > limit:
            raise BaselineError(f"{name} is larger than the limit of {limit} bytes",
                                source=self.objects.shown)
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
        self.objects = ObjectStore(url)
        self.url = self.objects.url
        self.shown = self.objects.shown
        self.locking = self.objects.locking
        self._head = 0

    def pointer_path(self, component: str) -> Path:
        return pointer_path(self.root, component)

    def _read_pointer(self, component: str) -> dict[str, Any] | None:
        return read_pointer(self.pointer_path(component), component)

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
        vkey = self.objects.key(component, "versions", f"{version:010d}.json")
        try:
            commit = json.loads(self.objects.cat(vkey))
        except FileNotFoundError:
            raise BaselineError(f"version {version} of {component} is not in the store (the "
                                "pointer file names it); refusing to gate without it",
                                source=self.objects.where(vkey), slug="baseline-remote-missing") \
                from None
        except (ValueError, RecursionError):
            raise BaselineError("the version commit is not valid JSON",
                                source=self.objects.where(vkey),
                                slug="baseline-remote-mismatch") from None
        sha = commit.get("manifest_sha256") if isinstance(commit, dict) else None
        if not isinstance(sha, str) or not SHA_RE.fullmatch(sha) or commit.get("removed"):
            raise BaselineError("the version commit names no manifest (a removal?)",
                                source=self.objects.where(vkey), slug="baseline-remote-mismatch")
        if expected_sha is not None and sha != expected_sha:
            raise BaselineError(f"version {version} has manifest sha256 {sha}, the pointer "
                                f"file says {expected_sha}; refusing to gate against either",
                                source=self.objects.where(vkey), slug="baseline-remote-mismatch")
        mkey = self.objects.key(component, "manifests", f"{sha}.json")
        try:
            raw = self.objects.cat(mkey)
        except FileNotFoundError:
            raise BaselineError("the manifest is missing from the store",
                                source=self.objects.where(mkey), slug="baseline-remote-missing") \
                from None
        actual = hashlib.sha256(raw).hexdigest()
        if actual != sha:
            raise BaselineError(f"checksum mismatch: the version names sha256 {sha}, the "
                                f"object has {actual}", source=self.objects.where(mkey),
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
        if not isinstance(manifest, dict):
            return None, [f"{MANIFEST} must hold a JSON object"]
        files = [str(e.get("file")) for e in manifest.get("profiles", []) if isinstance(e, dict)]
        reader = _Reader(self.objects, component, files)
        baseline, problems = check_version(component, Path(component), manifest, reader,
                                           self.root, deep=deep, config=self.config)
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
                versions = self.objects.versions(name)
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
            return ObjectLock(self.objects, component)
        return contextlib.nullcontext()

    def _recover_locked(self, component: str) -> list[str]:
        return []

    def _existing(self, component: str) -> tuple[Baseline | None, list[str], str] | None:
        """The head of the store (not the pointer: an update follows every earlier one, so
        that none is lost); remembers its version for the commit."""
        versions = self.objects.versions(component)
        self._head = versions[-1] if versions else 0
        if not self._head:
            return None
        where = self.objects.where(
            self.objects.key(component, "versions", f"{self._head:010d}.json"))
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
        problems = (validate_manifest(manifest) if isinstance(manifest, dict)
                    else [f"{MANIFEST} must hold a JSON object"])
        if problems or manifest.get("component") != component:
            first = problems[0] if problems else "it names another component"
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
            self.objects.put(self.objects.key(component, "profiles", name), data)

        def attempt() -> tuple[int, str, dict[str, object]]:
            created = self._check_existing(component, first, source, force, checked_against,
                                           report, runs=runs)
            manifest = manifest_for(created)
            raw = render_manifest(manifest).encode("utf-8")
            sha = hashlib.sha256(raw).hexdigest()
            mkey = self.objects.key(component, "manifests", f"{sha}.json")
            if not self.objects.cached(mkey):  # named by content: an earlier attempt wrote it
                self.objects.put(mkey, raw)
            version = self._head + 1
            self._commit_version(component, version, {
                "manifest_sha256": sha, "updated": manifest["updated"],
                "reason": manifest["reason"]})
            return version, sha, manifest

        version, sha, manifest = self._retrying(component, attempt)
        write_pointer(self.root, component, self.shown, version, sha, manifest)
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
        self.objects.put(self.objects.key(component, "versions", f"{version:010d}.json"),
                  render_manifest(doc).encode("utf-8"), exclusive=True)

    def _retrying(self, component: str, attempt: Callable[[], Any]) -> Any:
        """Run ``attempt`` (under the lock object where there is one) until its exclusive
        commit wins; a conflict means another update committed first."""
        deadline = time.monotonic() + env_float("MEMGATE_STORE_COMMIT_TIMEOUT", 300.0)
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
            versions = self.objects.versions(component)
            self._head = versions[-1] if versions else 0
            self._commit_version(component, self._head + 1,
                                 {"removed": True, "updated": now()})

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
            if ObjectLock(self.objects, name).break_stale():
                done.append(f"{name}: removed a stale lock object")
        return done
