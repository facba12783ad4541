"""Checking one stored version of a baseline: its manifest, its files, (deep) its profiles.

The local store and the remote store read a version in different ways (a directory
descriptor, objects in a bucket) and check it in one: both hand :func:`check_version` a
decoded manifest and a :class:`VersionReader` for the profile files. ``load`` (which the gate
runs) checks the manifest and every checksum; ``verify`` (``deep``) also decodes every
profile and recomputes the summary.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from memgate import __version__
from memgate.baseline.manifest import (
    MANIFEST,
    MAX_MANIFEST_BYTES,
    decode_manifest,
    describe_types,
    summary_problem,
    types_of,
    validate_manifest,
)
from memgate.baseline.model import Baseline, StoredProfile
from memgate.baseline.names import one_line
from memgate.config import Config
from memgate.errors import MemgateError
from memgate.profile.decode import decode
from memgate.profile.model import Profile


class VersionReader(Protocol):
    """What one version's files are read through: :class:`memgate.baseline.fsops.DirReader`
    in a local store, the remote store's reader in :mod:`memgate.baseline.remote`."""

    def read(self, name: str, limit: int) -> bytes: ...

    def names(self) -> list[str]: ...

    def still_current(self, path: Path) -> bool: ...


class Retry(Exception):
    """The directory being read was replaced meanwhile; read again."""


def read_manifest(reader: VersionReader,
                  directory: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The manifest of a local version, decoded (not yet validated), or its problem.

    FileNotFoundError propagates when the directory was replaced meanwhile (the caller reads
    again); a manifest missing from a directory that is still current is a problem.
    """
    try:
        raw = reader.read(MANIFEST, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        if not reader.still_current(directory):
            raise
        return None, [f"{MANIFEST} is missing"]
    except OSError as e:
        return None, [f"cannot read {MANIFEST}: {e.strerror or e}"]
    return decode_manifest(raw)


@dataclass
class _Found:
    """What the entries of a manifest gave: the usable profiles, and their problems."""

    stored: list[StoredProfile] = field(default_factory=list)
    blobs: list[bytes] = field(default_factory=list)
    decoded: list[Profile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_version(component: str, directory: Path, manifest: dict[str, Any],
                  reader: VersionReader, root: Path, *, deep: bool,
                  config: Config) -> tuple[Baseline | None, list[str]]:
    """Check one version: the manifest (format and schema, validated here once), every entry
    and its file, and with ``deep`` the profiles and the summary. Returns the baseline (if
    usable) and all problems."""
    problems = validate_manifest(manifest)
    if problems:
        return None, problems
    found = _Found()
    if manifest["component"] != component:
        found.problems.append(f"{MANIFEST} is for component {manifest['component']!r}, but it "
                              f"is in the directory of {component!r}")
    _check_entries(manifest, directory, reader, root, deep, found, config)
    if deep:
        _check_deep(manifest, reader, found)
    if found.problems:
        return None, found.problems
    return Baseline(
        component=component, directory=directory, manifest=dict(manifest),
        profiles=tuple(found.stored), reason=str(manifest["reason"]),
        approved_by=manifest["approved_by"], updated=str(manifest["updated"]),
        data=tuple(found.blobs),
    ), []


def _check_entries(manifest: dict[str, Any], directory: Path, reader: VersionReader,
                   root: Path, deep: bool, found: _Found, config: Config) -> None:
    """Every entry: listed once, named by its hash, of the first entry's kind, its file there
    and with its checksum (and, ``deep``, decoding to what the entry says)."""
    seen: set[str] = set()
    first: tuple[object, ...] | None = None
    for i, entry in enumerate(manifest["profiles"]):
        name = str(entry["file"])
        sha = str(entry["sha256"])
        types = tuple((str(st["type"]), str(st["unit"])) for st in entry["sample_types"])
        ptype = (str(entry["period_type"]["type"]), str(entry["period_type"]["unit"]))
        period = int(entry["period"])
        where = f"profiles[{i}] ({name})"
        if name in seen:
            found.problems.append(f"{where}: listed twice")
            continue
        seen.add(name)
        if name != f"{sha[:16]}.pb.gz":
            found.problems.append(f"{where}: file name must be the first 16 hex digits of its "
                                  f"sha256 ({sha[:16]}.pb.gz)")
        if first is None:
            first = (types, ptype, period)
        elif (types, ptype, period) != first:
            found.problems.append(f"{where}: sample types or period differ from profiles[0]; "
                                  "a baseline holds repeated runs of one workload")
        blob = _read_checked(reader, directory, name, sha, where, found.problems,
                             config.limits.max_decompressed_bytes)
        if blob is None:
            continue
        dur = entry["duration_seconds"]
        found.stored.append(StoredProfile(
            path=directory / name, sha256=sha, original_name=str(entry["original_name"]),
            duration_seconds=None if dur is None else float(dur), sample_types=types,
            period=period, period_type=ptype, root=root))
        if not deep:
            found.blobs.append(blob)
            continue
        prof = _decode_checked(blob, directory / name, types, (ptype, period), where,
                               found.problems, config)
        if prof is not None:
            found.decoded.append(prof)


def _read_checked(reader: VersionReader, directory: Path, name: str, sha: str, where: str,
                  problems: list[str], limit: int) -> bytes | None:
    """A profile file's bytes if they are there and have the manifest's sha256."""
    try:
        blob = reader.read(name, limit)
    except FileNotFoundError:
        if not reader.still_current(directory):
            raise
        problems.append(f"{where}: file is missing")
        return None
    except OSError as e:
        problems.append(f"{where}: cannot read: {e.strerror or e}")
        return None
    actual = hashlib.sha256(blob).hexdigest()
    if actual != sha:
        problems.append(f"{where}: checksum mismatch: the manifest says sha256 {sha}, "
                        f"the file has {actual}")
        return None
    return blob


def _decode_checked(blob: bytes, path: Path, types: tuple[tuple[str, str], ...],
                    period: tuple[tuple[str, str], int], where: str,
                    problems: list[str], config: Config) -> Profile | None:
    """The decoded profile if it parses and has the entry's sample types and period."""
    try:
        prof = decode(blob, str(path), config.limits, budget=config.budget)
    except MemgateError as e:
        problems.append(f"{where}: does not parse: {one_line(e.message)}")
        return None
    if types_of(prof) != types:
        problems.append(f"{where}: the profile has sample types "
                        f"[{describe_types(types_of(prof))}], the manifest says "
                        f"[{describe_types(types)}]")
        return None
    if ((prof.period_type.type, prof.period_type.unit), prof.period) != period:
        problems.append(f"{where}: the profile's sampling period differs from the manifest's")
        return None
    return prof


def _check_deep(manifest: dict[str, Any], reader: VersionReader, found: _Found) -> None:
    """No unlisted profile beside the listed ones; the summary the profiles give."""
    listed = {str(e["file"]) for e in manifest["profiles"]}
    for extra in reader.names():
        if extra.endswith(".pb.gz") and extra not in listed:
            found.problems.append(f"{extra} is not listed in {MANIFEST}")
    # Only a summary this memgate version wrote must match exactly: another version may
    # aggregate differently (a pprof fix), and that is not damage to the baseline. Nor does
    # a summary without summary_kinds, written before bug #15.1 was fixed (in-use levels
    # divided by the duration, no unit scale): the next update rewrites it.
    same_version = (manifest["memgate_version"] == __version__
                    and "summary_kinds" in manifest)
    if same_version and not found.problems and len(found.decoded) == len(found.stored):
        problem = summary_problem(manifest, found.decoded,
                                  [p.duration_seconds for p in found.stored])
        if problem is not None:
            found.problems.append(problem)
