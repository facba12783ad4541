"""The gate: a pure function from a comparison and a policy to findings and a verdict.

No I/O happens here (coverage.py's ``should_fail_under`` is the model): everything the gate
needs is in :class:`~memgate.compare.Comparison` and :class:`~memgate.policy.Policy`, and it is
tested with a truth table.

For every gated (function, sample type) the first matching rule gives the severity and limits.
Every function's flat and cum, and the total, are tested, so that a leak spread over several
leaves is still seen in their common caller's cum. How the decision is made (docs/noise.md):

1. **Crossings.** A value whose growth crosses its rule's limits (relative and absolute; levels
   in amounts, flows in rates scaled to the comparison's basis) is a crossing.
2. **Significance, family-wise.** A crossing counts when its standardized growth exceeds the
   max-T critical value of all the crossings of that sample type: the 1-alpha quantile of the
   maximum of correlated normals, the correlation coming from the samples the tests share
   (:mod:`memgate.tree`), so that nested cum tests are not counted as independent. With five
   runs or more a side, a rank test of the runs decides instead (Holm-corrected).
3. **Culprits.** Of the significant crossings, the deepest functions (recursion collapsed into
   one) whose growth is not explained by a significant function below them are the findings,
   with the leaves that carry their growth as evidence. A function whose flat grew while its
   cum did not (allocation moved between it and its callees) is reported as moved, never as a
   regression.

Crossings that are not significant are reported as ``~`` (no real change) and never fail.
Every result also states the detection floor: the smallest growth this comparison could have
seen (:class:`DetectionFloor`).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from memgate.compare import Comparison, SideRates
from memgate.errors import CompareError
from memgate.policy import (
    NEW_FUNCTIONS_RULE,
    Effective,
    Inherit,
    Policy,
    sample_type_matches,
)
from memgate.quantities import (
    Dimension,
    count_noun,
    dimension_of_unit,
    format_percent,
    format_value,
)
from memgate.stats import mann_whitney_p, normal_quantile, normal_sf
from memgate.tree import Overlap, max_t_critical, overlaps, sidak_critical

F64 = NDArray[np.float64]

Verdict = Literal["pass", "warn", "fail"]
Kind = Literal["increase", "ceiling", "new", "moved"]

TOTAL_FUNCTION = "<total>"
#: With at least this many runs on each side, significance comes from a rank test of the
#: per-run rates (as benchstat does) instead of the normal approximation.
MIN_RUNS_FOR_RANK_TEST = 5
#: The power at which the detection floor is stated.
POWER = 0.8
#: A function's flat growth is "moved" when its cum grew by less than this share of it:
#: the allocation came from its callees (or went to them), the subtree did not grow.
MOVED_SHARE = 0.5
#: Evidence lists leaves that carry at least this share of a culprit's growth.
EVIDENCE_SHARE = 0.05
EVIDENCE_MAX = 5
#: Functions of the language runtime that allocate for their callers (see :func:`_culprits`).
RUNTIME_PREFIXES = ("runtime.", "reflect.", "internal/", "sync.")
#: At most this many crossing functions are followed through the stacks (see evaluate).
MAX_TRACKED = 160
#: How many of the largest functions the detection floor names.
FLOOR_TOP = 3
#: The detection floor's critical value is at least that of this many independent tests:
#: max-T over the ~10-20 strongly correlated tests (a function's flat, its callers' cum) that
#: a real growth brings into the family comes to about this.
FLOOR_FAMILY = 4
#: Under this many leaves with positive flat growth are tracked as evidence per type.
EVIDENCE_TRACKED = 24


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
    #: level, flow or growth (:func:`memgate.compare.quantity_kind`).
    quantity: str = "flow"
    #: The values' denominator (:meth:`Comparison.per`): "" for a level, "s", "op", "run".
    per: str = "s"
    #: Functions collapsed into this one because they call each other (recursion).
    members: tuple[str, ...] = ()
    #: The leaves under this function that carry its growth: (name, share of the delta).
    evidence: tuple[tuple[str, float], ...] = ()
    #: For a function with findings below it: the part of its growth they do not explain.
    remainder: float | None = None


@dataclass(frozen=True)
class DetectionFloor:
    """The smallest growth one comparison could have told from sampling noise.

    At the policy's confidence (family-wise, the same critical value the gate used) and
    :data:`POWER`, in the sample type's units (``per`` as in :class:`Finding`). A growth below
    it may pass unseen: the report says so rather than implying that a PASS saw everything.
    """

    sample_type: str
    dimension: Dimension
    quantity: str
    per: str
    confidence: float
    power: float
    #: A function that holds (or allocates) nothing on the baseline grows by this much.
    new_function: float
    #: The whole profile's total.
    total: float
    #: The largest functions: (name, smallest growth of its flat value).
    top: tuple[tuple[str, float], ...]
    #: The policy's smallest absolute limit for this sample type (None: no absolute limit).
    limit: float | None


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    #: Significant crossings (these decide the verdict).
    findings: tuple[Finding, ...]
    #: Crossings within noise: reported as "~", never failing.
    within_noise: tuple[Finding, ...]
    #: Indices (into Comparison.sample_types) of the sample types the policy gates.
    gated: tuple[int, ...]
    #: Allocation that moved between a function and its callees: shown, never failing.
    moved: tuple[Finding, ...] = ()
    #: Per gated sample type with a noise model: what this comparison could have seen.
    floors: tuple[DetectionFloor, ...] = ()
    #: What the user should know about the comparison itself (dead rules, fixed work).
    warnings: tuple[str, ...] = field(default=())


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


def _var(side: SideRates, metric: str) -> F64 | None:
    return side.mean_variance(metric)


@dataclass(frozen=True)
class _Draft:
    """A crossing before the family-wide decision."""

    i: int | None  # function index, None for the total
    metric: Literal["flat", "cum"]
    eff: Effective
    kind: Kind
    b: float
    c: float
    se: float | None  # None: no variance information (exact numbers)
    rank_p: float | None

    @property
    def delta(self) -> float:
        return self.c - self.b

    @property
    def z(self) -> float:
        target = self.c - self.eff_ceiling if self.kind == "ceiling" else self.delta
        if self.se is None or self.se <= 0:
            return math.inf if target > 0 else -math.inf
        return target / self.se

    eff_ceiling: float = 0.0


@dataclass(frozen=True)
class _TypeContext:
    t: int
    dim: Dimension
    level: bool
    per: str
    scale: float | None
    quantity_growth: bool = False
    #: A flow judged on what was freed (allocation minus what is still held): see
    #: :attr:`memgate.compare.SideRates.held_flat`.
    freed: bool = False


def _rates_apply(ctx: _TypeContext) -> bool:
    """Whether the policy's rate limits and floors can be put in this type's units: levels
    have their own, and flows per op need the workload's duration to convert a rate."""
    return ctx.level or ctx.per in ("s", "profile") or ctx.scale is not None


def _abs_limit(eff: Effective, ctx: _TypeContext, ceiling: bool) -> float | None:
    """The rule's absolute limit in the comparison's units, or None if it has none (or a rate
    limit cannot be scaled to a per-op basis without a duration)."""
    lim = eff.limits
    q = lim.ceiling(ctx.dim, ctx.level) if ceiling else lim.absolute_increase(ctx.dim, ctx.level)
    if q is None:
        return None
    if ctx.level or ctx.per in ("s", "profile"):
        return q.value
    return None if ctx.scale is None else q.value * ctx.scale


def _crossing(eff: Effective, ctx: _TypeContext, b: float, c: float, is_new: bool
              ) -> tuple[Kind, float] | None:
    """Which limit growth from ``b`` to ``c`` crosses (and the ceiling's value), if any.

    Relative and absolute increase limits must both be crossed when both are set; "crossed"
    is strictly greater. A baseline of 0 is an infinite relative increase.
    """
    ceiling = _abs_limit(eff, ctx, ceiling=True)
    if ceiling is not None and c > ceiling:
        kind: Kind = "new" if (is_new and eff.rule_name == NEW_FUNCTIONS_RULE) else "ceiling"
        return kind, ceiling
    pct_limit = eff.limits.max_increase_pct
    absolute = _abs_limit(eff, ctx, ceiling=False)
    if pct_limit is None and absolute is None:
        return None
    delta = c - b
    if delta <= 0:
        return None
    if pct_limit is not None:
        pct = math.inf if b <= 0 else delta / b * 100.0
        if not pct > pct_limit:
            return None
    if absolute is not None and not delta > absolute:
        return None
    return "increase", 0.0


def _limit_text(eff: Effective, ctx: _TypeContext, kind: Kind, noun: str) -> str:
    """The limit a finding crossed, as the policy wrote it, and what it amounts to here when
    a rate limit applies to values per run, per op or per profile."""
    lim = eff.limits

    def text(q_text: str, value: float | None) -> str:
        if ctx.level or ctx.per == "s" or value is None:
            return q_text
        return f"{format_value(value, ctx.dim, ctx.per, 's', noun)} ({q_text})"

    if kind in ("ceiling", "new"):
        q = lim.ceiling(ctx.dim, ctx.level)
        name = "max level" if ctx.level else "max rate"
        return f"{name} {text(q.text, _abs_limit(eff, ctx, True))}" if q is not None else ""
    parts = []
    if lim.max_increase_pct is not None:
        parts.append(f"{lim.max_increase_pct:g}%")
    q = lim.absolute_increase(ctx.dim, ctx.level)
    if q is not None and _rates_apply(ctx):
        parts.append(text(q.text, _abs_limit(eff, ctx, False)))
    return " and ".join(parts)


def _rank_p(comparison: Comparison, d_i: int | None, metric: str, t: int) -> float | None:
    b, c = comparison.baseline, comparison.candidate
    kb, kc = b.flat_runs.shape[0], c.flat_runs.shape[0]
    if kb < MIN_RUNS_FOR_RANK_TEST or kc < MIN_RUNS_FOR_RANK_TEST:
        return None
    if d_i is None:
        xs, ys = b.total_runs[:, t], c.total_runs[:, t]
    else:
        xs, ys = b.metric_runs(metric)[:, d_i, t], c.metric_runs(metric)[:, d_i, t]
    return mann_whitney_p(xs.tolist(), ys.tolist())


def min_rank_p(kb: int, kc: int) -> float:
    """The smallest one-sided p-value a rank test of kb against kc runs can give."""
    return 1.0 / math.comb(kb + kc, kb)


def _se(comparison: Comparison, metric: str, i: int | None, t: int,
        sides: tuple[bool, bool] = (True, True)) -> float | None:
    total = 0.0
    for use, side in zip(sides, (comparison.baseline, comparison.candidate)):
        if not use:
            continue
        var = side.mean_variance("total" if i is None else metric)
        if var is None:
            return None
        total += max(float(var[t] if i is None else var[i, t]), 0.0)
    return math.sqrt(total)


def _crossings(comparison: Comparison, policy: Policy, ctx: _TypeContext,
               absent: NDArray[np.bool_]) -> list[_Draft]:
    t = ctx.t
    base, cand = comparison.baseline, comparison.candidate
    st = comparison.sample_types[t]
    grew = (cand.flat[:, t] > base.flat[:, t]) | (cand.cum[:, t] > base.cum[:, t])
    live = (cand.flat[:, t] > 0) | (cand.cum[:, t] > 0)
    drafts: list[_Draft] = []
    for i in np.flatnonzero(grew | live).tolist():
        name = comparison.names[i]
        is_new = bool(absent[i])
        eff = (policy.resolve_new_function(name, st.type) if is_new
               else policy.resolve(name, st.type))
        if eff is None or eff.severity == "ignore":
            continue
        for metric in ("flat", "cum"):
            b = float(base.freed(metric)[i, t])
            c = float(cand.freed(metric)[i, t])
            if _rates_apply(ctx) and eff.is_noise(b, c, ctx.dim, ctx.level, ctx.scale or 1.0):
                continue
            crossed = _crossing(eff, ctx, b, c, is_new)
            if crossed is None:
                continue
            kind, ceiling = crossed
            if kind == "ceiling" and metric != eff.metric:
                continue  # a ceiling bounds the value the rule names
            se = _se(comparison, metric, i, t, (kind != "ceiling", True))
            drafts.append(_Draft(i, metric, eff, kind, b, c, se,
                                 _rank_p(comparison, i, metric, t), ceiling))
    teff = policy.resolve_total(st.type)
    if teff is not None and teff.severity != "ignore":
        b, c = float(base.freed_total()[t]), float(cand.freed_total()[t])
        crossed = _crossing(teff, ctx, b, c, False)
        if crossed is not None:
            kind, ceiling = crossed
            drafts.append(_Draft(None, "flat", teff, kind, b, c,
                                 _se(comparison, "total", None, t, (kind != "ceiling", True)),
                                 _rank_p(comparison, None, "flat", t), ceiling))
    return drafts


def _position(ov: Overlap | None, i: int | None) -> int | None:
    if ov is None or i is None:
        return None
    try:
        return ov.functions.index(i)
    except ValueError:
        return None


def _test_index(ov: Overlap, d: _Draft) -> int | None:
    m = len(ov.functions)
    if d.i is None:
        return 2 * m
    p = _position(ov, d.i)
    if p is None:
        return None
    return p if d.metric == "cum" else m + p


def _critical(drafts: Sequence[_Draft], ov: Overlap | None, alphas: Sequence[float]
              ) -> dict[float, float]:
    """Max-T critical values for the drafts that have a noise model (Šidák without the
    overlap: tests treated as independent, which is conservative)."""
    tested = [d for d in drafts if d.se is not None and d.se > 0]
    if not tested:
        return {a: 0.0 for a in alphas}
    if ov is not None:
        idx = [_test_index(ov, d) for d in tested]
        if all(x is not None for x in idx):
            sel = np.array(sorted(set(x for x in idx if x is not None)))
            cov = ov.cov[np.ix_(sel, sel)]
            sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
            ok = sd > 0
            if ok.all():
                corr = cov / np.outer(sd, sd)
                return max_t_critical(corr, alphas)
    # Without the samples: a function's flat lies inside its cum (one test's worth); distinct
    # functions count as independent.
    m = len({d.i for d in tested})
    return {a: sidak_critical(m, a) for a in alphas}


def _holm_rank(drafts: Sequence[_Draft], kb: int, kc: int) -> dict[int, bool] | None:
    """Holm over rank-test p-values when every tested draft has one and the rank test can
    reach the levels the family needs (with ``m`` tests, a rank test of kb vs kc runs must
    be able to give p < alpha/m); None otherwise."""
    tested = [d for d in drafts if d.se is not None or d.rank_p is not None]
    if not tested or any(d.rank_p is None for d in tested):
        return None
    m = len(tested)
    alpha = min(1 - d.eff.confidence for d in tested)
    if not min_rank_p(kb, kc) < alpha / m:
        return None
    order = sorted(tested, key=lambda d: d.rank_p or 0.0)
    out: dict[int, bool] = {id(d): False for d in tested}
    for j, d in enumerate(order):
        assert d.rank_p is not None
        if d.rank_p < (1 - d.eff.confidence) / (m - j):
            out[id(d)] = True
        else:
            break
    return out


def _name_with_members(name: str, members: Sequence[str]) -> str:
    if not members:
        return name
    short = [m.rsplit(".", 1)[-1] if m.rsplit(".", 1)[0] == name.rsplit(".", 1)[0] else m
             for m in members]
    return f"{name} (with {', '.join(short)}: recursion)"


def _make_finding(comparison: Comparison, d: _Draft, ctx: _TypeContext, time_unit: str,
                  significant: bool, kind: Kind | None = None, members: Sequence[str] = (),
                  evidence: Sequence[tuple[str, float]] = (), note: str = "") -> Finding:
    st = comparison.sample_types[ctx.t]
    noun = count_noun(st.type)
    kind = kind or d.kind
    name = TOTAL_FUNCTION if d.i is None else comparison.names[d.i]
    subject = "total" if d.i is None else _name_with_members(name, members)
    b_txt = format_value(d.b, ctx.dim, ctx.per, time_unit, noun)
    c_txt = format_value(d.c, ctx.dim, ctx.per, time_unit, noun)
    pct = None if d.b <= 0 else d.delta / d.b * 100.0
    limit = _limit_text(d.eff, ctx, d.kind, noun)
    what = f"{st.type} ({d.metric}{', in use' if ctx.level else ''}"
    what += ", freed" if ctx.freed else ""
    what += ", growth)" if ctx.quantity_growth else ")"
    # "new" is said only of a function the baseline never saw (kind "new"); growth from
    # nothing of a function it knows is growth from zero.
    change = format_percent(pct) if pct is not None else "from none"
    if kind == "moved":
        msg = (f"{subject} {st.type}: allocation moved into it (flat {b_txt} -> {c_txt}, "
               f"{change}) while its cum did not grow: not a regression")
    elif kind == "increase":
        msg = (f"{subject} {what} grew from {b_txt} to {c_txt} ({change}), "
               f"over the limit of {limit}")
    elif kind == "new":
        msg = f"new function {subject} {'holds' if ctx.level else 'allocates'} {c_txt} of " \
              f"{st.type}, above {limit}"
    else:
        msg = f"{subject} {what} is {c_txt}, above its {limit}"
    if note:
        msg += note
    if evidence:
        msg += "; carried by " + ", ".join(f"{n} {share:.0%}" for n, share in evidence)
    severity = d.eff.severity
    assert severity in ("fail", "warn")
    half = None if d.se is None else normal_quantile(0.5 + d.eff.confidence / 2) * d.se
    return Finding(
        rule=d.eff.rule_name, function=name, sample_type=st.type, dimension=ctx.dim,
        metric=d.metric, severity=severity, kind=kind, baseline_rate=d.b, candidate_rate=d.c,
        delta_rate=d.delta, delta_pct=pct, limit=limit, significant=significant,
        p_value=None, interval=half, confidence=d.eff.confidence, message=msg,
        quantity="level" if ctx.level else ("growth" if ctx.quantity_growth else "flow"),
        per=ctx.per, members=tuple(members), evidence=tuple(evidence))


def _culprits(comparison: Comparison, sig: list[_Draft], ov: Overlap | None,
              crit: dict[float, float], ctx: _TypeContext
              ) -> list[tuple[_Draft, list[str], list[tuple[str, float]], str, float | None]]:
    """The deepest significant functions whose growth no significant function below them
    explains, recursion collapsed; with the leaves that carry their growth."""
    t = ctx.t
    base, cand = comparison.baseline, comparison.candidate
    by_fn: dict[int, _Draft] = {}
    for d in sig:
        assert d.i is not None
        if d.i not in by_fn or d.metric == "cum":
            by_fn[d.i] = d
    if ov is None:
        return [(d, [], [], "", None) for d in by_fn.values()]
    # Functions the walk did not follow (more crossings than it tracks) stand alone.
    alone: list[tuple[_Draft, list[str], list[tuple[str, float]], str, float | None]] = [
        (d, [], [], "", None) for i, d in by_fn.items() if _position(ov, i) is None]
    by_fn = {i: d for i, d in by_fn.items() if _position(ov, i) is not None}

    def pos(i: int) -> int:
        p = _position(ov, i)
        assert p is not None
        return p

    # The language runtime's allocation helpers (a map's buckets in reflect.mapassign, a
    # slice's growth in runtime.growslice) allocate on behalf of their callers: when a
    # significant caller outside the runtime reaches them, the caller is the culprit and they
    # are its evidence.
    internal = [i for i in by_fn if comparison.names[i].startswith(RUNTIME_PREFIXES)]
    for i in internal:
        if any(j != i and not comparison.names[j].startswith(RUNTIME_PREFIXES)
               and ov.reach[pos(j), pos(i)] for j in by_fn):
            del by_fn[i]
    fns = sorted(by_fn, key=lambda i: (ov.shared[pos(i), pos(i)], comparison.names[i]))
    # Recursion: functions that call each other are one.
    group_of: dict[int, int] = {}
    for i in fns:
        for j in fns:
            if j != i and group_of.get(j) == j and ov.recursive(pos(i), pos(j)):
                group_of[i] = j
                break
        group_of.setdefault(i, i)
    groups: dict[int, list[int]] = {}
    for i in fns:
        groups.setdefault(group_of[i], []).append(i)
    chosen: list[tuple[int, list[int], float, float]] = []  # rep, members, delta, var
    out = []
    cf_delta = cand.flat[:, t] - base.flat[:, t]

    def under(members: Sequence[int], p: int) -> bool:
        return any(ov.contains(pos(mm), p) or ov.reach[pos(mm), p] or pos(mm) == p
                   for mm in members)

    def group_key(g: int) -> tuple[float, int, str]:
        # Smaller subtrees first; of equal ones (a chain of callers with the same cum), the
        # one reaching fewer other functions (the callee) first: it is what its callers'
        # growth is made of.
        inside = [pos(i) for i in groups[g]]
        reach = np.asarray(ov.reach[inside].any(axis=0), dtype=bool)
        reach[inside] = False
        return (max(ov.shared[p, p] for p in inside), int(reach.sum()), comparison.names[g])

    for head in sorted(groups, key=group_key):
        members = groups[head]
        d = by_fn[max(members, key=lambda i: (by_fn[i].delta, comparison.names[i]))]
        rep = d.i
        assert rep is not None
        top = max(members, key=lambda i: ov.shared[pos(i), pos(i)])
        # Culprits found deeper whose growth (partly) happened inside this function's cum.
        below = [c for c in chosen
                 if ov.reach[pos(top), pos(c[0])] and ov.shared_growth(pos(top), pos(c[0])) > 0]
        below = [c for c in below if not any(o is not c and ov.reach[pos(o[0]), pos(c[0])]
                                              and ov.contains(pos(o[0]), pos(c[0]))
                                              for o in below)]
        note = ""
        remainder = None
        if below:
            explained = sum(ov.shared_growth(pos(top), pos(c[0])) for c in below)
            resid = d.delta - explained
            var = max((d.se or 0.0) ** 2 - sum(c[3] for c in below), 0.0)
            se = math.sqrt(var) if var > 0 else None
            ok = _crossing(d.eff, ctx, d.b, d.b + resid, False) is not None
            z = resid / se if se else (math.inf if resid > 0 else -math.inf)
            if not ok or not z > crit[1 - d.eff.confidence]:
                continue
            names = ", ".join(comparison.names[c[0]] for c in below)
            note = (f" ({format_value(resid, ctx.dim, ctx.per, 's')} beyond what {names} "
                    "explains)")
            remainder = resid
        chosen.append((rep, members, d.delta, (d.se or 0.0) ** 2))
        # Evidence: leaves whose cum lies under this function, by their flat growth.
        evidence = []
        for p, fi in enumerate(ov.functions):
            inside = float(cf_delta[fi]) if fi in members else min(
                float(cf_delta[fi]), ov.shared_growth(pos(top), p))
            share = inside / d.delta if d.delta > 0 else 0.0
            if share >= EVIDENCE_SHARE and under(members, p):
                evidence.append((comparison.names[fi], share))
        evidence.sort(key=lambda e: (-e[1], e[0]))
        if d.metric == "flat" or (len(evidence) == 1 and evidence[0][0] == comparison.names[rep]):
            evidence = []  # a function's own allocation is carried by nothing below it
        others = [comparison.names[i] for i in members if i != rep]
        out.append((d, others, evidence[:EVIDENCE_MAX], note, remainder))
    return out + alone


def _solve_floor(k: float, v0: float, rho: float) -> float:
    """The smallest growth x with x = k * sqrt(v0 + rho * x): the variance of a growth grows
    with it (more samples of the new objects)."""
    a = k * k * rho
    return (a + math.sqrt(a * a + 4 * k * k * v0)) / 2


def critical_value(comparison: Comparison, confidence: float, crit: float = 0.0,
                   gated: Sequence[int] | None = None) -> float:
    """The critical value a detection floor is stated at: the family's (``crit``), and at
    least that of FLOOR_FAMILY independent tests per measurement (of the ``gated`` types;
    default: every memory type)."""
    return max(crit, sidak_critical(FLOOR_FAMILY, (1 - confidence) / _share(comparison, gated)))


def _new_growth_variance(comparison: Comparison, t: int) -> float | None:
    """The variance one unit (byte, object) of new growth adds to the candidate's mean:
    the baseline's per-run variance over its total, shared by the candidate's runs."""
    base = comparison.baseline
    vbt = base.mean_variance("total")
    if vbt is None:
        return None
    kb, kc = base.flat_runs.shape[0], comparison.candidate.flat_runs.shape[0]
    btot = float(base.total[t])
    return float(vbt[t]) * kb / kc / btot if btot > 0 else 0.0


def growth_floor(comparison: Comparison, i: int | None, t: int, metric: str, crit: float
                 ) -> float | None:
    """The smallest growth of function ``i``'s ``metric`` (the total when ``i`` is None) in
    sample type ``t`` that this comparison detects with :data:`POWER` at critical value
    ``crit``; None without a noise model. The growth's own sampling noise counts: a function
    that holds more after a leak is measured less precisely."""
    base, cand = comparison.baseline, comparison.candidate
    key = "total" if i is None else metric
    vb = base.mean_variance(key)
    if vb is None:
        return None
    # From the baseline's noise, not the candidate's: what the comparison could see had the
    # candidate been the baseline's build plus a growth (a leak in the candidate must not
    # raise the floor it is measured against). The candidate's runs are as noisy as the
    # baseline's; the growth adds its own sampling noise.
    rho = _new_growth_variance(comparison, t)
    if rho is None:
        return None
    kb, kc = base.flat_runs.shape[0], cand.flat_runs.shape[0]
    own = float(vb[t]) if i is None else float(vb[i, t])
    return _solve_floor(crit + normal_quantile(POWER), own * (1 + kb / kc), rho)


def _floor(comparison: Comparison, policy: Policy, ctx: _TypeContext, crit: float,
           confidence: float) -> DetectionFloor | None:
    t = ctx.t
    base, cand = comparison.baseline, comparison.candidate
    total = growth_floor(comparison, None, t, "flat", crit)
    rho = _new_growth_variance(comparison, t)
    if total is None or rho is None:
        return None
    new = _solve_floor(crit + normal_quantile(POWER), 0.0, rho)
    size = (base.flat[:, t] + cand.flat[:, t]) / 2
    top = []
    for i in np.argsort(-size, kind="stable")[:FLOOR_TOP].tolist():
        if size[i] <= 0:
            break
        value = growth_floor(comparison, i, t, "flat", crit)
        if value is not None:
            top.append((comparison.names[i], value))
    st = comparison.sample_types[t]
    eff = policy.resolve("", st.type) or policy.resolve_total(st.type)
    limit = None if eff is None else _abs_limit(eff, ctx, ceiling=False)
    return DetectionFloor(
        sample_type=st.type, dimension=ctx.dim,
        quantity="level" if ctx.level else ("growth" if ctx.quantity_growth else "flow"),
        per=ctx.per, confidence=confidence, power=POWER, new_function=new,
        total=total, top=tuple(top), limit=limit)


def dead_rule_warnings(comparison: Comparison, policy: Policy) -> list[str]:
    """Rules whose ``match`` selects no function of either profile: the limit the team relies
    on is silently gone (a typo, a renamed function)."""
    out = []
    names = comparison.names
    for rule in policy.rules:
        if any(rule.match.matches(n) for n in names):
            continue
        probe = rule.match.pattern.removeprefix("re:").replace("*", "")
        close = difflib.get_close_matches(probe, names, n=3, cutoff=0.6)
        hint = f"; closest: {', '.join(close)}" if close else ""
        out.append(f"rule {rule.name!r} (match {rule.match.pattern!r}) matches no function in "
                   f"either profile, so its limits apply to nothing{hint}")
    return out


def rate_on_level_warnings(comparison: Comparison, policy: Policy) -> list[str]:
    """Rules that give only rate limits for sample types that are levels here: written for
    the old every-value-is-a-rate model, their limits apply to nothing; say what to write."""
    levels = [st.type for t, st in enumerate(comparison.sample_types)
              if comparison.quantity(t) == "level"]
    out = []
    for rule in policy.rules:
        covered = [st for st in levels if rule.covers(st, policy.defaults)]
        names = rule.sample_types or policy.defaults.sample_types
        flows_too = any(not any(sample_type_matches(n, lv) for lv in levels) for n in names)
        lim = rule.limits
        rates = [q for key in ("max_increase_rate", "max_rate")
                 if not isinstance(getattr(lim, key), Inherit)
                 for q in getattr(lim, key)]
        gives_level = any(not isinstance(getattr(lim, key), Inherit)
                          for key in ("max_increase_level", "max_level"))
        if covered and rates and not gives_level and not flows_too:
            texts = ", ".join(q.text for q in rates)
            amounts = ", ".join(repr(q.text.split("/")[0].strip()) for q in rates)
            out.append(f"rule {rule.name!r}: {texts} limits a flow, but "
                       f"{', '.join(covered)} here are levels (what is in use, not divided by "
                       "a duration), so the built-in level limits apply instead; write "
                       f"max_increase_level (or max_level) with amounts, e.g. [{amounts}]")
    return out


def evaluate(comparison: Comparison, policy: Policy, time_unit: str = "s") -> GateResult:
    """Apply ``policy`` to ``comparison``. Pure: same inputs, same result, no I/O."""
    gated = gated_type_indices(comparison, policy)
    base, cand = comparison.baseline, comparison.candidate
    kb, kc = base.flat_runs.shape[0], cand.flat_runs.shape[0]
    # A function is new when the baseline has nothing of it at all.
    absent = ~((base.flat != 0).any(axis=1) | (base.cum != 0).any(axis=1))
    contexts = {}
    drafts: dict[int, list[_Draft]] = {}
    for t in gated:
        st = comparison.sample_types[t]
        dim = dimension_of_unit(st.unit)
        assert dim is not None
        q = comparison.quantity(t)
        freed = base.held_flat is not None and bool(
            (base.held_flat[:, t] != 0).any() or (cand.held_flat is not None
                                                  and (cand.held_flat[:, t] != 0).any()))
        ctx = _TypeContext(t, dim, q == "level", comparison.per(t), comparison.scale,
                           q == "growth", freed)
        contexts[t] = ctx
        drafts[t] = _crossings(comparison, policy, ctx, absent)
    # One walk over the stacks for every type that has function crossings: the crossings
    # and the leaves that may be their evidence. Without any, there is nothing to correlate
    # (a total is one test) and the walk is skipped.
    # Bounded: at most MAX_TRACKED functions, the crossings most likely to be real first
    # (largest standardized growth); tests left out make their type fall back to Šidák.
    ranked: list[tuple[float, int]] = []
    leaves: list[int] = []
    for t in gated:
        crossing = [d for d in drafts[t] if d.i is not None]
        if not crossing:
            continue
        ranked += [(d.z, d.i) for d in crossing if d.i is not None]
        growth = cand.flat[:, t] - base.flat[:, t]
        leaves += [i for i in np.argsort(-growth, kind="stable")[:EVIDENCE_TRACKED].tolist()
                   if growth[i] > 0]
    tracked = list(dict.fromkeys(i for _, i in sorted(ranked, key=lambda r: -r[0])))
    tracked = list(dict.fromkeys([*tracked[:MAX_TRACKED], *leaves]))[:MAX_TRACKED + len(leaves)]
    ovs = overlaps(comparison, gated, tracked) if tracked else None
    findings: list[Finding] = []
    noise: list[Finding] = []
    moved: list[Finding] = []
    floors: list[DetectionFloor] = []
    confidence = policy.defaults.confidence
    # The family is every test of every gated sample type: each type's max-T critical value
    # is taken at alpha / (number of measurements) (Bonferroni across them, whose tests are
    # correlated too, so this is on the safe side). The bytes and the objects of one kind
    # (inuse_space and inuse_objects) are one measurement: every sample's bytes are its
    # object size times its count, so their tests move together.
    share = _share(comparison, gated)
    for t in gated:
        ctx = contexts[t]
        ds = drafts[t]
        ov = None if ovs is None else ovs.get(t)
        alphas = sorted({1 - d.eff.confidence for d in ds} | {1 - confidence})
        crit = {a: c for a, c in zip(alphas, _critical(ds, ov, [a / share for a in alphas])
                                     .values())}
        rank = _holm_rank(ds, kb, kc)
        sig: dict[int, bool] = {}
        for d in ds:
            if rank is not None and id(d) in rank:
                sig[id(d)] = rank[id(d)]
            else:
                sig[id(d)] = d.se is None or d.z > crit[1 - d.eff.confidence]
        # A growth worth finding makes a family of its own (the function, its callers' cum):
        # the floor assumes at least FLOOR_FAMILY independent tests' worth of correction.
        fam_crit = critical_value(comparison, confidence, crit[1 - confidence], gated)
        floor = _floor(comparison, policy, ctx, fam_crit, confidence)
        if floor is not None:
            floors.append(floor)
        # Moved: flat grew significantly, the subtree did not.
        cum_sig = {d.i for d in ds if d.metric == "cum" and sig[id(d)] and d.i is not None
                   and d.kind in ("increase", "new")}
        culprit_drafts: list[_Draft] = []
        for d in ds:
            if d.i is None or d.kind not in ("increase", "new"):
                continue
            if not sig[id(d)]:
                continue
            if d.metric == "flat" and d.i not in cum_sig:
                dcum = float(cand.cum[d.i, t] - base.cum[d.i, t])
                if dcum < MOVED_SHARE * d.delta:
                    moved.append(_make_finding(comparison, d, ctx, time_unit, True, "moved"))
                    continue
            culprit_drafts.append(d)
        for d, members, evidence, note, rest in _culprits(comparison, culprit_drafts, ov, crit,
                                                          ctx):
            f = _make_finding(comparison, d, ctx, time_unit, True, None, members, evidence,
                              note + _rank_note(d, rank, kb, kc))
            findings.append(replace(f, p_value=_p(d, rank), remainder=rest))
        for d in ds:
            if d.i is None or d.kind == "ceiling":
                if sig[id(d)]:
                    findings.append(replace(_make_finding(comparison, d, ctx, time_unit, True),
                                            p_value=_p(d, rank)))
        # Within noise: one line per function (its cum crossing if it has one).
        seen: set[int | None] = set()
        flagged = {f.function for f in findings} | {f.function for f in moved}
        for d in sorted(ds, key=lambda d: d.metric != "cum"):
            if sig[id(d)] or d.i in seen:
                continue
            name = TOTAL_FUNCTION if d.i is None else comparison.names[d.i]
            if name in flagged:
                continue
            seen.add(d.i)
            f = _make_finding(comparison, d, ctx, time_unit, False)
            noise.append(replace(f, p_value=_p(d, rank), message=f.message +
                                 f" — within sampling noise at {d.eff.confidence:.0%} "
                                 "confidence (~)"))
    order = {t: k for k, t in enumerate(gated)}
    findings.sort(key=lambda f: _finding_order(f, order, comparison))
    noise.sort(key=lambda f: _finding_order(f, order, comparison))
    moved.sort(key=lambda f: _finding_order(f, order, comparison))
    warnings = [*comparison.notes, *dead_rule_warnings(comparison, policy),
                *rate_on_level_warnings(comparison, policy)]
    if any(not _rates_apply(contexts[t]) for t in gated):
        warnings.append(
            "flows are compared per unit of work, but the baseline has no duration to turn the "
            "policy's rate limits (max_increase_rate, max_rate, noise_floor) into limits per "
            "unit: only the relative limit (max_increase) applies to them; give the "
            "workload's nominal time (the component's duration, or --duration and "
            "--baseline-duration)")
    return GateResult(verdict=verdict_of(findings), findings=tuple(findings),
                      within_noise=tuple(noise), gated=gated, moved=tuple(moved),
                      floors=tuple(floors), warnings=tuple(warnings))


def _rank_note(d: _Draft, rank: dict[int, bool] | None, kb: int, kc: int) -> str:
    if rank is None or d.rank_p is None:
        return ""
    return f" — significant by a rank test of {kb} vs {kc} runs (p = {d.rank_p:.2g})"


def _share(comparison: Comparison, gated: Sequence[int] | None = None) -> float:
    """How many measurements the family's alpha is split between (see :func:`evaluate`)."""
    types = comparison.sample_types
    idx = range(len(types)) if gated is None else gated
    return float(len({_measurement(types[t].type) for t in idx
                      if dimension_of_unit(types[t].unit) is not None}) or 1)


def _measurement(sample_type: str) -> str:
    """``inuse_space`` and ``inuse_objects`` -> ``inuse``; ``space``/``objects`` -> ``""``."""
    for suffix in ("space", "objects"):
        if sample_type.endswith(suffix):
            return sample_type[: -len(suffix)].rstrip("_")
    return sample_type


def _p(d: _Draft, rank: dict[int, bool] | None) -> float | None:
    if rank is not None and d.rank_p is not None:
        return d.rank_p
    if d.se is None:
        return None
    return normal_sf(d.z) if math.isfinite(d.z) else (0.0 if d.z > 0 else 1.0)


def _finding_order(f: Finding, order: dict[int, int], comparison: Comparison
                   ) -> tuple[int, int, int, int, int, int, float, str]:
    """Failing first, totals first, then memory (bytes) before counts, what is held (levels,
    growth) before what flows, the functions that explain their growth before their callers
    with a remainder, the largest growth first."""
    t = next((t for t, st in enumerate(comparison.sample_types) if st.type == f.sample_type), 0)
    return (
        0 if f.severity == "fail" else 1,
        0 if f.function == TOTAL_FUNCTION else 1,
        0 if f.dimension == "bytes" else 1,
        1 if f.quantity == "flow" else 0,
        order.get(t, 0),
        0 if f.remainder is None else 1,
        -f.delta_rate,
        f.function,
    )


def verdict_of(findings: Sequence[Finding]) -> Verdict:
    """fail if any fail finding; warn if any warn finding; else pass."""
    if any(f.severity == "fail" for f in findings):
        return "fail"
    if findings:
        return "warn"
    return "pass"
