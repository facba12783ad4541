"""The gate: a pure function from a comparison and a policy to findings and a verdict.

No I/O happens here (coverage.py's ``should_fail_under`` is the model): everything the gate
needs is in :class:`~memgate.compare.Comparison` and :class:`~memgate.policy.Policy`, and it is
tested with a truth table.

For every gated (function, sample type) the first matching rule decides: its severity, metric
(flat or cum) and limits. A limit crossing becomes a :class:`Finding`. When the comparison
carries a noise model, a crossing counts only if the increase is statistically significant at
the rule's confidence; otherwise it is reported as ``~`` (no real change) and never fails.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from memgate.compare import Comparison, SideRates
from memgate.errors import CompareError
from memgate.policy import NEW_FUNCTIONS_RULE, Effective, Policy, sample_type_matches
from memgate.quantities import (
    Dimension,
    count_noun,
    dimension_of_unit,
    format_percent,
    format_rate,
)
from memgate.stats import mann_whitney_p, normal_quantile, normal_sf

Verdict = Literal["pass", "warn", "fail"]
Kind = Literal["increase", "ceiling", "new"]

TOTAL_FUNCTION = "<total>"
#: With at least this many runs on each side, significance comes from a rank test of the
#: per-run rates (as benchstat does) instead of the normal approximation.
MIN_RUNS_FOR_RANK_TEST = 5


@dataclass(frozen=True)
class Finding:
    """One limit crossing for one function (or the total) and sample type."""

    rule: str
    function: str
    sample_type: str
    dimension: Dimension
    metric: Literal["flat", "cum"]
    severity: Literal["fail", "warn"]
    kind: Kind
    baseline_rate: float
    candidate_rate: float
    delta_rate: float
    delta_pct: float | None
    #: The limits that were crossed, as written in the policy ("20% and 1MiB/min").
    limit: str
    #: False: the crossing is within sampling noise at the rule's confidence; shown as "~".
    significant: bool
    p_value: float | None
    #: Half-width of the two-sided confidence interval of ``delta_rate`` (None: exact).
    interval: float | None
    confidence: float
    message: str


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    #: Significant crossings (these decide the verdict).
    findings: tuple[Finding, ...]
    #: Crossings within noise: reported as "~", never failing.
    within_noise: tuple[Finding, ...]
    #: Indices (into Comparison.sample_types) of the sample types the policy gates.
    gated: tuple[int, ...]


def gated_type_indices(comparison: Comparison, policy: Policy) -> tuple[int, ...]:
    """Which sample types of the profiles the policy gates; an error if none or non-memory."""
    names = policy.gated_sample_types()
    gated: list[int] = []
    for t, st in enumerate(comparison.sample_types):
        if any(sample_type_matches(n, st.type) for n in names):
            if dimension_of_unit(st.unit) is None:
                raise CompareError(
                    f"sample type {st.type} ({st.unit}) is not a memory sample type: memgate "
                    "gates allocations (bytes or object counts), not CPU or time profiles",
                    source=policy.source,
                )
            gated.append(t)
    if not gated:
        have = ", ".join(str(st) for st in comparison.sample_types)
        raise CompareError(
            f"the profiles have none of the sample types the policy gates "
            f"({', '.join(names)}); they have {have}. Is this a memory profile? "
            "(CPU and other profiles cannot be gated by memory rules)",
            source=policy.source,
        )
    return tuple(gated)


def _side_var(side: SideRates, metric: str, i: int | None, t: int) -> float | None:
    """Variance of a side's mean rate for one function (``i``) or the total (``i`` None)."""
    var = side.mean_variance("total" if i is None else metric)
    if var is None:
        return None
    return float(var[t] if i is None else var[i, t])


@dataclass(frozen=True)
class _Evidence:
    """What the data say about one crossing, before the family-wide decision."""

    p_model: float | None
    p_rank: float | None
    half: float | None


def significance(
    comparison: Comparison, metric: str, i: int | None, t: int, delta: float, confidence: float
) -> _Evidence:
    """p-values (normal model, and rank test when there are enough runs) for an increase.

    ``i`` None means the whole-profile total. Without any variance information the numbers
    are exact: both p-values are None.
    """
    b, c = comparison.baseline, comparison.candidate
    vb = _side_var(b, metric, i, t)
    vc = _side_var(c, metric, i, t)
    half: float | None = None
    p: float | None = None
    if vb is not None and vc is not None:
        se = math.sqrt(max(vb, 0.0) + max(vc, 0.0))
        half = normal_quantile(0.5 + confidence / 2) * se
        if se > 0:
            p = normal_sf(delta / se)
        else:
            p = 0.0 if delta > 0 else 1.0
    rank: float | None = None
    kb, kc = b.flat_runs.shape[0], c.flat_runs.shape[0]
    if kb >= MIN_RUNS_FOR_RANK_TEST and kc >= MIN_RUNS_FOR_RANK_TEST:
        if i is None:
            xs, ys = b.total_runs[:, t], c.total_runs[:, t]
        else:
            xs, ys = b.metric_runs(metric)[:, i, t], c.metric_runs(metric)[:, i, t]
        rank = mann_whitney_p(xs.tolist(), ys.tolist())
    return _Evidence(p, rank, half)


def min_rank_p(kb: int, kc: int) -> float:
    """The smallest one-sided p-value a rank test of kb against kc runs can give."""
    return 1.0 / math.comb(kb + kc, kb)


def _limit_text(eff: Effective, dim: Dimension, kind: Kind, normalized: bool = True,
                noun: str = "objects") -> str:
    """The limit a finding crossed, as the policy wrote it. With raw values (--no-normalize,
    each profile counts as one second) a rate limit is also given as the amount per profile
    it amounts to, since that is what the finding's numbers are."""
    lim = eff.limits

    def rate(text: str, value: float) -> str:
        if normalized:
            return text
        return f"{format_rate(value, dim, 's', noun, per_profile=True)} ({text})"

    if kind == "ceiling" or kind == "new":
        q = lim.max_rate_for(dim)
        return f"max rate {rate(q.text, q.value)}" if q is not None else ""
    parts = []
    if lim.max_increase_pct is not None:
        parts.append(f"{lim.max_increase_pct:g}%")
    q = lim.increase_rate_for(dim)
    if q is not None:
        parts.append(rate(q.text, q.value))
    return " and ".join(parts)


def _evaluate_one(
    comparison: Comparison,
    eff: Effective,
    name: str,
    i: int | None,
    t: int,
    dim: Dimension,
    time_unit: str,
    is_new: bool,
) -> tuple[_Evidence, Finding] | None:
    metric = eff.metric
    if i is None:
        b = float(comparison.baseline.total[t])
        c = float(comparison.candidate.total[t])
    else:
        b = float(comparison.baseline.metric(metric)[i, t])
        c = float(comparison.candidate.metric(metric)[i, t])
    if i is not None and eff.is_noise(b, c, dim):
        return None
    lim = eff.limits
    kind: Kind | None = None
    if lim.rate_exceeded(c, dim):
        kind = "new" if (is_new and eff.rule_name == NEW_FUNCTIONS_RULE) else "ceiling"
    elif lim.increase_exceeded(b, c, dim):
        kind = "increase"
    if kind is None:
        return None
    delta = c - b
    pct = None if b <= 0 else delta / b * 100.0
    if kind == "increase" or kind == "new":
        ev = significance(comparison, metric, i, t, delta, eff.confidence)
    else:
        ceiling = lim.max_rate_for(dim)
        assert ceiling is not None
        # Above the ceiling by more than noise: test candidate - ceiling against its SE.
        vc = _side_var(comparison.candidate, metric, i, t)
        if vc is None:
            ev = _Evidence(None, None, None)
        else:
            se = math.sqrt(max(vc, 0.0))
            over = c - ceiling.value
            ev = _Evidence(normal_sf(over / se) if se > 0 else 0.0, None,
                           normal_quantile(0.5 + eff.confidence / 2) * se)
    st = comparison.sample_types[t]
    # Raw values (--no-normalize) are amounts per profile.
    per_profile = not comparison.normalized
    b_txt = format_rate(b, dim, time_unit, count_noun(st.type), per_profile)
    c_txt = format_rate(c, dim, time_unit, count_noun(st.type), per_profile)
    limit = _limit_text(eff, dim, kind, comparison.normalized, count_noun(st.type))
    subject = "total" if i is None else name
    if kind == "increase":
        msg = (
            f"{subject} {st.type} ({metric}) grew from {b_txt} to {c_txt} "
            f"({format_percent(pct)}), over the limit of {limit}"
        )
    elif kind == "new":
        msg = f"new function {subject} allocates {c_txt} of {st.type}, above {limit}"
    else:
        msg = f"{subject} {st.type} ({metric}) is {c_txt}, above its {limit}"
    severity = eff.severity
    assert severity in ("fail", "warn")
    return ev, Finding(
        rule=eff.rule_name,
        function=name,
        sample_type=st.type,
        dimension=dim,
        metric=metric,
        severity=severity,
        kind=kind,
        baseline_rate=b,
        candidate_rate=c,
        delta_rate=delta,
        delta_pct=pct,
        limit=limit,
        significant=True,
        p_value=None,
        interval=ev.half,
        confidence=eff.confidence,
        message=msg,
    )


def evaluate(comparison: Comparison, policy: Policy, time_unit: str = "s") -> GateResult:
    """Apply ``policy`` to ``comparison``. Pure: same inputs, same result, no I/O."""
    gated = gated_type_indices(comparison, policy)
    base, cand = comparison.baseline, comparison.candidate
    # A function is new when the baseline has nothing of it at all.
    absent = ~((base.flat != 0).any(axis=1) | (base.cum != 0).any(axis=1))
    any_ceiling = True  # rules may set ceilings; candidates with c > 0 are always checked
    drafts: list[tuple[_Evidence, Finding]] = []
    for t in gated:
        st = comparison.sample_types[t]
        dim = dimension_of_unit(st.unit)
        assert dim is not None
        # Only functions that grew, or that could cross a ceiling, can produce a finding.
        grew = (cand.flat[:, t] > base.flat[:, t]) | (cand.cum[:, t] > base.cum[:, t])
        live = (cand.flat[:, t] > 0) | (cand.cum[:, t] > 0)
        cands = np.flatnonzero(grew | (live & any_ceiling))
        for i in cands.tolist():
            name = comparison.names[i]
            is_new = bool(absent[i])
            eff = (
                policy.resolve_new_function(name, st.type)
                if is_new
                else policy.resolve(name, st.type)
            )
            if eff is None or eff.severity == "ignore":
                continue
            f = _evaluate_one(comparison, eff, name, i, t, dim, time_unit, is_new)
            if f is not None:
                drafts.append(f)
        teff = policy.resolve_total(st.type)
        if teff is not None and teff.severity != "ignore":
            f = _evaluate_one(comparison, teff, TOTAL_FUNCTION, None, t, dim, time_unit, False)
            if f is not None:
                drafts.append(f)
    decided = decide(drafts, base.flat_runs.shape[0], cand.flat_runs.shape[0])
    decided.sort(key=_finding_order)
    significant = tuple(f for f in decided if f.significant)
    noise = tuple(f for f in decided if not f.significant)
    return GateResult(
        verdict=verdict_of(significant), findings=significant, within_noise=noise, gated=gated
    )


def decide(drafts: Sequence[tuple[_Evidence, Finding]], kb: int, kc: int) -> list[Finding]:
    """Which crossings are real: Holm's step-down procedure over all crossings of one run.

    A profile has hundreds of functions; testing each at 1% would let a few cross by chance
    on every run, so the family-wise error rate of the whole gate is held at each rule's
    ``1 - confidence`` (Holm, which is uniformly more powerful than Bonferroni). The rank test
    replaces the normal model only when it can reach the levels this family needs: with
    ``m`` crossings, a rank test of ``kb`` vs ``kc`` runs must be able to give p < alpha/m.
    """
    tested = [(ev, f) for ev, f in drafts if ev.p_model is not None or ev.p_rank is not None]
    m = len(tested)
    use_rank = bool(tested) and all(ev.p_rank is not None for ev, _ in tested) and \
        min_rank_p(kb, kc) < min(1 - f.confidence for _, f in tested) / m
    pvals = {id(f): (ev.p_rank if use_rank else ev.p_model) for ev, f in tested}
    order = sorted(tested, key=lambda d: (pvals[id(d[1])] or 0.0))
    significant: set[int] = set()
    for j, (_, f) in enumerate(order):
        p = pvals[id(f)]
        assert p is not None
        if p < (1 - f.confidence) / (m - j):
            significant.add(id(f))
        else:
            break  # Holm: once one is kept, every larger p-value is kept too
    out = []
    for _, f in drafts:
        p = pvals.get(id(f))
        sig = p is None or id(f) in significant
        msg = f.message
        if not sig:
            msg += f" — within sampling noise at {f.confidence:.0%} confidence (~)"
        elif use_rank and p is not None:
            # The rank test decided; the ± interval the reports show comes from the sampling
            # model and may be wider. Say which test spoke.
            msg += f" — significant by a rank test of {kb} vs {kc} runs (p = {p:.2g})"
        out.append(replace(f, significant=sig, p_value=p, message=msg))
    return out


def _finding_order(f: Finding) -> tuple[int, int, str, str]:
    return (
        0 if f.severity == "fail" else 1,
        0 if f.function == TOTAL_FUNCTION else 1,
        f.function,
        f.sample_type,
    )


def verdict_of(findings: Sequence[Finding]) -> Verdict:
    """fail if any fail finding; warn if any warn finding; else pass."""
    if any(f.severity == "fail" for f in findings):
        return "fail"
    if findings:
        return "warn"
    return "pass"
