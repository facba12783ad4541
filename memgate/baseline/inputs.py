"""Profiles on their way into a baseline: named, checked, decoded, their durations resolved.

``update`` (files and URLs) and ``accept`` (a check report's candidates) both end in
:func:`prepare`, so that what a baseline records about a profile does not depend on the
command that stored it.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from memgate.baseline.manifest import describe_types, types_of
from memgate.baseline.model import Baseline, ProfileInput
from memgate.config import Config
from memgate.durations import DurationSources, resolve_duration
from memgate.errors import BaselineError
from memgate.profile.decode import decode
from memgate.profile.model import Profile
from memgate.profile.sniff import GZIP_MAGIC
from memgate.profile.source import read_bytes


@dataclass(frozen=True)
class Prepared:
    """A profile ready to store: the bytes as stored, their sha256, and what was decoded."""

    stored: bytes
    sha256: str
    input: ProfileInput
    profile: Profile
    #: The resolved duration (:func:`memgate.durations.resolve_duration`); None: none known.
    duration: float | None


def read_inputs(profiles: Sequence[str | Path], config: Config,
                duration_seconds: float | None) -> list[ProfileInput]:
    """The profiles ``update`` names (files, URLs, ``-``), read."""
    inputs: list[ProfileInput] = []
    for spec in profiles:
        data, source = read_bytes(str(spec), config)
        inputs.append(ProfileInput(data=data, source=source,
                                   original_name=original_name(str(spec)),
                                   duration_seconds=duration_seconds,
                                   origin=origin_of(source)))
    return inputs


def prepare(inputs: Sequence[ProfileInput], config: Config,
            policy_duration_seconds: float | None) -> list[Prepared]:
    """Decode and check every input: a positive duration if one is given, no profile twice,
    all runs of one workload (:func:`require_same_kind`). Sorted by content, so that the
    manifest does not depend on the order of the arguments."""
    if not inputs:
        raise BaselineError("no profiles given", slug="usage")
    prepared: list[Prepared] = []
    by_sha: dict[str, str] = {}
    for inp in inputs:
        if inp.duration_seconds is not None and not (
                math.isfinite(inp.duration_seconds) and inp.duration_seconds > 0):
            raise BaselineError(f"duration must be positive, got {inp.duration_seconds}",
                                source=inp.source, slug="usage")
        prof = decode(inp.data, inp.source, config.limits, budget=config.budget)
        stored = storable(inp.data)
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
        prepared.append(Prepared(stored, sha, inp, prof, None if dur is None else float(dur)))
    first = prepared[0].profile
    for p in prepared[1:]:
        require_same_kind(first, p.profile, p.input.source)
    prepared.sort(key=lambda p: p.sha256)
    return prepared


def original_name(spec: str) -> str:
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


def origin_of(source: str) -> dict[str, object] | None:
    """The manifest's ``source`` of a profile read from a profiler URL (``source`` is then the
    URL with its range made absolute, as :func:`read_bytes` returns it); None otherwise."""
    if "://" not in source:
        return None
    from memgate.profile.profilers import is_profiler_url, parse

    return parse(source).describe() if is_profiler_url(source) else None


def storable(data: bytes) -> bytes:
    """The bytes to store: gzip as given, anything else gzipped deterministically (mtime 0).

    The decoder sniffs content, so a gzipped raw protobuf or legacy text profile still decodes.
    """
    if data[:2] == GZIP_MAGIC:
        return data
    return gzip.compress(data, compresslevel=9, mtime=0)


def check_reason(reason: str) -> str:
    """The reason, stripped; refused when there is none (every change of a baseline says why)."""
    if not isinstance(reason, str) or not reason.strip():
        raise BaselineError("a reason is required: say why the baseline changes (--reason)",
                            slug="usage")
    return reason.strip()


def require_same_kind(first: Profile, other: Profile, source: str) -> None:
    """All profiles of one baseline are repeated runs of one workload: same types and period."""
    if types_of(other) != types_of(first):
        raise BaselineError(
            f"the profiles of one baseline must be runs of the same workload: {first.source} "
            f"has sample types [{describe_types(types_of(first))}], this one "
            f"[{describe_types(types_of(other))}]", source=source, slug="incompatible")
    if (other.period_type, other.period) != (first.period_type, first.period):
        raise BaselineError(
            f"the profiles of one baseline must be runs of the same workload: {first.source} "
            f"is sampled every {first.period} {first.period_type.unit or 'units'}, this one "
            f"every {other.period} {other.period_type.unit or 'units'}", source=source,
            slug="incompatible")


def check_replaces(component: str, old: Baseline, first: Profile, source: str, *, force: bool,
                   checked_against: frozenset[str] | None, report: str | None,
                   runs: int | None, main: str) -> None:
    """Refuse to replace ``old`` (unless ``force``) with profiles that do not fit it (other
    sample types or sampling period), from a report checked against another baseline
    (``checked_against``), or with fewer repeated runs (``runs``: the number of new
    profiles)."""
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
        new_types = types_of(first)
        if new_types != ref.sample_types:
            raise BaselineError(
                f"incompatible with the existing baseline of {component}: it has sample "
                f"types [{describe_types(ref.sample_types)}], the profile has "
                f"[{describe_types(new_types)}] (use --force to replace the baseline anyway)",
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
