"""Crossings: the values whose growth crosses their rule's limits, before significance.

Every function's flat and cum, and the total, are tested against the plan
(:mod:`memgate.gate.plan`), one rule's functions at a time, as arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from memgate.compare import Comparison
from memgate.gate.plan import CEILING, KINDS, NONE, Bools, PlannedRule, TypePlan
from memgate.gate.results import Kind
from memgate.policy import Metric
from memgate.stats import mann_whitney_p

#: With at least this many runs on each side, significance comes from a rank test of the
#: per-run rates (as benchstat does) instead of the normal approximation.
MIN_RUNS_FOR_RANK_TEST = 5
METRICS: tuple[Metric, Metric] = ("flat", "cum")


@dataclass(frozen=True)
class Draft:
    """A crossing before the family-wide decision."""

    i: int | None  # function index, None for the total
    metric: Metric
    rule: PlannedRule
    kind: Kind
    b: float
    c: float
    se: float | None  # None: no variance information (exact numbers)
    rank_p: float | None
    #: The ceiling crossed (kinds "ceiling" and "new"; 0 for an increase).
    ceiling: float = 0.0

    @property
    def delta(self) -> float:
        return self.c - self.b

    @property
    def z(self) -> float:
        target = self.c - self.ceiling if self.kind == "ceiling" else self.delta
        if self.se is None or self.se <= 0:
            return math.inf if target > 0 else -math.inf
        return target / self.se


def crossings(comparison: Comparison, plan: TypePlan, absent: Bools) -> list[Draft]:
    """The crossings of one sample type: functions in index order (flat before cum), then
    the total. Functions that neither grew nor hold anything are not tested."""
    t = plan.basis.t
    base, cand = comparison.baseline, comparison.candidate
    grew = (cand.flat[:, t] > base.flat[:, t]) | (cand.cum[:, t] > base.cum[:, t])
    tested = grew | (cand.flat[:, t] > 0) | (cand.cum[:, t] > 0)
    values = {m: (base.freed(m)[:, t], cand.freed(m)[:, t]) for m in METRICS}
    found: list[tuple[int, int, Draft]] = []
    for rule in plan.rules:
        if rule.severity == "ignore":
            continue
        idx = rule.functions[tested[rule.functions]]
        if not idx.size:
            continue
        for order, metric in enumerate(METRICS):
            b, c = values[metric][0][idx], values[metric][1][idx]
            codes = rule.crossings(b, c, absent[idx])
            if rule.noise_floor is not None:
                codes[(b < rule.noise_floor) & (c < rule.noise_floor)] = NONE
            if metric != rule.metric:
                codes[codes == CEILING] = NONE  # a ceiling bounds the value the rule names
            for k in np.flatnonzero(codes).tolist():
                i = int(idx[k])
                found.append((i, order, _draft(comparison, rule, i, metric, KINDS[codes[k]],
                                               float(b[k]), float(c[k]), t)))
    drafts = [d for _, _, d in sorted(found, key=lambda f: (f[0], f[1]))]
    total = plan.total
    if total is not None and total.severity != "ignore":
        tb, tc = float(base.freed_total()[t]), float(cand.freed_total()[t])
        code = total.crossings(np.array([tb]), np.array([tc]), np.zeros(1, dtype=bool))[0]
        if code != NONE:
            drafts.append(_draft(comparison, total, None, "flat", KINDS[code], tb, tc, t))
    return drafts


def _draft(comparison: Comparison, rule: PlannedRule, i: int | None, metric: Metric,
           kind: Kind | None, b: float, c: float, t: int) -> Draft:
    assert kind is not None
    ceiling = rule.ceiling if kind in ("ceiling", "new") and rule.ceiling is not None else 0.0
    se = standard_error(comparison, "total" if i is None else metric, i, t,
                        (kind != "ceiling", True))
    return Draft(i, metric, rule, kind, b, c, se, rank_p(comparison, i, metric, t), ceiling)


def rank_p(comparison: Comparison, i: int | None, metric: str, t: int) -> float | None:
    """The rank test's p-value of function ``i``'s (or the total's) growth; None with fewer
    than :data:`MIN_RUNS_FOR_RANK_TEST` runs a side."""
    b, c = comparison.baseline, comparison.candidate
    kb, kc = b.flat_runs.shape[0], c.flat_runs.shape[0]
    if kb < MIN_RUNS_FOR_RANK_TEST or kc < MIN_RUNS_FOR_RANK_TEST:
        return None
    if i is None:
        xs, ys = b.total_runs[:, t], c.total_runs[:, t]
    else:
        xs, ys = b.metric_runs(metric)[:, i, t], c.metric_runs(metric)[:, i, t]
    return mann_whitney_p(xs.tolist(), ys.tolist())


def standard_error(comparison: Comparison, metric: str, i: int | None, t: int,
                   sides: tuple[bool, bool] = (True, True)) -> float | None:
    """The standard error of the difference of the means of ``sides`` (baseline, candidate);
    None without a noise model. A ceiling is tested on the candidate alone."""
    total = 0.0
    for use, side in zip(sides, (comparison.baseline, comparison.candidate)):
        if not use:
            continue
        var = side.mean_variance("total" if i is None else metric)
        if var is None:
            return None
        total += max(float(var[t] if i is None else var[i, t]), 0.0)
    return math.sqrt(total)
