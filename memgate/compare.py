"""Baseline versus candidate: per-function values and deltas for every sample type.

A side is one or more profiles of the same workload (repeated runs), averaged. What a value
means depends on the kind of quantity (:func:`quantity_kind`):

* a **level** (``inuse_*`` of a heap snapshot: what is live when the profile was written) is
  compared as it is, in bytes or objects: dividing it by a duration would make a 15 s and a
  60 s run of the same build differ four times;
* a **flow** (``alloc_*``, CPU, contentions, delay: anything cumulative) is normalized by the
  amount of workload behind it: per second of duration (time-paced workloads, production and
  delta profiles), per unit of work (``--work N``: fixed-work workloads, B/op as
  ``go test -benchmem`` prints), or per run;
* **growth** (``inuse_*`` of a delta profile, which carries its own duration) is the change of
  the level over the profile's window: a rate of retention, per second of that window.

A fixed-work run divided by its wall-clock time measures the runner, not the program: when the
per-run totals of the flows agree while the durations differ widely, :func:`compare` says so and
compares per run (:data:`FIXED_WORK_NOTE`).

The comparison is a plain value: arrays aligned on one list of function names, built first;
the gate and the reports only read it. The arithmetic (unit scale, what each run and type is
divided by) is :mod:`memgate.rates`'s, shared with the flame graph and the baseline manifest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from memgate.errors import CompareError
from memgate.parallel import parallel_map
from memgate.profile.model import Profile, ValueType, describe_types, type_mismatch
from memgate.quantities import dimension_of_unit
from memgate.rates import Basis, QuantityKind, base_divisors, unit_scales, value_scale
from memgate.rates import divisors as rate_divisors
from memgate.stats import sampling_variance
from memgate.table import Table, aggregate

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class RunInput:
    """One profile of a side, with the duration it is normalized by and where that came from."""

    path: str
    sha256: str
    duration_seconds: float | None
    duration_source: str
    profile: Profile = field(repr=False, compare=False)
    #: Units of work the run did (``--work``, the policy's ``work``); None: not given.
    work: float | None = None
    work_source: str = "none"
    #: Its in-use values are levels although it has a duration: a continuous profiler's
    #: merged profile over a range (Pyroscope, Parca) holds what was in use, not growth.
    in_use_levels: bool = False


@dataclass(frozen=True, eq=False)
class SideRates:
    """Per-run and mean rates of one side, aligned to :attr:`Comparison.names`."""

    runs: tuple[RunInput, ...]
    #: (k, n, T) per-run rates.
    flat_runs: F64
    cum_runs: F64
    #: (k, T) per-run totals.
    total_runs: F64
    #: (n, T) sampling variance of the mean rate; None where no sampling model applies.
    flat_var: F64 | None
    cum_var: F64 | None
    total_var: F64 | None
    #: (k, T) what each run's values of each type were divided by (duration, work, 1), in
    #: the profile's own units; None when the rates were given, not computed.
    divisors: F64 | None = None
    #: For the allocation flows of heap snapshots: the part of each function's allocation
    #: that is still in use (its in-use level, in the flow's units), (n, T) and (T,); zero
    #: elsewhere. The gate judges flows on what was freed (allocated minus still held): what
    #: is held is the in-use level, judged as a level, and a process's one-time setup (a
    #: buffer allocated at start and kept) must not become a rate that depends on how long
    #: the run was.
    held_flat: F64 | None = None
    held_cum: F64 | None = None
    held_total: F64 | None = None

    def freed(self, metric: str) -> F64:
        """Per-function values minus what is still held (see ``held_flat``)."""
        held = self.held_flat if metric == "flat" else self.held_cum
        values = self.metric(metric)
        return values if held is None else np.asarray(values - held)

    def freed_total(self) -> F64:
        return self.total if self.held_total is None else np.asarray(self.total - self.held_total)

    # Cached: the gate reads one element per crossing, and must not average all runs each time.
    @cached_property
    def flat(self) -> F64:
        return np.asarray(self.flat_runs.mean(axis=0))

    @cached_property
    def cum(self) -> F64:
        return np.asarray(self.cum_runs.mean(axis=0))

    @cached_property
    def total(self) -> F64:
        return np.asarray(self.total_runs.mean(axis=0))

    @cached_property
    def _mean_var(self) -> dict[str, F64 | None]:
        return {
            "flat": _mean_variance(self.flat_var, self.flat_runs),
            "cum": _mean_variance(self.cum_var, self.cum_runs),
            "total": _mean_variance(self.total_var, self.total_runs),
        }

    def mean_variance(self, metric: str) -> F64 | None:
        """Variance of the mean rate per function (or of the total, ``metric="total"``).

        The sampling model's, or the run-to-run spread of the per-run rates divided by the
        number of runs where that is larger (it includes the sampling noise and the workload's
        own jitter); None when there is neither a model nor two runs. The gate's tests and the
        reports' intervals both use this one number.
        """
        return self._mean_var[metric]

    def metric(self, metric: str) -> F64:
        return self.flat if metric == "flat" else self.cum

    def metric_runs(self, metric: str) -> F64:
        return self.flat_runs if metric == "flat" else self.cum_runs


#: The sampling model's variance is multiplied by this. Measured on 40 real Go runs, the
#: run-to-run variance of single functions was 0.75-1.6 times the model's (objects of mixed
#: sizes in one bucket, workload jitter); with 1.3 a function whose real spread is 1.6 times
#: the model's no longer fails a no-change comparison at the gate's confidence, for a
#: detection floor up to 30% higher.
MODEL_CALIBRATION = 1.3

#: Sample types that hold what is live (in use) when the profile is written: Go's inuse_*,
#: the two columns of legacy and Node.js heap profiles, and Go's goroutine profile (the
#: goroutines that exist now; threadcreate, by contrast, counts every thread ever created).
LEVEL_TYPES = frozenset({"inuse_space", "inuse_objects", "space", "objects", "goroutine"})

#: Durations that differ by more than this factor, with per-run flow totals within
#: FIXED_WORK_TOTALS of each other and closer than the per-second rates are, mark a fixed-work
#: workload timed on runners of different speed (measured here: the same work took 50-70%
#: longer from run to run on a shared runner).
FIXED_WORK_DURATIONS = 1.10
FIXED_WORK_TOTALS = 0.10


def quantity_kind(sample_type: str, own_duration: bool) -> QuantityKind:
    """Level, flow or growth (module docstring): in-use types are levels in a snapshot and
    growth in a delta profile (one with its own ``duration_nanos``); the rest are flows."""
    if sample_type in LEVEL_TYPES:
        return "growth" if own_duration else "level"
    return "flow"


@dataclass(frozen=True, eq=False)
class Comparison:
    names: tuple[str, ...]
    sample_types: tuple[ValueType, ...]
    normalized: bool
    baseline: SideRates
    candidate: SideRates
    period: int
    period_type: ValueType
    #: Per sample type: level, flow or growth.
    quantities: tuple[QuantityKind, ...] = ()
    #: What flows are divided by: a second of duration, a unit of work, or a run.
    basis: Basis = "second"
    #: Seconds of the baseline's workload per basis unit (a second: 1; a run: its mean
    #: duration; an op: duration / work), so that rate limits ("1MiB/min") apply to flows
    #: compared per run or per op; None when the baseline's duration is not known.
    scale: float | None = 1.0
    #: Things the comparison decided that a user must be told (fixed-work detection).
    notes: tuple[str, ...] = ()

    def quantity(self, t: int) -> QuantityKind:
        return self.quantities[t] if self.quantities else "flow"

    def per(self, t: int) -> str:
        """The denominator of sample type ``t``'s values: "" for a level, "s" per second,
        "op", "run", or "profile" for raw values (``--no-normalize``)."""
        q = self.quantity(t)
        if q == "level":
            return ""
        if not self.normalized:
            return "profile"
        if q == "growth":
            return "s"
        return {"second": "s", "op": "op", "run": "run"}[self.basis]


def _mean_variance(model: F64 | None, runs: F64) -> F64 | None:
    k = runs.shape[0]
    if k < 2:
        return model
    empirical = np.var(runs, axis=0, ddof=1) / k
    return np.asarray(empirical if model is None else np.maximum(model, empirical))


def check_compatible(profiles: Sequence[Profile]) -> None:
    """All profiles must share sample types (name and unit, in order) and sampling period."""
    first = profiles[0]
    mismatch = type_mismatch(profiles)
    if mismatch is not None:
        raise CompareError(
            f"incompatible profiles: {first.source} has sample types [{describe_types(first)}] "
            f"but {mismatch.source} has [{describe_types(mismatch)}]", source=mismatch.source)
    for other in profiles[1:]:
        if other.period_type != first.period_type or other.period != first.period:
            raise CompareError(
                f"incompatible profiles: {first.source} is sampled every {first.period} "
                f"{first.period_type.unit or 'units'} but {other.source} every {other.period} "
                f"{other.period_type.unit or 'units'} (different sampling periods are not "
                "comparable)",
                source=other.source,
            )


def _name_index(tables: Sequence[Table]) -> dict[str, int]:
    """Every function name of the tables, numbered in order of first appearance."""
    index: dict[str, int] = {}
    for t in tables:
        for nm in t.names:
            index.setdefault(nm, len(index))
    return index


def side_divisors(runs: Sequence[RunInput], kinds: Sequence[QuantityKind],
                  basis: Basis = "second", normalized: bool = True) -> F64:
    """What each run's values of each type are divided by (:func:`memgate.rates.divisors`),
    from the runs' own durations, profile durations and work."""
    return rate_divisors(kinds, basis, durations=[r.duration_seconds for r in runs],
                         own_durations=[r.profile.duration_seconds for r in runs],
                         works=[r.work for r in runs], normalized=normalized)


def one_side(runs: Sequence[RunInput], tables: Sequence[Table],
             kinds: Sequence[QuantityKind], normalized: bool = True
             ) -> tuple[tuple[str, ...], SideRates]:
    """One side's function names and values per second as the gate computes them (levels as
    levels), without another side to compare with: the baseline manifest's summary."""
    index = _name_index(tables)
    div = side_divisors(runs, kinds, "second", normalized)
    return tuple(index), _side(runs, tables, index, len(index), div)


def _side(
    runs: Sequence[RunInput],
    tables: Sequence[Table],
    index: dict[str, int],
    n: int,
    divisors: F64,
) -> SideRates:
    k = len(runs)
    nt = len(tables[0].sample_types)
    flat = np.zeros((k, n, nt), dtype=np.float64)
    cum = np.zeros((k, n, nt), dtype=np.float64)
    total = np.zeros((k, nt), dtype=np.float64)
    fvar = np.zeros((n, nt), dtype=np.float64)
    cvar = np.zeros((n, nt), dtype=np.float64)
    tvar = np.zeros(nt, dtype=np.float64)
    have_var = True
    # Values in kilobytes (or other scaled units) become bytes, so limits compare in base units.
    unit = unit_scales(tables[0].sample_types)
    for r, (_run, table) in enumerate(zip(runs, tables)):
        divisor = base_divisors(divisors[r], unit)
        rows = np.fromiter(
            (index[nm] for nm in table.names), dtype=np.int64, count=len(table.names)
        )
        flat[r, rows] = table.flat / divisor
        cum[r, rows] = table.cum / divisor
        total[r] = table.total / divisor
        if table.flat_extra is None or table.cum_extra is None:
            have_var = False
            continue
        # Variance of a mean of k independent runs: sum of variances / k^2; the sampling
        # model's variance taken MODEL_CALIBRATION times (docs/noise.md).
        scale = MODEL_CALIBRATION / (divisor * divisor * k * k)
        fvar[rows] += table.flat_extra * scale
        cvar[rows] += table.cum_extra * scale
        tvar += table.flat_extra.sum(axis=0) * scale
    return SideRates(
        runs=tuple(runs),
        flat_runs=flat,
        cum_runs=cum,
        total_runs=total,
        flat_var=fvar if have_var else None,
        cum_var=cvar if have_var else None,
        total_var=tvar if have_var else None,
        divisors=divisors,
    )


def aggregate_run(prof: Profile) -> Table:
    """Function-granularity table of one profile, with its sampling variances."""
    return aggregate(prof, "functions", extra=sampling_variance(prof))


FIXED_WORK_NOTE = (
    "the workload looks fixed-work: per-run totals agree ({totals}) while the durations "
    "differ {ratio:.2f}x ({bdur} vs {cdur}); dividing by wall-clock time would measure the "
    "runner, so flows are compared per run (limits scaled to the baseline's {bdur}). Say so "
    "with --work N (or the policy's components.<name>.work), or give equal nominal durations"
)


#: A profile whose comments hold this is a snapshot whatever its duration: its in-use values
#: are what was live when it was written (memgate capture and the pytest plugin record the
#: run's wall time as the duration).
SNAPSHOT_COMMENT = "memgate: in-use values are a snapshot (a level), not growth over the duration"


def _own(run: RunInput) -> bool:
    """Whether the run's in-use values are growth over its own duration (a delta profile)."""
    return (bool(run.profile.duration_seconds) and not run.in_use_levels
            and SNAPSHOT_COMMENT not in run.profile.comments)


def quantity_kinds(runs: Sequence[RunInput], strict: bool = True) -> tuple[QuantityKind, ...]:
    """Every profile's quantity kinds must agree: a snapshot's in-use levels and a delta
    profile's in-use growth are different quantities. Not ``strict`` (``diff``, which only
    describes): in-use values are then compared as levels on both sides."""
    first = runs[0]
    sources = [r.path for r in runs]
    kinds = tuple(quantity_kind(st.type, _own(first)) for st in first.profile.sample_types)
    for run, src in zip(runs[1:], sources[1:]):
        other = tuple(quantity_kind(st.type, _own(run)) for st in run.profile.sample_types)
        if other != kinds and not strict:
            return tuple("level" if k == "growth" else k for k in kinds)
        if other != kinds:
            snap, delta = (sources[0], src) if not _own(first) else (src, sources[0])
            raise CompareError(
                f"cannot compare a heap snapshot ({snap}) with a delta profile ({delta}): the "
                "in-use values of a delta profile (with its own duration) are growth over its "
                "window, those of a snapshot what is live; profile both sides the same way",
                source=src)
    return kinds


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _fixed_work(
    baseline: Sequence[RunInput], candidate: Sequence[RunInput],
    btables: Sequence[Table], ctables: Sequence[Table], kinds: Sequence[QuantityKind],
) -> str | None:
    """The note to give when the durations differ widely but the per-run flow totals agree
    (a fixed-work workload on runners of different speed); None otherwise."""
    bdur = _mean([r.duration_seconds or 0.0 for r in baseline])
    cdur = _mean([r.duration_seconds or 0.0 for r in candidate])
    flows = [t for t, k in enumerate(kinds) if k == "flow"
             and dimension_of_unit(btables[0].sample_types[t].unit) is not None]
    if not flows or bdur <= 0 or cdur <= 0:
        return None
    ratio = max(bdur, cdur) / min(bdur, cdur)
    if ratio <= FIXED_WORK_DURATIONS:
        return None
    parts = []
    for t in flows:
        b = _mean([float(tb.total[t]) for tb in btables])
        c = _mean([float(tc.total[t]) for tc in ctables])
        if b <= 0 or c <= 0 or abs(c / b - 1) > FIXED_WORK_TOTALS:
            return None
        # Per run the totals must agree better than per second (a time-paced workload's do
        # the other way round).
        if abs(math.log(c / b)) >= abs(math.log((c / cdur) / (b / bdur))):
            return None
        parts.append(f"{btables[0].sample_types[t].type} {(c / b - 1) * 100:+.1f}%")
    return FIXED_WORK_NOTE.format(totals=", ".join(parts), ratio=ratio,
                                  bdur=f"{bdur:.3g}s", cdur=f"{cdur:.3g}s")


#: Allocation flows and the in-use levels that hold part of what they allocated.
HELD_PAIRS = {"alloc_space": "inuse_space", "alloc_objects": "inuse_objects"}


def _held_pairs(prof: Profile, kinds: Sequence[QuantityKind]) -> dict[int, int]:
    """Flow column -> level column, for snapshots that have both."""
    types = [st.type for st in prof.sample_types]
    out = {}
    for flow, level in HELD_PAIRS.items():
        if flow in types and level in types:
            f, lv = types.index(flow), types.index(level)
            if kinds[f] == "flow" and kinds[lv] == "level":
                out[f] = lv
    return out


def _held(tables: Sequence[Table], index: dict[str, int], n: int, divisors: F64,
          pairs: dict[int, int]) -> tuple[F64, F64, F64]:
    k = len(tables)
    nt = divisors.shape[1]
    flat = np.zeros((n, nt))
    cum = np.zeros((n, nt))
    total = np.zeros(nt)
    for r, table in enumerate(tables):
        rows = np.fromiter((index[nm] for nm in table.names), dtype=np.int64,
                           count=len(table.names))
        for f, lv in pairs.items():
            scale = value_scale(table.sample_types[lv].unit) / (divisors[r, f] * k)
            flat[rows, f] += table.flat[:, lv] * scale
            cum[rows, f] += table.cum[:, lv] * scale
            total[f] += float(table.total[lv]) * scale
    return flat, cum, total


def compare(baseline: Sequence[RunInput], candidate: Sequence[RunInput], *,
            normalized: bool = True, detect_fixed_work: bool = True,
            strict_kinds: bool = True) -> Comparison:
    """Align both sides on one function list and compute per-run and mean values.

    Flows are divided per unit of work when every run has one (``--work``), else per second
    of duration, else (``normalized=False``) taken per profile. Levels are never divided;
    growth is divided by the delta profile's own duration.
    """
    if not baseline or not candidate:
        raise CompareError("both sides need at least one profile")
    runs = (*baseline, *candidate)
    profiles = [r.profile for r in runs]
    check_compatible(profiles)
    kinds = quantity_kinds(runs, strict_kinds)
    has_flow = any(k == "flow" for k in kinds)
    basis: Basis = "run"
    scale: float | None = 1.0
    bdur = [r.duration_seconds for r in baseline]
    known = all(d is not None and d > 0 for d in bdur)
    if normalized and has_flow and all(r.work is not None and r.work > 0 for r in runs):
        basis = "op"
        scale = (_mean([d or 0.0 for d in bdur]) / _mean([r.work or 1.0 for r in baseline])
                 if known else None)
    elif normalized and has_flow:
        basis = "second"
        for r in runs:
            if r.duration_seconds is None or r.duration_seconds <= 0:
                raise CompareError("no duration to normalize by", source=r.path,
                                   slug="no-duration")
    tables = parallel_map(aggregate_run, profiles)
    btables, ctables = tables[: len(baseline)], tables[len(baseline):]
    notes: list[str] = []
    if basis == "second" and detect_fixed_work:
        note = _fixed_work(baseline, candidate, btables, ctables, kinds)
        if note is not None:
            notes.append(note)
            basis, scale = "run", _mean([d or 0.0 for d in bdur])
    index = _name_index(tables)
    n = len(index)
    names = tuple(index)
    first = profiles[0]
    pairs = _held_pairs(first, kinds)

    def side(runs_: Sequence[RunInput], tables_: Sequence[Table]) -> SideRates:
        div = side_divisors(runs_, kinds, basis, normalized)
        rates = _side(runs_, tables_, index, n, div)
        if not pairs:
            return rates
        held_flat, held_cum, held_total = _held(tables_, index, n, div, pairs)
        return replace(rates, held_flat=held_flat, held_cum=held_cum, held_total=held_total)

    return Comparison(
        names=names,
        sample_types=first.sample_types,
        normalized=normalized,
        baseline=side(baseline, btables),
        candidate=side(candidate, ctables),
        period=first.period,
        period_type=first.period_type,
        quantities=kinds,
        basis=basis,
        scale=scale if normalized else 1.0,
        notes=tuple(notes),
    )
