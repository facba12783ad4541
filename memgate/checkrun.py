"""The I/O around the gate: load profiles and the baseline, resolve durations, build the report.

Kept apart from :mod:`memgate.gate` (pure), :mod:`memgate.cli` (argument parsing) and
:mod:`memgate.report.emit` (writing the report) so that the GitHub Action, the CLI and tests
drive the same steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from memgate.compare import Comparison, RunInput, compare
from memgate.config import Config
from memgate.durations import DurationSources, resolve_duration
from memgate.errors import CompareError, MemgateError
from memgate.gate import evaluate
from memgate.parallel import parallel_map
from memgate.policy import (
    Policy,
    default_policy,
    load_policy,
    read_policy_bytes,
    sample_type_matches,
)
from memgate.profile.decode import decode
from memgate.profile.source import read_bytes
from memgate.progress import Progress
from memgate.quantities import dimension_of_unit
from memgate.report.build import build_report, missing_baseline_report

DEFAULT_POLICY_FILE = "memgate.yml"


def load_runs(
    specs: Sequence[str],
    config: Config,
    progress: Progress,
) -> list[tuple[str, bytes, Any]]:
    """Read and decode each profile; returns (source, bytes, Profile).

    The profiles of a side (repeated runs) are decoded in parallel threads: zlib, numpy and
    the C loops release the GIL. Results keep the order of ``specs``, and the first failing
    input (in that order) raises.
    """

    def one(spec: str) -> tuple[str, bytes, Any]:
        data, source = read_bytes(spec, config, progress)
        return _decoded(source, data, config, progress)

    return parallel_map(one, specs)


def decode_runs(items: Sequence[tuple[str, bytes]], config: Config,
                progress: Progress) -> list[tuple[str, bytes, Any]]:
    """:func:`load_runs` for bytes already read (a baseline's, read by ``Store.load``)."""
    return parallel_map(lambda item: _decoded(*item, config, progress), items)


def _decoded(source: str, data: bytes, config: Config,
             progress: Progress) -> tuple[str, bytes, Any]:
    progress.note(f"decoding {source}")
    return source, data, decode(
        data, source, config.limits, budget=config.budget,
        on_progress=lambda f: progress.fraction(f"decoding {source}", f))


def resolve_runs(
    loaded: Sequence[tuple[str, bytes, Any]],
    *,
    first: float | None,
    first_source: str,
    then: DurationSources,
    normalize: bool,
    side: str,
    stored: Sequence[float | None] | None = None,
    with_policy: bool = True,
    work: float | None = None,
    work_source: str = "none",
    gates: Callable[[str], bool] | None = None,
) -> list[RunInput]:
    """Attach a duration (and the amount of work) to every profile of a side, or fail saying
    how to give one.

    Order: ``first`` (``--duration`` for the candidate, ``--baseline-duration`` for the
    baseline), the duration recorded in the store (baseline only), the profile's own
    ``duration_nanos``, then ``then.flag`` and ``then.policy``. Only flows need one: a heap
    snapshot's in-use levels are compared as they are, and flows with a ``work`` amount are
    compared per unit of work. ``gates`` says which sample types matter (the policy's);
    default: all.
    """
    runs = []
    seen: dict[str, str] = {}
    for k, (source, data, prof) in enumerate(loaded):
        sha = hashlib.sha256(data).hexdigest()
        if sha in seen:
            # Repeated runs are averaged as independent measurements: the same profile twice
            # (a glob plus an explicit path, say) would halve the noise it really has.
            raise CompareError(
                f"the same {side} profile is given twice ({seen[sha]} and {source}); repeated "
                "runs must be separate profiles", source=source)
        seen[sha] = source
        duration, origin = resolve_duration(
            prof.duration_seconds, first=first, first_source=first_source, then=then,
            stored=stored[k] if stored is not None else None)
        if normalize and duration is None and work is None and _has_flows(prof, gates):
            hint = "--baseline-duration D or --duration D" if side == "baseline" else "--duration D"
            policy = " set the component's duration in the policy," if with_policy else ""
            raise CompareError(
                f"{side} profile has no duration to normalize its allocation flows by (heap "
                f"profiles, Go's included, record none): for a fixed amount of work pass "
                f"--work N, for a time-paced workload {hint} (e.g. --duration 10m),{policy} "
                "use a delta profile (/debug/pprof/heap?seconds=N), or compare raw values "
                "with --no-normalize",
                source=source, slug="no-duration",
            )
        runs.append(RunInput(path=source, sha256=sha, duration_seconds=duration,
                             duration_source=origin, profile=prof, work=work,
                             work_source=work_source if work is not None else "none"))
    return runs


def _has_flows(prof: Any, gates: Callable[[str], bool] | None = None) -> bool:
    """Whether a profile has (gated) memory sample types that are flows: they need a duration
    or an amount of work; in-use levels of a snapshot need neither."""
    from memgate.compare import quantity_kind

    return any(quantity_kind(st.type, bool(prof.duration_seconds)) != "level"
               and dimension_of_unit(st.unit) is not None
               and (gates is None or gates(st.type)) for st in prof.sample_types)


def _work(given: float | None, flag: str, policy: float | None) -> tuple[float | None, str]:
    if given is not None:
        return given, flag
    if policy is not None:
        return policy, "policy"
    return None, "none"


def _profiler_levels(runs: Sequence[RunInput], stored: bool = False) -> list[RunInput]:
    """Runs from a continuous profiler hold in-use levels, not growth, though their range is
    their duration (docs/production-baselines.md: use a range of one collection interval)."""
    if stored or _from_profiler(runs):
        return [replace(r, in_use_levels=True) for r in runs]
    return list(runs)


def _from_profiler(runs: Sequence[RunInput]) -> bool:
    from memgate.profile.profilers import KINDS

    return bool(runs) and all(r.path.startswith(tuple(f"{k}+" for k in KINDS)) for r in runs)


def common_sample_types(
    baseline: Sequence[RunInput], candidate: Sequence[RunInput], stored_from_profiler: bool = False,
) -> tuple[list[RunInput], list[RunInput], list[str]]:
    """Compare only the sample types a continuous profiler's profile has.

    Pyroscope and Parca answer a query with one sample type (``memory:inuse_space:...``
    gives inuse_space only), while a Go heap profile from CI has four. When one side comes
    from a profiler (a pyroscope+/parca+ URL, or a stored baseline made from one) and its
    types are a subset of the other side's, the other side is narrowed to them, with a
    warning; anything else is left for :func:`memgate.compare.check_compatible` to refuse.
    """
    if not baseline or not candidate:
        return list(baseline), list(candidate), []
    btypes = baseline[0].profile.sample_types
    ctypes = candidate[0].profile.sample_types
    if btypes == ctypes:
        return list(baseline), list(candidate), []
    sides = [(list(baseline), btypes, stored_from_profiler or _from_profiler(baseline)),
             (list(candidate), ctypes, _from_profiler(candidate))]
    for narrow, wide in ((0, 1), (1, 0)):
        runs, types, profiler = sides[narrow]
        other, other_types, _ = sides[wide]
        if not profiler or not set(types) < set(other_types) or \
                any(r.profile.sample_types != other_types for r in other):
            continue
        idx = [other_types.index(t) for t in types]
        narrowed = [replace(r, profile=_project(r.profile, idx)) for r in other]
        names = ", ".join(str(t) for t in types)
        note = (f"compared {names} only: {runs[0].path} comes from a continuous profiler, "
                f"which returns that sample type alone; the other sample types of "
                f"{other[0].path} are left out")
        pair = (runs, narrowed) if narrow == 0 else (narrowed, runs)
        return pair[0], pair[1], [note]
    return list(baseline), list(candidate), []


def _project(prof: Any, idx: list[int]) -> Any:
    """``prof`` with only the sample types ``idx`` (in that order)."""
    types = tuple(prof.sample_types[i] for i in idx)
    samples = replace(prof.samples, values=prof.samples.values[:, idx])
    default = prof.default_sample_type if any(t.type == prof.default_sample_type
                                              for t in types) else ""
    return replace(prof, sample_types=types, samples=samples, default_sample_type=default)


def duration_warnings(baseline: Sequence[RunInput], candidate: Sequence[RunInput]) -> list[str]:
    """Say so when a given duration overrides a different one the profile records itself.

    A delta profile knows how long it covers; ``--duration 1m`` on a 7-minute delta profile
    makes its rates seven times too high, which is almost always a mistake in the workflow.
    And when ``--duration`` overrides the candidates' own durations while the baselines keep
    theirs, the two sides are measured differently: say how to give both.
    """
    out = []
    overridden = [r for r in candidate if r.duration_source == "--duration"
                  and r.profile.duration_seconds and r.duration_seconds
                  and abs(r.duration_seconds - r.profile.duration_seconds)
                  > 0.01 * r.profile.duration_seconds]
    if overridden and any(r.duration_source == "profile" for r in baseline):
        out.append("--duration applies to the candidate; the baseline keeps the duration its "
                   "profile records (add --baseline-duration to override it too)")
    for r in [*baseline, *candidate]:
        own = r.profile.duration_seconds
        used = r.duration_seconds
        if own and used and r.duration_source != "profile" and abs(used - own) > 0.01 * own:
            out.append(
                f"{r.path}: the duration from {r.duration_source} ({used:g}s) is used instead "
                f"of the {own:g}s the profile records"
            )
        if used and used < _TOO_SHORT_SECONDS:
            out.append(
                f"{r.path}: a duration of {used:g}s ({r.duration_source}) is implausibly "
                "short for a profile: rates and absolute limits are per second of it"
            )
        if used and used > _IMPLAUSIBLE_SECONDS:
            fix = ("a timestamp written as a duration? give --duration"
                   if r.duration_source == "profile" else f"check {r.duration_source}")
            out.append(
                f"{r.path}: a duration of {used / 86400:,.0f} days ({r.duration_source}) is "
                f"implausible ({fix})"
            )
    return out


def unsymbolized_warnings(runs: Sequence[RunInput]) -> list[str]:
    """Say so when a profile has no function names: its "functions" are addresses (or, for a
    legacy text heap profile, pprof's single ``<unknown>``), so per-function limits compare
    those, not code."""
    out = []
    for r in runs:
        if not any(f.name for f in r.profile.functions):
            out.append(f"{r.path}: the profile has no function names (unsymbolized), so rules "
                       "compare addresses, not functions; save it symbolized (a Go service's "
                       "/debug/pprof/heap is; `go tool pprof -proto` symbolizes others)")
    return out


#: Sample types of Go heap profiles and of pprof's two-column heap profiles: a policy may
#: name them for profiles that lack some (an inuse-only legacy profile) without a warning.
_WELL_KNOWN_TYPES = frozenset({"inuse_space", "inuse_objects", "alloc_space", "alloc_objects",
                               "space", "objects"})


def unknown_sample_type_warnings(comparison: Comparison, policy: Policy) -> list[str]:
    """Say so when the policy names a sample type the profiles do not have.

    A misspelt ``inuse_objcts`` in a list that also names ``inuse_space`` would otherwise
    quietly stop gating object counts. Well-known heap types missing from a profile (a
    two-column profile has no alloc_*) are not reported.
    """
    import difflib

    have = [st.type for st in comparison.sample_types]
    out = []
    for name in policy.gated_sample_types():
        if name in _WELL_KNOWN_TYPES or any(sample_type_matches(name, h) for h in have):
            continue
        close = difflib.get_close_matches(name, have, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        out.append(f"{policy.source}: the policy gates sample type {name}, which the profiles "
                   f"do not have{hint}; they have {', '.join(have)}")
    return out


#: Shorter than a millisecond: a unit slip (``--duration 0.0001s``, nanoseconds read as
#: seconds) that turns every rate into an alarm.
_TOO_SHORT_SECONDS = 1e-3
#: Longer than a year: some converters write a timestamp into duration_nanos.
_IMPLAUSIBLE_SECONDS = 366 * 86400.0


def find_policy(path: str | None) -> tuple[Policy, str | None]:
    """``--policy FILE``, else ./memgate.yml if present, else the built-in default."""
    if path is None and Path(DEFAULT_POLICY_FILE).is_file():
        path = DEFAULT_POLICY_FILE
    if path is None:
        return default_policy(), None
    pol = load_policy(path)
    try:
        digest = hashlib.sha256(read_policy_bytes(path)).hexdigest()
    except MemgateError:
        digest = None
    return pol, digest


def policy_for(policy: Policy, component: str | None) -> Policy:
    """The component's view of the policy; a component the policy does not name gets the
    global rules (most policies have no per-component section)."""
    if component is not None and component in policy.components:
        return policy.for_component(component)
    return policy


@dataclass(frozen=True)
class CheckOptions:
    candidate: Sequence[str]
    component: str | None = None
    baselines: str = "baselines"
    #: The pointer files of a remote ``baselines`` store (memgate.baseline.remote).
    pointers: str = "baselines"
    baseline_files: Sequence[str] = ()
    policy: str | None = None
    duration: float | None = None
    baseline_duration: float | None = None
    normalize: bool = True
    allow_missing_baseline: bool = False
    #: Units of work of each candidate run (fixed-work workloads), and of each baseline run.
    work: float | None = None
    baseline_work: float | None = None


@dataclass(frozen=True)
class RunResult:
    """A report with the profiles it was computed from.

    The report dict is enough for text, markdown and JSON; the HTML flame graph and the diff
    profile need the stacks, which only the decoded profiles have.
    """

    report: dict[str, Any]
    baseline: tuple[RunInput, ...]
    candidate: tuple[RunInput, ...]
    normalized: bool
    #: The comparison the report was built from (None: no baseline to compare with).
    comparison: Comparison | None = None


def run_check_full(opts: CheckOptions, config: Config, progress: Progress) -> RunResult:
    """Everything ``memgate check`` (and the GitHub Action) does before rendering: the report
    and the decoded profiles of both sides."""
    policy_all, policy_sha = find_policy(opts.policy)
    policy = policy_for(policy_all, opts.component)
    notes = _component_notes(policy_all, opts.component)
    gated_names = policy.gated_sample_types()

    def gates(sample_type: str) -> bool:
        return any(sample_type_matches(n, sample_type) for n in gated_names)

    (cwork, cwork_src), (bwork, bwork_src) = _works(opts, policy)

    def load_candidates() -> list[RunInput]:
        return resolve_runs(
            load_runs(opts.candidate, config, progress),
            first=opts.duration,
            first_source="--duration",
            then=DurationSources(policy=policy.duration_seconds),
            normalize=opts.normalize,
            side="candidate",
            work=cwork,
            work_source=cwork_src,
            gates=gates,
        )

    stored = _StoredBaseline()
    if not opts.baseline_files:
        found = _stored_baseline(opts, config)
        if isinstance(found, str):  # no baseline, and --allow-missing-baseline
            candidate = load_candidates()
            return RunResult(missing_baseline_report(opts.component, candidate, policy, found),
                             (), tuple(candidate), opts.normalize)
        stored = found
    # One side after the other: each profile already decodes on all cores, and decoding both
    # sides at once would add their peaks (1M samples: 1.1 GiB instead of 0.7, for 9% time).
    candidate = load_candidates()
    base_loaded = (load_runs(opts.baseline_files, config, progress)
                   if opts.baseline_files else decode_runs(stored.blobs, config, progress))
    base_runs = resolve_runs(
        base_loaded,
        first=opts.baseline_duration,
        first_source="--baseline-duration",
        then=DurationSources(flag=opts.duration, policy=policy.duration_seconds),
        normalize=opts.normalize,
        side="baseline",
        stored=stored.durations,
        work=bwork,
        work_source=bwork_src,
        gates=gates,
    )
    progress.note("comparing")
    base_runs, candidate, common = common_sample_types(base_runs, candidate,
                                                       stored.from_profiler)
    base_runs = _profiler_levels(base_runs, stored.from_profiler)
    candidate = _profiler_levels(candidate)
    comparison = compare(base_runs, candidate, normalized=opts.normalize)
    result = evaluate(comparison, policy)
    warnings = duration_warnings(base_runs, candidate) if opts.normalize else []
    warnings += common
    warnings += list(result.warnings) + unknown_sample_type_warnings(comparison, policy)
    warnings += unsymbolized_warnings([*base_runs, *candidate])
    report = build_report(comparison, result, component=opts.component, policy=policy,
                          policy_sha256=policy_sha, warnings=warnings,
                          confidence=policy.defaults.confidence, notes=notes)
    progress.done()
    return RunResult(report, tuple(base_runs), tuple(candidate), opts.normalize, comparison)


def _component_notes(policy: Policy, component: str | None) -> list[str]:
    """A note when the policy has components but not this one.

    Most likely a typo, or a component that needs no overrides: a note, which leaves the
    verdict alone (a WARN headline over "0 failing, 0 warning" reads as a problem).
    """
    if component is None or not policy.components or component in policy.components:
        return []
    return [f"{policy.source}: the policy defines no component {component} (it defines "
            f"{', '.join(sorted(policy.components))}); its global rules apply"]


def _works(opts: CheckOptions, policy: Policy) -> tuple[tuple[float | None, str],
                                                         tuple[float | None, str]]:
    """The units of work of each candidate run and of each baseline run, with their sources."""
    cwork = _work(opts.work, "--work", policy.work)
    bwork = _work(opts.baseline_work, "--baseline-work", policy.work)
    if bwork[0] is None and cwork[0] is not None:
        # The same workload on both sides unless said otherwise, as with --duration.
        bwork = cwork
    return cwork, bwork


@dataclass(frozen=True)
class _StoredBaseline:
    """What the check needs of a stored baseline: its profiles' bytes as ``Store.load`` read
    and checksummed them, the durations it recorded, and whether a profiler made it."""

    blobs: Sequence[tuple[str, bytes]] = ()
    durations: Sequence[float | None] | None = None
    from_profiler: bool = False


def _stored_baseline(opts: CheckOptions, config: Config) -> _StoredBaseline | str:
    """The component's baseline from the store; when there is none, the message saying so
    (returned with ``--allow-missing-baseline``, raised otherwise)."""
    if opts.component is None:
        raise MemgateError(
            "give --component NAME (to read baselines/NAME) or --baseline PROFILE", slug="usage"
        )
    from memgate.baseline.remote import open_store

    store = open_store(opts.baselines, opts.pointers, config)
    if not store.exists(opts.component):
        msg = _missing_baseline_message(store, opts.component, opts.baselines)
        if opts.allow_missing_baseline:
            return msg
        from memgate.errors import BaselineError

        raise BaselineError(msg, source=getattr(store, "shown", opts.baselines),
                            slug="baseline-missing")
    # The bytes Store.load read and checksummed: one version of the baseline, even if an
    # update replaces it while the candidates are read (a delta URL can take minutes).
    baseline = store.load(opts.component)
    entries = baseline.manifest.get("profiles")
    return _StoredBaseline(
        blobs=[(p.url or str(p.path), d) for p, d in zip(baseline.profiles, baseline.data)],
        durations=[p.duration_seconds for p in baseline.profiles],
        from_profiler=isinstance(entries, list) and any(
            isinstance(e, dict) and "source" in e for e in entries))


def _missing_baseline_message(store: Any, component: str, baselines: str) -> str:
    """How to create the missing baseline of ``component``."""
    if not hasattr(store, "pointer_path"):
        return (f"no baseline for component {component!r} in {baselines} (create one with "
                f"`memgate baseline update --component {component} PROFILE... --reason TEXT`)")
    # A remote store: what is missing is the pointer file in the repository.
    shown = getattr(store, "shown", baselines)
    return (f"no baseline for component {component!r} in {shown}: no pointer file "
            f"{store.pointer_path(component)} (create one with `memgate baseline update "
            f"--component {component} --baselines {shown} PROFILE... --reason TEXT` and "
            "commit it)")


def run_diff(
    base: Sequence[str],
    new: Sequence[str],
    *,
    duration: float | None,
    baseline_duration: float | None,
    normalize: bool,
    config: Config,
    progress: Progress,
) -> RunResult:
    """``memgate diff``: the per-function deltas with no policy and no verdict, and the
    decoded profiles of both sides (for the HTML and the diff profile)."""
    # One side after the other, as in run_check_full (peak memory).
    b = load_runs(base, config, progress)
    c = load_runs(new, config, progress)
    cand = resolve_runs(
        c,
        first=duration,
        first_source="--duration",
        then=DurationSources(),
        normalize=normalize,
        side="candidate",
        with_policy=False,
    )
    base_runs = resolve_runs(
        b,
        first=baseline_duration,
        first_source="--baseline-duration",
        then=DurationSources(flag=duration),
        normalize=normalize,
        side="baseline",
        with_policy=False,
    )
    base_runs, cand, common = common_sample_types(base_runs, cand)
    base_runs, cand = _profiler_levels(base_runs), _profiler_levels(cand)
    comparison = compare(base_runs, cand, normalized=normalize, strict_kinds=False)
    warnings = duration_warnings(base_runs, cand) if normalize else []
    warnings += comparison.notes
    warnings += common
    types = comparison.sample_types
    skipped = [st for st in types if dimension_of_unit(st.unit) is None]
    if skipped and len(skipped) < len(types):
        names = ", ".join(f"{st.type} ({st.unit})" for st in skipped)
        warnings.append(f"not compared: {names}; memgate compares memory sample types "
                        "(bytes and counts)")
    report = build_report(comparison, None, component=None, policy=None, warnings=warnings)
    return RunResult(report, tuple(base_runs), tuple(cand), normalize, comparison)

