"""Baseline versus candidate: per-function rates and deltas for every sample type.

A side is one or more profiles of the same workload (repeated runs). Each profile's values are
divided by its duration (a rate per second) and the runs are averaged, so a 10-minute soak and
a 48-hour one compare on the same footing. With ``normalize=False`` each profile counts as one
second ("per profile").

The comparison is a plain value: arrays aligned on one list of function names, built first;
the gate and the reports only read it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from memgate.errors import CompareError
from memgate.parallel import parallel_map
from memgate.profile.model import Profile, ValueType
from memgate.quantities import unit_scale
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


@dataclass(frozen=True, eq=False)
class Comparison:
    names: tuple[str, ...]
    sample_types: tuple[ValueType, ...]
    normalized: bool
    baseline: SideRates
    candidate: SideRates
    period: int
    period_type: ValueType


def _mean_variance(model: F64 | None, runs: F64) -> F64 | None:
    k = runs.shape[0]
    if k < 2:
        return model
    empirical = np.var(runs, axis=0, ddof=1) / k
    return np.asarray(empirical if model is None else np.maximum(model, empirical))


def sha256_file(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _describe_types(p: Profile) -> str:
    return ", ".join(str(st) for st in p.sample_types) or "no sample types"


def check_compatible(profiles: Sequence[Profile]) -> None:
    """All profiles must share sample types (name and unit, in order) and sampling period."""
    first = profiles[0]
    for other in profiles[1:]:
        if other.sample_types != first.sample_types:
            raise CompareError(
                f"incompatible profiles: {first.source} has sample types "
                f"[{_describe_types(first)}] but {other.source} has [{_describe_types(other)}]",
                source=other.source,
            )
        if other.period_type != first.period_type or other.period != first.period:
            raise CompareError(
                f"incompatible profiles: {first.source} is sampled every {first.period} "
                f"{first.period_type.unit or 'units'} but {other.source} every {other.period} "
                f"{other.period_type.unit or 'units'} (different sampling periods are not "
                "comparable)",
                source=other.source,
            )


def _side(
    runs: Sequence[RunInput],
    tables: Sequence[Table],
    index: dict[str, int],
    n: int,
    normalized: bool,
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
    unit = np.array([value_scale(st.unit) for st in tables[0].sample_types])
    for r, (run, table) in enumerate(zip(runs, tables)):
        seconds = run.duration_seconds if normalized else 1.0
        assert seconds is not None and seconds > 0
        divisor = seconds / unit
        rows = np.fromiter(
            (index[nm] for nm in table.names), dtype=np.int64, count=len(table.names)
        )
        flat[r, rows] = table.flat / divisor
        cum[r, rows] = table.cum / divisor
        total[r] = table.total / divisor
        if table.flat_extra is None or table.cum_extra is None:
            have_var = False
            continue
        # Variance of a mean of k independent runs: sum of variances / k^2.
        scale = 1.0 / (divisor * divisor * k * k)
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
    )


def value_scale(unit: str) -> float:
    """Factor from a sample type's unit to base units (kilobytes -> bytes); 1 for non-memory."""
    try:
        return unit_scale(unit)
    except ValueError:
        return 1.0


def aggregate_run(prof: Profile) -> Table:
    """Function-granularity table of one profile, with its sampling variances."""
    return aggregate(prof, "functions", extra=sampling_variance(prof))


def compare(
    baseline: Sequence[RunInput],
    candidate: Sequence[RunInput],
    *,
    normalized: bool = True,
) -> Comparison:
    """Align both sides on one function list and compute per-run and mean rates."""
    if not baseline or not candidate:
        raise CompareError("both sides need at least one profile")
    profiles = [r.profile for r in (*baseline, *candidate)]
    check_compatible(profiles)
    if normalized:
        for r in (*baseline, *candidate):
            if r.duration_seconds is None or r.duration_seconds <= 0:
                raise CompareError("no duration to normalize by", source=r.path)
    tables = parallel_map(aggregate_run, [r.profile for r in (*baseline, *candidate)])
    btables, ctables = tables[: len(baseline)], tables[len(baseline):]
    index: dict[str, int] = {}
    for t in (*btables, *ctables):
        for nm in t.names:
            if nm not in index:
                index[nm] = len(index)
    n = len(index)
    names = tuple(index)
    first = profiles[0]
    return Comparison(
        names=names,
        sample_types=first.sample_types,
        normalized=normalized,
        baseline=_side(baseline, btables, index, n, normalized),
        candidate=_side(candidate, ctables, index, n, normalized),
        period=first.period,
        period_type=first.period_type,
    )
